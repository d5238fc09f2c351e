"""Fails running jobs whose worker stopped sending heartbeats (killed process, lost machine).

A worker writes ``jobs.heartbeat_at`` every few seconds from a background thread while it runs a
job. When that stops for longer than ``settings.job_heartbeat_timeout_s``, the job can never
finish by itself, so it is marked ``failed`` with an error that says why. Run by the API
server's lifespan every few seconds (:func:`reaper_loop`) and on every GET of a job.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import Engine, select, update

from store.db import session_scope, utcnow
from store.jobs_tables import Job
from store.tables import as_utc
from worker.job_state import heartbeat_age_s

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
        query = select(Job).where(Job.status == "running")
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
                    Job.id == job.id, Job.status == "running", Job.heartbeat_at == job.heartbeat_at
                )
                .values(
                    status="failed",
                    error=dead_worker_error(job, age, timeout_s),
                    finished_at=now,
                    updated_at=now,
                )
            )
            if res.rowcount == 1:
                reaped.append(job.id)
                log.warning("job %s failed: no heartbeat for %.0f s", job.id, age)
    return reaped


async def reaper_loop(engine: Engine, timeout_s: float, interval_s: float | None = None) -> None:
    """Reap forever (cancel the task to stop); run beside the API server."""
    interval = interval_s if interval_s is not None else max(1.0, min(30.0, timeout_s / 4))
    while True:
        try:
            await asyncio.to_thread(reap_stale_jobs, engine, timeout_s)
        except Exception:  # a transient database error must not kill the loop
            log.exception("reaping stale jobs failed")
        await asyncio.sleep(interval)
