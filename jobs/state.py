"""Transitions of a job row, each one short transaction (plain functions, no Celery, no torch).

Lifecycle: ``queued`` -> ``running`` (claimed by exactly one worker) -> ``succeeded`` | ``failed`` |
``cancelled``; a queued job can be cancelled directly; a running job whose heartbeat stops is
failed by ``jobs.reaper``. Every transition out of a state is a conditional UPDATE on that
state, so two workers, the reaper and a cancel request cannot both win.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from store.db import session_scope, utcnow
from store.jobs_tables import TERMINAL_STATUSES, Job, JobStatus


def claim(engine: Engine, job_id: int, worker: str) -> bool:
    """``queued`` -> ``running`` for this worker; False if the job is gone or not queued."""
    now = utcnow()
    with session_scope(engine) as session:
        result = session.execute(
            update(Job)
            .where(
                Job.id == job_id, Job.status == JobStatus.QUEUED, Job.cancel_requested.is_(False)
            )
            .values(
                status=JobStatus.RUNNING,
                worker=worker,
                started_at=now,
                heartbeat_at=now,
                updated_at=now,
                progress={"phase": "starting"},
                error=None,
            )
        )
        return result.rowcount == 1


def heartbeat(engine: Engine, job_id: int) -> bool:
    """Record that the worker of a running job is alive; False once the job is not running."""
    with session_scope(engine) as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(heartbeat_at=utcnow())
        )
        return result.rowcount == 1


def write_progress(engine: Engine, job_id: int, progress: dict[str, Any]) -> None:
    """Replace the progress of a running job (also counts as a heartbeat)."""
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(progress=progress, heartbeat_at=now, updated_at=now)
        )


def status_and_cancel(engine: Engine, job_id: int) -> tuple[str | None, bool]:
    """``(status, cancel_requested)``; status None if the job row is gone."""
    with session_scope(engine) as session:
        row = session.execute(
            select(Job.status, Job.cancel_requested).where(Job.id == job_id)
        ).one_or_none()
        return (None, False) if row is None else (str(row[0]), bool(row[1]))


def finish(
    engine: Engine,
    job_id: int,
    status: str,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
) -> bool:
    """``running`` -> a terminal status; False if someone else (reaper, cancel) got there first."""
    assert status in TERMINAL_STATUSES, status
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "result": result,
        "finished_at": now,
        "updated_at": now,
    }
    if progress is not None:
        values["progress"] = progress
    with session_scope(engine) as session:
        res = session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING).values(**values)
        )
        return res.rowcount == 1


def requeue(engine: Engine, job_id: int) -> bool:
    """``running`` -> ``queued`` (the worker is shutting down; another one will run it anew).

    The caller sends the message and then calls :func:`mark_enqueued`; until then
    ``enqueued_at`` is NULL, so a crash in between leaves a job the reconciler re-sends.
    """
    with session_scope(engine) as session:
        res = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(
                status=JobStatus.QUEUED,
                worker=None,
                started_at=None,
                heartbeat_at=None,
                progress={},
                updated_at=utcnow(),
                enqueued_at=None,
                # The count is of sends in a row without a worker picking the job up.
                enqueue_count=0,
            )
        )
        return res.rowcount == 1


def mark_enqueued(engine: Engine, job_id: int) -> None:
    """Record that a message for the job was just sent (one more send in a row)."""
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(enqueued_at=now, enqueue_count=Job.enqueue_count + 1, updated_at=now)
        )


def take_resend(engine: Engine, job_id: int, seen_count: int) -> bool:
    """Reserve the right to send a queued job's message again (count + 1, sent now).

    Conditional on the job still being queued with the count the caller saw, so two API
    processes reconciling at once send it once.
    """
    now = utcnow()
    with session_scope(engine) as session:
        res = session.execute(
            update(Job)
            .where(
                Job.id == job_id, Job.status == JobStatus.QUEUED, Job.enqueue_count == seen_count
            )
            .values(enqueued_at=now, enqueue_count=seen_count + 1, updated_at=now)
        )
        return res.rowcount == 1


def forget_enqueue(engine: Engine, job_id: int) -> None:
    """The send failed: no message is known to exist for the queued job (retried later)."""
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(enqueued_at=None)
        )


def fail_queued(engine: Engine, job_id: int, error: str) -> bool:
    """``queued`` -> ``failed`` with ``error`` (its message cannot be kept in the queue)."""
    now = utcnow()
    with session_scope(engine) as session:
        res = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.FAILED, error=error, finished_at=now, updated_at=now)
        )
        return res.rowcount == 1


def request_cancel(engine: Engine, job_id: int) -> str | None:
    """Cancel a queued job at once, or flag a running one for its worker to stop.

    Returns the status after the request (``cancelled`` or ``running``), or None when the job is
    already finished (nothing to cancel).
    """
    now = utcnow()
    with session_scope(engine) as session:
        res = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.CANCELLED,
                cancel_requested=True,
                finished_at=now,
                updated_at=now,
                error=None,
            )
        )
        if res.rowcount == 1:
            return JobStatus.CANCELLED
        res = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(cancel_requested=True, updated_at=now)
        )
        return JobStatus.RUNNING if res.rowcount == 1 else None


def heartbeat_age_s(job: Job, now: datetime | None = None) -> float | None:
    """Seconds since the job's last heartbeat (None if it never had one)."""
    from store.tables import as_utc

    beat = as_utc(job.heartbeat_at)
    if beat is None:
        return None
    return ((now or utcnow()) - beat).total_seconds()
