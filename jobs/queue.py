"""The job queue: the Celery application (built from ``store.settings``), sending a job's id by
task name, and asking the broker which job messages it holds.

Importing this module is cheap and never imports torch: the API imports it to enqueue jobs by task
name (``send_task``); the worker (``worker.tasks``, named here only as the string Celery loads)
runs them.

Defaults need nothing installed: the broker is kombu's filesystem transport in
``data_dir/queue`` and results go to a ``file://`` backend in ``data_dir``. Production points
``SHAPEHINT_BROKER_URL`` / ``SHAPEHINT_RESULT_BACKEND`` at Redis.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from typing import Any

from celery import Celery

from store.settings import Settings, get_settings

log = logging.getLogger(__name__)

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


class BrokerUnavailable(RuntimeError):
    """The broker could not be asked (down, refused, timed out)."""


# Short timeouts: the reconciler and /api/health must answer quickly when the broker is down.
BROKER_TIMEOUT_S = 2.0
# kombu's Redis transport: one list per priority step (``queue`` for 0, ``queue\x06\x16N``
# for the others) and a hash of delivered, unacknowledged messages (running or prefetched).
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)
_REDIS_UNACKED = "unacked"


def job_id_of_message(payload: Any) -> int | None:
    """The job id a shapehint task message carries (kombu's JSON envelope), else None."""
    try:
        if isinstance(payload, bytes | str):
            payload = json.loads(payload)
        if not isinstance(payload, dict):
            return None
        headers = payload.get("headers") or {}
        task = headers.get("task")
        body = payload.get("body")
        if (payload.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        decoded = json.loads(body) if isinstance(body, bytes | str) else body
        if isinstance(decoded, dict):  # Celery message protocol 1
            task, args = decoded.get("task", task), decoded.get("args")
        else:  # protocol 2: [args, kwargs, embed]
            args = decoded[0]
        if task not in TASK_FOR_KIND.values() or not args:
            return None
        return int(args[0])
    except (ValueError, TypeError, KeyError, IndexError):
        return None


def _filesystem_job_ids(settings: Settings) -> set[int]:
    if not settings.queue_dir.is_dir():
        raise BrokerUnavailable(f"queue folder {settings.queue_dir} is missing")
    # The messages folder appears with the first message sent.
    folder = settings.queue_dir / "messages"
    found: set[int] = set()
    for path in folder.glob(f"*.{QUEUE}.msg"):
        try:
            job_id = job_id_of_message(path.read_bytes())
        except OSError:  # taken by a worker meanwhile: it will claim or skip the job
            continue
        if job_id is not None:
            found.add(job_id)
    return found


_redis_clients: dict[str, Any] = {}
_redis_lock = threading.Lock()


def redis_client(url: str) -> Any:
    """One client (with its own connection pool) per Redis URL and process: asking the broker
    reuses a connection instead of opening one per call."""
    import redis  # imported late: the filesystem broker needs no client

    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(
                url,
                socket_connect_timeout=BROKER_TIMEOUT_S,
                socket_timeout=BROKER_TIMEOUT_S,
                health_check_interval=30,
            )
        return client


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


def _redis_job_ids(url: str) -> set[int]:
    import redis

    keys = [QUEUE] + [f"{QUEUE}{_REDIS_PRIORITY_SEP}{p}" for p in _REDIS_PRIORITY_STEPS]
    try:
        # One MULTI/EXEC: a message moving from a list to the unacked hash is seen in one.
        pipe = redis_client(url).pipeline(transaction=True)
        for key in keys:
            pipe.lrange(key, 0, -1)
        pipe.hvals(_REDIS_UNACKED)
        *lists, unacked = pipe.execute()
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
    found: set[int] = set()
    for raw in (m for messages in lists for m in messages):
        job_id = job_id_of_message(raw)
        if job_id is not None:
            found.add(job_id)
    for raw in unacked:  # [message, exchange, routing_key]
        try:
            job_id = job_id_of_message(json.loads(raw)[0])
        except (ValueError, TypeError, IndexError):
            job_id = None
        if job_id is not None:
            found.add(job_id)
    return found


def queued_job_ids(settings: Settings) -> set[int] | None:
    """Ids of the jobs whose message the broker holds (waiting or delivered but unacknowledged).

    None when this kind of broker cannot be inspected; BrokerUnavailable when it is down.
    """
    url = settings.resolved_broker_url
    if uses_filesystem_broker(settings):
        return _filesystem_job_ids(settings)
    if _is_redis(url):
        return _redis_job_ids(url)
    return None


def broker_status(settings: Settings) -> str:
    """``ok`` when the broker answers within BROKER_TIMEOUT_S, else a short reason. Reuses one
    connection pool per Redis URL; other network brokers get one short-lived connection."""
    url = settings.resolved_broker_url
    try:
        if uses_filesystem_broker(settings):
            folder = settings.queue_dir
            if not folder.is_dir():
                return f"unavailable: queue folder {folder} is missing"
            if not os.access(folder, os.W_OK):
                return f"unavailable: queue folder {folder} is not writable"
            return "ok"
        if _is_redis(url):
            redis_client(url).ping()
            return "ok"
        from kombu import Connection

        with Connection(url, connect_timeout=BROKER_TIMEOUT_S) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
        return "ok"
    except Exception as exc:  # any failure means "down" to a health check
        return f"unreachable: {type(exc).__name__}"
