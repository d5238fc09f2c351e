"""The work behind the Celery tasks, as plain functions (testable without a broker).

``run_job(job_id, worker, kind)`` is a job's lifecycle: it claims a queued job, keeps a heartbeat
going in a background thread, runs the train or predict pipeline (``worker.train_pipeline``,
``worker.predict_pipeline``), and finishes the job row: succeeded, failed, cancelled, or back to
the queue when this worker shuts down.
"""

from __future__ import annotations

import logging
import traceback

from sqlalchemy import Engine

from jobs import state as job_state
from jobs.queue import enqueue_job
from store.db import get_engine, session_scope
from store.jobs_tables import Job, JobStatus
from store.settings import Settings, get_settings
from worker import scratch
from worker.context import Heartbeat, JobCancelled, JobContext, JobError, WorkerShuttingDown
from worker.predict_pipeline import predict_job
from worker.shutdown import shutting_down
from worker.train_pipeline import train_job

log = logging.getLogger(__name__)


def run_job(
    job_id: int, *, worker: str, kind: str | None = None, settings: Settings | None = None
) -> str:
    """Claim and run one job; returns its final status (``skipped`` if it was not queued)."""
    settings = settings or get_settings()
    engine = get_engine(settings.resolved_database_url)
    if shutting_down():
        # Received while this worker stops: leave the job queued for the next worker.
        status, _ = job_state.status_and_cancel(engine, job_id)
        if status == JobStatus.QUEUED:
            with session_scope(engine) as session:
                job = session.get(Job, job_id)
                enqueue_job(job_id, job.kind if job else (kind or "train"), settings)
            return JobStatus.QUEUED
        return "skipped"
    if not job_state.claim(engine, job_id, worker):
        status, _ = job_state.status_and_cancel(engine, job_id)
        log.info("job %s not claimed (status %s): skipped", job_id, status)
        return "skipped"
    interval = max(0.2, min(10.0, settings.job_heartbeat_timeout_s / 4))
    beat = Heartbeat(engine, job_id, interval)
    beat.start()
    ctx = JobContext(engine, job_id, settings)
    try:
        with session_scope(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job_kind = job.kind
        if kind is not None and kind != job_kind:
            raise JobError(f"job {job_id} is a {job_kind} job, but the {kind} task received it")
        result = train_job(ctx) if job_kind == "train" else predict_job(ctx)
        job_state.finish(engine, job_id, JobStatus.SUCCEEDED, result=result, progress=ctx.progress)
        return JobStatus.SUCCEEDED
    except JobCancelled as exc:
        log.info("job %s stopped: %s", job_id, exc)
        job_state.finish(engine, job_id, JobStatus.CANCELLED, error=None, progress=ctx.progress)
        return JobStatus.CANCELLED
    except WorkerShuttingDown:
        return _requeue(engine, job_id, settings)
    except Exception as exc:
        stopped = _stopped_by_trainer(exc)
        if stopped and isinstance(ctx.stop_reason, WorkerShuttingDown):
            return _requeue(engine, job_id, settings)
        if stopped:
            job_state.finish(engine, job_id, JobStatus.CANCELLED, progress=ctx.progress)
            return JobStatus.CANCELLED
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        message = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
        job_state.finish(engine, job_id, JobStatus.FAILED, error=message, progress=ctx.progress)
        return JobStatus.FAILED
    finally:
        beat.stopped.set()
        _drop_scratch_unless_queued(engine, job_id, settings)


def _drop_scratch_unless_queued(engine: Engine, job_id: int, settings: Settings) -> None:
    """A job that ended here needs its checkpoints no more; a requeued one resumes from them."""
    try:
        status, _ = job_state.status_and_cancel(engine, job_id)
        if status != JobStatus.QUEUED:
            scratch.remove_job_dir(settings, job_id)
    except Exception:  # the sweep removes it later
        log.exception("could not clean the scratch directory of job %s", job_id)


def _stopped_by_trainer(exc: Exception) -> bool:
    try:
        from models.train import TrainingStopped
    except ImportError:  # pragma: no cover - models.train is part of the package
        return False
    return isinstance(exc, TrainingStopped)


def _requeue(engine: Engine, job_id: int, settings: Settings) -> str:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        kind = job.kind if job else "train"
    if job_state.requeue(engine, job_id):
        enqueue_job(job_id, kind, settings)
        job_state.mark_enqueued(engine, job_id)  # a crash before this: the reconciler re-sends
        log.info("job %s put back on the queue: this worker is shutting down", job_id)
        return JobStatus.QUEUED
    return "skipped"
