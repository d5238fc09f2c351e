"""``GET /api/health``: liveness plus database and broker reachability (no auth)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep
from store.settings import Settings

router = APIRouter(tags=["health"])


def broker_status(settings: Settings) -> str:
    """ "ok" when the Celery broker can be reached, else a short reason."""
    url = settings.resolved_broker_url
    if url.startswith("filesystem"):
        queue = settings.queue_dir
        return "ok" if queue.is_dir() else f"queue folder {queue} is missing"
    from kombu import Connection  # imported late: only network brokers need it

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


@router.get(
    "/health",
    summary="Service health",
    responses={503: {"description": "Database unreachable"}},
    openapi_extra={"security": []},
)
def health(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    try:
        session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}"
    broker = broker_status(settings)
    if database != "ok":
        response.status_code = 503
    return {
        "status": "ok" if database == "ok" else "error",
        "version": request.app.version,
        "database": database,
        "broker": broker,
    }
