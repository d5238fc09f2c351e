"""Whether this worker process was asked to shut down (set by ``worker.tasks`` from Celery's
signal, read by ``worker.runner``): the running job stops at its next step and goes back to the
queue, so a restart does not cost a job."""

from __future__ import annotations

import threading

SHUTTING_DOWN = threading.Event()


def shutting_down() -> bool:
    return SHUTTING_DOWN.is_set()
