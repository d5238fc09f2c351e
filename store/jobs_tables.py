"""Tables of background work and its products: jobs, model versions, predictions.

A job row is the single source of truth about a piece of background work (CVAT-style request
object): the API writes it ``queued`` and sends only its id to Celery; the worker claims it,
writes progress and a heartbeat, and finishes it. Model versions are immutable once written.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.db import Base, utcnow


class JobKind(StrEnum):
    """What a job does (``jobs.kind``); the API's ``kind`` field takes these values."""

    TRAIN = "train"
    PREDICT = "predict"


class JobStatus(StrEnum):
    """Where a job stands (``jobs.status``): queued -> running -> succeeded | failed | cancelled.
    Members are ``str``s, so rows, queries and JSON hold the plain values."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
)
ACTIVE_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_project_status", "project_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value, index=True)
    # The validated job configuration as submitted (train: TrainConfig overrides + job options).
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Warm start (train) or the version to predict with (predict); None = none / latest.
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # Celery worker hostname that claimed the job (useful when several workers share a queue).
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When the job's queue message was last sent (NULL: none is known to exist, e.g. the API
    # died between the commit and the send) and how many times in a row it was sent; the
    # reconciler (jobs.reaper) re-sends a queued job whose message the broker lost.
    enqueued_at: Mapped[datetime | None] = mapped_column(nullable=True)
    enqueue_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ModelVersion(Base):
    """An immutable trained model: checkpoint blob, the config it was trained with, its metrics."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version", name="uq_model_versions_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    # 1, 2, 3 ... within the project.
    version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True
    )
    checkpoint_key: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Class names in label order (label k = class_names[k - 1]) at training time.
    class_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    epochs: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """A predicted label map of one image by one model version (blob: ``(Z, H, W)`` uint8 .npy)."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("image_id", "model_version_id", name="uq_predictions_image_model"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True
    )
    mask_key: Mapped[str] = mapped_column(String(255))
    # Per-class metrics against the image's reference mask, when it has one.
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
