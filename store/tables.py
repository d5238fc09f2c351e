"""Core tables: users, credentials, projects, images and their annotations.

The jobs tables (jobs, model_versions, predictions) live in ``store.jobs_tables`` and reference
``projects.id``, ``images.id`` and ``users.id`` from here. Integer primary keys throughout.
Time columns hold UTC (SQLite returns them naive; ``store.tables.as_utc`` fixes that up).

Annotations keep history: ``hints`` and ``reviews`` are append-only; the latest row per
(image, slice, class, author) is the one that counts (``store.hints`` reads them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.db import Base, utcnow


class Role(StrEnum):
    """Project roles (``project_members.role``), weakest first: a role includes the rights of
    those before it. Members are ``str``s."""

    VIEWER = "viewer"
    ANNOTATOR = "annotator"
    OWNER = "owner"


ROLES: tuple[Role, ...] = tuple(Role)
"""Project roles, weakest first (a role includes the rights of those before it)."""

REVIEW_STATUSES: tuple[str, ...] = ("accepted", "rejected", "needs-hints")


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to the naive datetimes SQLite returns (PostgreSQL returns aware ones)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # argon2 hash; None = this user cannot sign in with a password (tokens only).
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A personal API token; only its SHA-256 digest is stored (the token has 256 random bits)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown in lists so users can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")


class WebSession(Base):
    """A browser session (cookie); the cookie value and the CSRF token are stored hashed."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()

    user: Mapped[User] = relationship(lazy="joined")


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    classes: Mapped[list[ProjectClass]] = relationship(
        order_by="ProjectClass.index", cascade="all, delete-orphan", passive_deletes=True
    )


class ProjectClass(Base):
    """A structure to segment. ``index`` is its label value in masks (1-based, 0 = background)."""

    __tablename__ = "project_classes"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_project_classes_name"),
        UniqueConstraint("project_id", "index", name="uq_project_classes_index"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str] = mapped_column(String(7))


class ProjectMember(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class Image(Base):
    """A canonical image: blob ``volume_key`` holds ``volume.npy`` float32 ``(Z, C, H, W)``.

    ``spacing`` is ``[z_mm, row_mm, col_mm]``; ``affine`` the 4x4 NIfTI affine for array axes
    (col, row, slice); ``window_presets`` ``[{"name", "center", "width"}]``; ``source_keys``
    the blobs of the original files (DICOM), kept for DICOM SEG export.
    """

    __tablename__ = "images"
    __table_args__ = (Index("ix_images_project_review", "project_id", "review_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    source_kind: Mapped[str] = mapped_column(String(16))
    modality: Mapped[str] = mapped_column(String(16), default="OT")
    num_slices: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    spacing: Mapped[list[float]] = mapped_column(JSON)
    affine: Mapped[list[list[float]]] = mapped_column(JSON)
    window_presets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    volume_key: Mapped[str] = mapped_column(String(64))
    source_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Latest review status (denormalised from ``reviews`` so lists can filter and paginate).
    review_status: Mapped[str | None] = mapped_column(String(16), default=None)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def shape(self) -> list[int]:
        """``[Z, C, H, W]`` of the canonical volume."""
        return [self.num_slices, self.channels, self.height, self.width]


class Hint(Base):
    """One change of one author's hint for (image, slice, class); append-only history.

    ``payload`` is the hint JSON exactly as given (see docs/interfaces.md); None = withdrawn.
    """

    __tablename__ = "hints"
    __table_args__ = (Index("ix_hints_lookup", "image_id", "z", "class_id", "author_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    z: Mapped[int] = mapped_column(Integer)
    class_id: Mapped[int] = mapped_column(ForeignKey("project_classes.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # none_as_null: a withdrawn hint is SQL NULL (not JSON 'null'), so queries can filter it.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prior(Base):
    """The current prior of one class of a project (prior JSON of docs/interfaces.md)."""

    __tablename__ = "priors"
    __table_args__ = (UniqueConstraint("project_id", "class_id", name="uq_priors_class"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    class_id: Mapped[int] = mapped_column(ForeignKey("project_classes.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReferenceMask(Base):
    """A full label map for evaluation: blob ``mask_key`` holds uint8 ``(Z, H, W)`` as .npy."""

    __tablename__ = "reference_masks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), unique=True)
    mask_key: Mapped[str] = mapped_column(String(64))
    labels: Mapped[list[int]] = mapped_column(JSON, default=list)
    # None = every slice is labelled (an uploaded volume); a list of z = only those slices
    # (slices corrected in Review); the other slices of the blob are 0 and mean "not labelled".
    slices: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    uploaded_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """One review decision (append-only); ``images.review_status`` mirrors the latest."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_image_version", "image_id", "model_version_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The model version whose predicted mask was judged (migration 0004); NULL = none/legacy.
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), default=None
    )
