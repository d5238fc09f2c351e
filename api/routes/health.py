"""``GET /api/health``: the database, broker and storage states, each on its own (no auth).

Answer: ``{"status", "version", "database", "broker", "storage", "checked_at"}``; each
dependency is ``"ok"`` or a short reason. ``status`` is ``"ok"`` when all three answer and
``"degraded"`` when any one does not. The HTTP status is 200, except **503 when the database is
down**: without it no route works, so a load balancer should take the instance out; with the
broker or the storage down reads (or submissions) still work, so the instance stays in and
monitoring reads ``status``.

Cheap under load: the checks run at most once per ``HEALTH_TTL_S`` per app (other callers get
the cached answer), in parallel, each bounded by ``CHECK_TIMEOUT_S``; the broker check reuses
one Redis connection pool (``jobs.queue.broker_status``), never a new connection per call.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Engine, text

from jobs.queue import broker_status
from store.blobs import BlobStore
from store.settings import Settings

router = APIRouter(tags=["health"])

HEALTH_TTL_S = 5.0
CHECK_TIMEOUT_S = 3.0
DEPENDENCIES: tuple[str, ...] = ("database", "broker", "storage")

# Few threads: a hung check keeps its thread, so at most this many can hang at once and later
# checks then report a timeout instead of piling up threads.
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="health")


def database_status(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


def storage_status(blobs: BlobStore) -> str:
    """A local store: its folder exists and is writable. Others: a lookup of a key that does
    not exist answers (one HEAD request on S3)."""
    try:
        root = getattr(blobs, "root", None)
        if isinstance(root, os.PathLike):
            if not os.path.isdir(root):
                return f"unavailable: blob folder {root} is missing"
            if not os.access(root, os.W_OK):
                return f"unavailable: blob folder {root} is not writable"
            return "ok"
        blobs.exists(BlobStore.new_key())
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


def run_checks(
    checks: dict[str, Callable[[], str]], timeout_s: float = CHECK_TIMEOUT_S
) -> dict[str, str]:
    """Run the checks in parallel; one that takes longer than ``timeout_s`` is reported so."""
    futures = {name: _pool.submit(check) for name, check in checks.items()}
    deadline = time.monotonic() + timeout_s
    out: dict[str, str] = {}
    for name, future in futures.items():
        try:
            out[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            out[name] = f"unreachable: no answer within {timeout_s:g} s"
        except Exception as exc:  # checks return reasons; this guards a bug in one
            out[name] = f"error: {type(exc).__name__}"
    return out


def overall(states: dict[str, str]) -> tuple[str, int]:
    """``(status, HTTP status)`` of dependency states (see the module docstring)."""
    if all(state == "ok" for state in states.values()):
        return "ok", 200
    return "degraded", 503 if states.get("database") != "ok" else 200


class HealthCache:
    """The last check results, refreshed by one caller at a time once older than ``ttl_s``."""

    def __init__(self, probe: Callable[[], dict[str, str]], ttl_s: float = HEALTH_TTL_S) -> None:
        self.probe, self.ttl_s = probe, ttl_s
        self._lock = threading.Lock()
        self._states: dict[str, str] | None = None
        self._at = 0.0
        self.checked_at: datetime | None = None

    def get(self) -> dict[str, str]:
        with self._lock:
            if self._states is None or time.monotonic() - self._at >= self.ttl_s:
                self._states = self.probe()
                self._at = time.monotonic()
                self.checked_at = datetime.now(UTC)
            return dict(self._states)


def _probe_for(
    engine: Engine, settings: Settings, blobs: BlobStore
) -> Callable[[], dict[str, str]]:
    def probe() -> dict[str, str]:
        return run_checks(
            {
                "database": lambda: database_status(engine),
                "broker": lambda: broker_status(settings),
                "storage": lambda: storage_status(blobs),
            }
        )

    return probe


_cache_lock = threading.Lock()


def health_cache(request: Request) -> HealthCache:
    """The app's cache (made on first use)."""
    state = request.app.state
    with _cache_lock:
        cache = getattr(state, "health_cache", None)
        if cache is None:
            cache = state.health_cache = HealthCache(
                _probe_for(state.engine, state.settings, state.blobs)
            )
        return cache


@router.get(
    "/health",
    summary="Service health",
    responses={
        200: {
            "description": "All dependencies answer, or status 'degraded': broker or storage down"
        },
        503: {"description": "Status 'degraded': the database is down"},
    },
    openapi_extra={"security": []},
)
def health(request: Request, response: Response) -> dict[str, Any]:
    """Database, broker and storage states (cached for a few seconds)."""
    cache = health_cache(request)
    states = cache.get()
    status, code = overall(states)
    response.status_code = code
    return {
        "status": status,
        "version": request.app.version,
        **{name: states.get(name, "unknown") for name in DEPENDENCIES},
        "checked_at": cache.checked_at.isoformat() if cache.checked_at else None,
    }
