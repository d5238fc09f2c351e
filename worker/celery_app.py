"""The worker side of the Celery app: ``celery -A worker.celery_app worker`` and
``shapehint worker``. The app itself and the task names are in ``jobs.queue``."""

from __future__ import annotations

import os
import socket

from celery import Celery

from jobs.queue import QUEUE, get_celery


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
