"""Celery tasks: thin wrappers that hand a job id to ``worker.runner`` (where the work is).

Importing this module does not import torch; ``worker.runner`` imports the models package only
when a task runs.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutting_down

from jobs.queue import PREDICT_TASK, TRAIN_TASK
from worker.shutdown import SHUTTING_DOWN

log = logging.getLogger(__name__)


@worker_shutting_down.connect
def _on_shutdown(**_kwargs: object) -> None:
    SHUTTING_DOWN.set()


@worker_process_init.connect
def _on_child_start(**_kwargs: object) -> None:
    # A forked child must not reuse the parent's database connections.
    from store.db import get_engine
    from store.settings import get_settings

    get_engine(get_settings().resolved_database_url).dispose(close=False)


@worker_ready.connect
def _on_ready(**_kwargs: object) -> None:
    # Scratch directories of jobs whose worker was killed (checkpoints, hundreds of MB).
    from store.db import get_engine
    from store.settings import get_settings
    from worker.scratch import sweep

    settings = get_settings()
    try:
        sweep(get_engine(settings.resolved_database_url), settings)
    except Exception:  # cleaning is best effort; the next train job sweeps again
        log.exception("sweeping scratch directories failed")


@shared_task(name=TRAIN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def train(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    """Run train job ``job_id``; returns its final status."""
    from worker.runner import run_job

    return run_job(int(job_id), worker=str(self.request.hostname), kind="train")


@shared_task(name=PREDICT_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def predict(self, job_id: int) -> str:  # type: ignore[no-untyped-def]
    """Run predict job ``job_id``; returns its final status."""
    from worker.runner import run_job

    return run_job(int(job_id), worker=str(self.request.hostname), kind="predict")
