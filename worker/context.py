"""What a running job has at hand: its engine, blobs and settings, throttled progress writes,
stop checks (cancel flag, worker shutdown), the heartbeat thread and the job's exceptions."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

from jobs import state as job_state
from store.blobs import open_blob_store
from store.jobs_tables import JobStatus
from store.settings import Settings
from worker.shutdown import shutting_down

log = logging.getLogger(__name__)

# How often the job row is updated with progress (s); a heartbeat is written at least this often.
PROGRESS_INTERVAL_S = 0.5
# How often the cancel flag is read from the database while training (s).
CANCEL_POLL_S = 0.5


class JobCancelled(Exception):
    """The job's cancel flag was set (or the job stopped being ours)."""


class WorkerShuttingDown(Exception):
    """This worker was asked to stop; the job goes back to the queue."""


class JobError(Exception):
    """A failure whose message is meant for the user as it is."""


class Heartbeat(threading.Thread):
    """Writes ``heartbeat_at`` every ``interval`` s while the job runs (a dead process stops it)."""

    def __init__(self, engine: Engine, job_id: int, interval: float) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.engine, self.job_id, self.interval = engine, job_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                job_state.heartbeat(self.engine, self.job_id)
            except Exception:  # a transient database error; the next beat may succeed
                log.exception("heartbeat of job %s failed", self.job_id)


class JobContext:
    """What a running job needs: its engine, blobs, settings, throttled progress and stop checks."""

    def __init__(self, engine: Engine, job_id: int, settings: Settings) -> None:
        self.engine, self.job_id, self.settings = engine, job_id, settings
        self.blobs = open_blob_store(settings)
        self._last_write = 0.0
        self._last_poll = 0.0
        self.stop_reason: Exception | None = None
        self.progress: dict[str, Any] = {}
        # Set once a train job has stored its model version: a worker shutdown then lets the
        # job finish its (short) predictions instead of requeueing it to train a second version.
        self.keep_on_shutdown = False

    def report(self, progress: dict[str, Any], *, force: bool = False) -> None:
        self.progress = progress
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_INTERVAL_S:
            self._last_write = now
            job_state.write_progress(self.engine, self.job_id, progress)

    def should_stop(self) -> bool:
        """True when the job must stop now; ``stop_reason`` says why. Cheap to call every step."""
        if self.stop_reason is not None:
            return True
        if shutting_down() and not self.keep_on_shutdown:
            self.stop_reason = WorkerShuttingDown()
            return True
        now = time.monotonic()
        if now - self._last_poll < CANCEL_POLL_S:
            return False
        self._last_poll = now
        status, cancel = job_state.status_and_cancel(self.engine, self.job_id)
        if cancel or status != JobStatus.RUNNING:
            self.stop_reason = JobCancelled(
                "cancelled by request" if cancel else f"job is {status} elsewhere"
            )
            return True
        return False

    def check_stop(self) -> None:
        if self.should_stop():
            assert self.stop_reason is not None
            raise self.stop_reason


def resolved_device(settings: Settings) -> str:
    from models.device import resolve_device

    return str(resolve_device(settings.device))  # "cuda:1" stays that GPU
