"""Jobs: submission (validated, conflicts reported before anything is queued), reads, cancel.

The API writes the job row, commits, then sends only the job id to Celery by task name; the
worker does the rest (``worker.runner``). Nothing here imports torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from statistics import median
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.errors import ApiError, conflict, not_found, unprocessable
from jobs import state as job_state
from jobs.queue import enqueue_job
from jobs.reaper import reap_stale_jobs
from jobs.training_data import (
    NotTrainable,
    ProjectBounds,
    check_trainable,
    check_warm_start,
    job_options,
    project_bounds,
    project_classes,
    project_facts,
    resolve_job_config,
)
from models.budget import ProjectFacts, device_type, estimate_run, planned_ceiling, px_seconds
from store.db import utcnow
from store.jobs_tables import Job, JobStatus, ModelVersion
from store.model_versions import NEWEST_FIRST, latest_version, recent_runs
from store.settings import Settings
from store.tables import Project, User

log = logging.getLogger(__name__)


def validate_train_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check a train job config; returns it unchanged. 422 naming the first problem."""
    try:
        # Sized for one slice here: the fields' types and ranges do not depend on the project.
        resolve_job_config(config, ProjectFacts(1), "cpu")
    except (ValueError, TypeError, KeyError) as exc:
        raise unprocessable(f"invalid training config: {exc}", code="invalid_config") from None
    return config


@dataclass(frozen=True)
class ResolvedTrain:
    """What a train config becomes for a project: the full training configuration, the
    estimated training seconds on ``device``, the facts it was sized by and the most epochs its
    plan takes (None: a run of fixed length)."""

    config: dict[str, Any]
    estimated_seconds: float
    device: str
    facts: ProjectFacts
    epoch_ceiling: int | None = None
    estimated_epochs: int | None = None
    timed_runs: int = 0


@dataclass(frozen=True)
class Pace:
    """What this server's last trainings measured: the median pace of their steps
    (``models.budget.px_seconds``) on a device type, over ``runs`` model versions."""

    device: str
    px_seconds: float
    runs: int


PACE_RUNS = 5
"""The most recent trainings whose median pace times a plan (one slow or fast run moves it
little; the newest reflect the workers' hardware as it is now)."""


def measured_pace(session: Session, settings: Settings) -> Pace | None:
    """The median pace of the last :data:`PACE_RUNS` trainings on the device type the workers
    use (``SHAPEHINT_DEVICE``; with ``auto``, the type the newest training ran on, since the API
    cannot probe the workers' GPUs); None before any training recorded one."""
    wanted = None if settings.device == "auto" else device_type(settings.device)
    paces: list[float] = []
    for config, metrics in recent_runs(session, 4 * PACE_RUNS):
        pace, device = px_seconds(config, metrics), metrics.get("device")
        if pace is None or device not in ("cpu", "cuda") or wanted not in (None, device):
            continue
        wanted = device
        paces.append(pace)
        if len(paces) == PACE_RUNS:
            break
    return Pace(wanted, float(median(paces)), len(paces)) if paces and wanted else None


def estimate_device(settings: Settings, pace: Pace | None = None) -> str:
    """The device type a plan is for: the measured pace's, else the settings' (the API never
    probes for a GPU, no torch here, so ``auto`` before any training counts as CPU)."""
    return pace.device if pace is not None else device_type(settings.device)


