"""The Celery application, built from ``store.settings``.

Importing this module is cheap and never imports torch: the API imports it to enqueue jobs by task
name (``send_task``); the heavy task bodies import the models package only when they run.

Defaults need nothing installed: the broker is kombu's filesystem transport in
``data_dir/queue`` and results go to a ``file://`` backend in ``data_dir``. Production points
``SHAPEHINT_BROKER_URL`` / ``SHAPEHINT_RESULT_BACKEND`` at Redis.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Celery

from store.settings import Settings, get_settings

QUEUE = "shapehint"
TRAIN_TASK = "shapehint.train"
PREDICT_TASK = "shapehint.predict"
TASK_FOR_KIND: dict[str, str] = {"train": TRAIN_TASK, "predict": PREDICT_TASK}


def uses_filesystem_broker(settings: Settings) -> bool:
    return settings.resolved_broker_url.startswith("filesystem://")


def _filesystem_options(settings: Settings) -> dict[str, Any]:
    messages = settings.queue_dir / "messages"
    processed = settings.queue_dir / "processed"
    control = settings.queue_dir / "control"
    for folder in (messages, processed, control):
        folder.mkdir(parents=True, exist_ok=True)
    # One folder for in and out: producer (API) and consumer (worker) share it on this machine.
    return {
        "data_folder_in": str(messages),
        "data_folder_out": str(messages),
        "processed_folder": str(processed),
        "control_folder": str(control),
        # Job state lives in the database; consumed messages need not be kept.
        "store_processed": False,
    }


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings`` (broker, result backend, reliability options)."""
    settings.ensure_dirs()
    filesystem = uses_filesystem_broker(settings)
    app = Celery("shapehint", include=["worker.tasks"])
    app.conf.update(
        broker_url=settings.resolved_broker_url,
        result_backend=settings.resolved_result_backend,
        broker_transport_options=(
            _filesystem_options(settings)
            if filesystem
            # Redis redelivers an unacked message after this long; a training may run for hours,
            # and a redelivered job that is no longer queued is skipped by the task's claim.
            else {"visibility_timeout": 12 * 3600}
        ),
        broker_connection_retry_on_startup=True,
        task_default_queue=QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # A message is acknowledged only after its task returns, and a lost worker process puts
        # it back: a restarted worker loses no job. One message at a time per process, so a
        # second worker on the same queue takes the next job instead of it waiting here.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=False,
        result_expires=7 * 24 * 3600,
        worker_hijack_root_logger=False,
        # The filesystem transport has no broadcast in every kombu version; remote control and
        # the events it needs are not used by shapehint (the job row is the status).
        worker_enable_remote_control=not filesystem,
        worker_send_task_events=False,
    )
    return app


_apps: dict[tuple[str, str, str], Celery] = {}


def get_celery(settings: Settings | None = None) -> Celery:
    """The app for ``settings`` (default: the process settings), one per broker/backend/queue."""
    settings = settings or get_settings()
    key = (settings.resolved_broker_url, settings.resolved_result_backend, str(settings.queue_dir))
    app = _apps.get(key)
    if app is None:
        app = _apps[key] = make_celery(settings)
    return app


def enqueue_job(job_id: int, kind: str, settings: Settings | None = None) -> str:
    """Send the job id to the queue by task name; returns the Celery task id."""
    result = get_celery(settings).send_task(TASK_FOR_KIND[kind], args=[job_id], queue=QUEUE)
    return str(result.id)


def worker_argv(concurrency: int = 1, hostname: str | None = None) -> list[str]:
    """Arguments of ``celery worker`` as shapehint runs it."""
    name = hostname or f"shapehint-{os.getpid()}@{socket.gethostname()}"
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        # One job per process: solo runs the task in the main process (no fork after CUDA, and
        # the shutdown signal reaches the running task); several use prefork children.
        f"--pool={'solo' if concurrency == 1 else 'prefork'}",
        "-Q",
        QUEUE,
        "-n",
        name,
        "--without-mingle",
        "--without-gossip",
    ]
    return argv


def run_worker(concurrency: int = 1, hostname: str | None = None) -> None:
    """Run a Celery worker in this process until it is stopped (blocks)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    get_celery().worker_main(worker_argv(concurrency, hostname))


def __getattr__(name: str) -> Celery:
    # ``celery -A worker.celery_app worker`` looks up ``app``; built lazily so importing this
    # module creates no directories and reads no settings.
    if name in {"app", "celery_app"}:
        return get_celery()
    raise AttributeError(name)
