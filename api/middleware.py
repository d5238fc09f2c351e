"""Pure ASGI middleware: a body size limit for non-upload requests, and security headers.

Both run before routing, authentication and body parsing, so an anonymous client can neither
make the server buffer a huge JSON body nor get a response without the headers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The web UI (webui/) loads only its own modules and stylesheet; slice images are blob: URLs
# and the favicon is a data: URL. Nothing may frame the app (clickjacking).
APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc (served from local files) start with an inline script and inject
# styles; ReDoc renders in a blob: worker. Still no external origin.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; connect-src 'self'; font-src 'self' data:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds CSP, nosniff, frame and referrer headers to every response (``docs_paths`` get the
    Swagger/ReDoc CSP). Headers a route set itself are kept."""

    def __init__(self, app: ASGIApp, docs_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.docs_prefixes = tuple(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(self.docs_prefixes) else APP_CSP
        extra = (*SECURITY_HEADERS, (b"content-security-policy", csp.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuses (413) request bodies over ``max_bytes``: at once from Content-Length, else by
    counting the streamed chunks, so nothing past the limit is ever buffered.

    ``streams_body(scope)`` names the requests that stream and limit their own body (uploads,
    ``api.uploads``); they pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, streams_body: Callable[[Scope], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streams_body = streams_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.streams_body(scope):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, declared)
            return
        seen = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # Whatever the app made of the aborted read (FastAPI turns it into a 400), the
            # client gets the 413.
            if over:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, guarded_send)
        if over and not started:
            await self._refuse(send, None)

    async def _refuse(self, send: Send, declared: int | None) -> None:
        size = f"of {declared} bytes " if declared is not None else ""
        body = json.dumps(
            {
                "detail": {
                    "code": "too_large",
                    "message": f"request body {size}is over the limit of {self.max_bytes} bytes",
                    "limit": self.max_bytes,
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def route_matcher(routes: Iterable[BaseRoute], prefix: str = "") -> Callable[[Scope], bool]:
    """A predicate: does the request match one of ``routes`` (path and method), declared
    without ``prefix`` and mounted under it?"""
    chosen = list(routes)

    def matches(scope: Scope) -> bool:
        root = scope.get("root_path", "") + prefix
        if not scope.get("path", "").startswith(root + "/"):
            return False
        inner = {**scope, "root_path": root}
        return any(route.matches(inner)[0] == Match.FULL for route in chosen)

    return matches