def resolve_train(
    session: Session,
    settings: Settings,
    project: Project,
    config: dict[str, Any],
    model_version_id: int | None = None,
) -> ResolvedTrain:
    """Validate a train config against the project (and the model version it warm-starts
    from: its classes and network) and resolve it; 422 naming the problem."""
    validate_train_config(config)
    warm = None if model_version_id is None else _version_of(session, project, model_version_id)
    if warm is not None:
        names = [c.name for c in project_classes(session, project.id)]
        try:
            check_warm_start(warm.class_names, names)
        except NotTrainable:
            raise unprocessable(
                f"model version {warm.id} was trained on classes {warm.class_names}; "
                f"the project now has {names}, so it cannot be warm-started",
                code="class_mismatch",
            ) from None
    pb = trainable_bounds(session, project, config)
    facts = project_facts(pb)
    pace = measured_pace(session, settings)
    device = estimate_device(settings, pace)
    try:
        cfg, _ = resolve_job_config(
            config, facts, device, None if warm is None else dict(warm.config or {})
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise unprocessable(f"invalid training config: {exc}", code="invalid_config") from None
    seconds, epochs = estimate_run(cfg, facts, device, None if pace is None else pace.px_seconds)
    ceiling = planned_ceiling(cfg, facts.num_slices)
    runs = 0 if pace is None else pace.runs
    return ResolvedTrain(cfg.to_dict(), seconds, device, facts, ceiling, epochs, runs)


def _version_of(session: Session, project: Project, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None or version.project_id != project.id:
        raise unprocessable(
            f"model version {version_id} does not exist in project {project.id}",
            code="unknown_model_version",
        )
    return version


def trainable_bounds(session: Session, project: Project, config: dict[str, Any]) -> ProjectBounds:
    """Hints and priors usable as they are; returns the project's bounds. 422 if not."""
    pb = project_bounds(
        session, project.id, use_reference_masks=job_options(config)["use_reference_masks"]
    )
    try:
        check_trainable(pb)
    except NotTrainable as exc:
        if exc.code == "hint_conflict":
            first = exc.problems[0]
            raise unprocessable(
                f"{len(exc.problems)} hint/prior problem(s), e.g. "
                + (f"image {first.image_name!r} slice {first.z}: " if first.z is not None else "")
                + first.message,
                code="hint_conflict",
                problems=[p.to_dict() for p in exc.problems[:100]],
            ) from None
        raise unprocessable(
            "nothing to train on: give hints on at least one slice (or set project priors)",
            code="no_hints",
        ) from None
    return pb


def submit_job(
    session: Session,
    settings: Settings,
    user: User,
    project: Project,
    kind: str,
    config: dict[str, Any],
    model_version_id: int | None,
) -> Job:
    """Validate, write the job row (queued), commit, enqueue its id. Nothing is queued on error."""
    if kind == "train":
        resolve_train(session, settings, project, config, model_version_id)
    elif kind == "predict":
        if config:
            raise unprocessable(
                f"a predict job takes no config; unknown field(s) {sorted(config)}",
                code="invalid_config",
            )
        if model_version_id is not None:
            _version_of(session, project, model_version_id)
        elif latest_version(session, project.id) is None:
            raise conflict("no model version to predict with: train the project first", "no_model")
    else:  # the schema already restricts kind; this guards direct callers
        raise unprocessable(f"unknown job kind {kind!r}; use 'train' or 'predict'", code="invalid")
    job = Job(
        project_id=project.id,
        kind=kind,
        status=JobStatus.QUEUED,
        config=config,
        model_version_id=model_version_id,
        progress={},
        cancel_requested=False,
        created_by=user.id,
    )
    # Committed with ``enqueued_at`` NULL, sent, then marked sent: if this process dies in
    # between, the reconciler (jobs.reaper) finds a queued job with no message and sends it.
    session.add(job)
    session.commit()
    try:
        enqueue_job(job.id, kind, settings)
    except Exception as exc:
        # The row must not sit "queued" with no message behind it.
        job.status, job.error = JobStatus.FAILED, f"could not reach the job queue: {exc}"
        job.finished_at = utcnow()
        session.commit()
        raise ApiError(503, "queue_unavailable", f"the job queue is unreachable: {exc}") from None
    try:
        job_state.mark_enqueued(session.get_bind(), job.id)  # type: ignore[arg-type]
    except Exception:  # the message is out; the reconciler sees it in the broker
        log.exception("could not record that job %s was sent", job.id)
    session.refresh(job)
    return job


def reap(session: Session, settings: Settings, **where: Any) -> None:
    """Fail dead jobs before showing them (see jobs.reaper)."""
    bind = session.get_bind()
    reap_stale_jobs(bind, settings.job_heartbeat_timeout_s, **where)  # type: ignore[arg-type]


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


def list_jobs(
    session: Session, project_id: int, status: str | None, offset: int, limit: int
) -> tuple[list[Job], int]:
    query = select(Job).where(Job.project_id == project_id)
    if status is not None:
        query = query.where(Job.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.id.desc()).offset(offset).limit(limit))
    return list(rows), int(total)


def cancel_job(session: Session, job: Job) -> Job:
    """Cancel a queued job now, or ask its worker to stop a running one (within seconds)."""
    outcome = job_state.request_cancel(session.get_bind(), job.id)  # type: ignore[arg-type]
    session.expire_all()
    fresh = session.get(Job, job.id)
    assert fresh is not None
    if outcome is None:
        raise conflict(f"job {job.id} is already {fresh.status}; nothing to cancel", "job_finished")
    return fresh


def list_versions(
    session: Session, project_id: int, offset: int, limit: int
) -> tuple[list[ModelVersion], int]:
    query = select(ModelVersion).where(ModelVersion.project_id == project_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(NEWEST_FIRST).offset(offset).limit(limit))
    return list(rows), int(total)


def get_version(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise not_found("model version", version_id)
    return version
