"""Keeps job rows and reality in step: the reaper and the queue reconciler.

Reaper: a worker writes ``jobs.heartbeat_at`` every few seconds from a background thread while
it runs a job. When that stops for longer than ``settings.job_heartbeat_timeout_s``, the job can
never finish by itself, so it is marked ``failed`` with an error that says why.

Reconciler: a ``queued`` job is only run if the broker holds its message. Messages are lost
when Redis restarts without persistence, or when the API dies between committing the row and
sending the message. A job queued for longer than ``settings.job_requeue_after_s`` whose
message the broker does not hold is sent again (workers skip a job that is no longer queued,
so a duplicate message is harmless), and failed with the reason after
``settings.job_max_enqueues`` sends in a row. Where the broker cannot be inspected, only jobs
with no recorded send (``enqueued_at`` NULL) count as lost.

Both run in the API server's lifespan every few seconds (:func:`reaper_loop`); the reaper also
on every GET of a job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select, update

from jobs import state as job_state
from jobs.queue import BrokerUnavailable, enqueue_job, queued_job_ids
from jobs.state import heartbeat_age_s
from store.db import session_scope, utcnow
from store.jobs_tables import Job, JobStatus
from store.settings import Settings
from store.tables import as_utc

log = logging.getLogger(__name__)


def dead_worker_error(job: Job, age_s: float, timeout_s: float) -> str:
    who = f"worker {job.worker}" if job.worker else "its worker"
    return (
        f"{who} stopped responding: no heartbeat for {age_s:.0f} s "
        f"(limit {timeout_s:g} s); the worker process died or lost the database. "
        "Submit the job again."
    )


def reap_stale_jobs(
    engine: Engine,
    timeout_s: float,
    *,
    project_id: int | None = None,
    job_id: int | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Mark running jobs with a heartbeat older than ``timeout_s`` failed; returns their ids."""
    now = now or utcnow()
    reaped: list[int] = []
    with session_scope(engine) as session:
        query = select(Job).where(Job.status == JobStatus.RUNNING)
        if project_id is not None:
            query = query.where(Job.project_id == project_id)
        if job_id is not None:
            query = query.where(Job.id == job_id)
        # Few rows run at once; comparing ages in Python avoids SQLite's naive timestamps.
        for job in session.scalars(query):
            age = heartbeat_age_s(job, now)
            if age is None:
                since = as_utc(job.started_at or job.created_at)
                age = (now - since).total_seconds() if since else 0.0
            if age <= timeout_s:
                continue
            res = session.execute(
                update(Job)
                .where(
                    Job.id == job.id,
                    Job.status == JobStatus.RUNNING,
                    Job.heartbeat_at == job.heartbeat_at,
                )
                .values(
                    status=JobStatus.FAILED,
                    error=dead_worker_error(job, age, timeout_s),
                    finished_at=now,
                    updated_at=now,
                )
            )
            if res.rowcount == 1:
                reaped.append(job.id)
                log.warning("job %s failed: no heartbeat for %.0f s", job.id, age)
    return reaped


@dataclass(frozen=True)
class QueuedJob:
    """What the reconciler needs of a queued job row."""

    id: int
    kind: str
    enqueued_at: datetime | None
    # Last change of the row: the age of a job with no recorded send is counted from here.
    since: datetime
    enqueue_count: int


@dataclass
class Reconciled:
    resent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def waiting_too_long(jobs: list[QueuedJob], now: datetime, after_s: float) -> list[QueuedJob]:
    """Queued jobs whose last send (or last change, if none) is older than ``after_s``."""
    return [j for j in jobs if (now - (j.enqueued_at or j.since)).total_seconds() > after_s]


def lost_jobs(candidates: list[QueuedJob], in_broker: set[int] | None) -> list[QueuedJob]:
    """The candidates whose message is gone: absent from the broker where it can be inspected,
    else those with no recorded send."""
    if in_broker is None:
        return [j for j in candidates if j.enqueued_at is None]
    return [j for j in candidates if j.id not in in_broker]


def lost_message_error(job: QueuedJob) -> str:
    return (
        f"the job queue lost this job's message {job.enqueue_count} time(s) in a row "
        "(broker restarted without persistence, or unreachable); giving up. "
        "Check the broker and submit the job again."
    )


def reconcile_queued_jobs(
    engine: Engine, settings: Settings, *, now: datetime | None = None
) -> Reconciled:
    """Send again (or fail) queued jobs whose broker message is gone; see the module docstring.

    Asks the broker only when some job has waited longer than ``job_requeue_after_s``.
    """
    now = now or utcnow()
    out = Reconciled()
    with session_scope(engine) as session:
        rows = session.execute(
            select(
                Job.id, Job.kind, Job.enqueued_at, Job.updated_at, Job.created_at, Job.enqueue_count
            ).where(Job.status == JobStatus.QUEUED, Job.cancel_requested.is_(False))
        ).all()
    jobs = [
        QueuedJob(
            id=r[0],
            kind=r[1],
            enqueued_at=as_utc(r[2]),
            since=as_utc(r[3] or r[4]) or now,
            enqueue_count=int(r[5] or 0),
        )
        for r in rows
    ]
    candidates = waiting_too_long(jobs, now, settings.job_requeue_after_s)
    if not candidates:
        return out
    try:
        in_broker = queued_job_ids(settings)
    except BrokerUnavailable as exc:
        # Nothing can be sent now; the next pass tries again.
        log.warning("cannot reconcile queued jobs: broker unavailable (%s)", exc)
        return out
    for job in lost_jobs(candidates, in_broker):
        if job.enqueue_count >= settings.job_max_enqueues:
            if job_state.fail_queued(engine, job.id, lost_message_error(job)):
                out.failed.append(job.id)
                log.error(
                    "job %s failed: its queue message was lost %s times", job.id, job.enqueue_count
                )
            continue
        if not job_state.take_resend(engine, job.id, job.enqueue_count):
            continue  # claimed, cancelled or re-sent by someone else meanwhile
        try:
            enqueue_job(job.id, job.kind, settings)
        except Exception:
            log.exception("re-sending lost job %s failed", job.id)
            job_state.forget_enqueue(engine, job.id)
            continue
        out.resent.append(job.id)
        log.warning("job %s was queued but its message was gone: sent again", job.id)
    return out


async def reaper_loop(
    engine: Engine,
    timeout_s: float,
    interval_s: float | None = None,
    settings: Settings | None = None,
) -> None:
    """Reap (and, given ``settings``, reconcile the queue) forever; cancel the task to stop.
    Run beside the API server."""
    interval = interval_s if interval_s is not None else max(1.0, min(30.0, timeout_s / 4))
    if settings is not None and interval_s is None:
        interval = min(interval, max(1.0, settings.job_requeue_after_s / 4))
    while True:
        try:
            await asyncio.to_thread(reap_stale_jobs, engine, timeout_s)
        except Exception:  # a transient database error must not kill the loop
            log.exception("reaping stale jobs failed")
        if settings is not None:
            try:
                await asyncio.to_thread(reconcile_queued_jobs, engine, settings)
            except Exception:
                log.exception("reconciling queued jobs failed")
        await asyncio.sleep(interval)
