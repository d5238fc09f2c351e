"""One error body for every 4xx/5xx: ``{"detail": {"code": str, "message": str, ...}}``.

Raise ``ApiError`` (or the helpers ``not_found``, ``bad_request``, ...) from services and routes;
FastAPI's own errors (validation, 404 of unknown paths, 405) are rewritten to the same shape.
Validation errors add ``"errors": [{"loc": [...], "message": str, "type": str}]``.
"""

from __future__ import annotations

import errno
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client caused (or a known server condition) with a stable ``code``."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": {"code": self.code, "message": self.message, **self.extra}}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: ErrorDetail


def bad_request(message: str, code: str = "bad_request", **extra: Any) -> ApiError:
    return ApiError(400, code, message, **extra)


def unprocessable(message: str, code: str = "invalid", **extra: Any) -> ApiError:
    return ApiError(422, code, message, **extra)


def not_found(what: str, ident: object) -> ApiError:
    return ApiError(404, "not_found", f"{what} {ident} not found")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def conflict(message: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, message)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message)


# Documented on every route that can fail this way (OpenAPI ``responses=``).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "Your project role does not allow this"},
    404: {"model": ErrorBody, "description": "Not found (or not visible to you)"},
    422: {"model": ErrorBody, "description": "Invalid input; the message names the problem"},
}


def _code_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def _loc_text(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body",)) or "body"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if isinstance(detail, dict) and "code" in detail and "message" in detail:
        body = detail
    else:
        body = {"code": _code_for(exc.status_code), "message": str(detail)}
    return JSONResponse(
        {"detail": body}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    summary = "; ".join(f"{_loc_text(e['loc'])}: {e['message']}" for e in errors[:5])
    return JSONResponse(
        {"detail": {"code": "validation_error", "message": summary, "errors": errors}},
        status_code=422,
    )


async def _concurrent_change(_request: Request, exc: Exception) -> JSONResponse:
    # The services lock what they read before they write; this is the safety net for a write
    # that still lost a race (a row deleted or inserted by a parallel request), so the client
    # gets a retryable 409 instead of a 500.
    log.warning("write lost a race: %s", exc)
    return JSONResponse(
        {
            "detail": {
                "code": "conflict",
                "message": "the change conflicts with a concurrent change; reload and try again",
            }
        },
        status_code=409,
    )


# A full disk (or quota) is the server's condition, not a bug: 507 Insufficient Storage.
_NO_SPACE = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


async def _os_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OSError)
    if exc.errno in _NO_SPACE:
        log.error("out of storage space: %s", exc)
        return JSONResponse(
            {
                "detail": {
                    "code": "insufficient_storage",
                    "message": "the server is out of storage space; nothing was stored",
                }
            },
            status_code=507,
        )
    return await _unexpected(request, exc)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        {"detail": {"code": "internal_error", "message": "internal server error"}},
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _concurrent_change)
    app.add_exception_handler(StaleDataError, _concurrent_change)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected)
