"""``create_app(settings=None)``: the FastAPI application (REST under ``/api``, web UI at ``/``).

Every router module declares paths without the ``/api`` prefix; this factory mounts them all
under ``/api``. The app owns its engine, session factory and blob store (``app.state``), so
tests can build apps on separate databases side by side.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy import event

from api.auth.throttle import LoginThrottle, PasswordCheckPool
from api.errors import install_error_handlers
from api.middleware import BodySizeLimit, SecurityHeaders, route_matcher
from api.routes import (
    auth,
    health,
    hints,
    images,
    jobs,
    model_versions,
    predictions,
    priors,
    projects,
    references,
    reviews,
    tokens,
    units,
    users,
)
from store.blobs import open_blob_store
from store.db import make_engine, session_factory
from store.settings import Settings, get_settings

VERSION = "0.1.0"
DOCS_ASSETS_URL = "/docs-assets"
WEBUI_DIR = Path(__file__).resolve().parents[1] / "webui"

DESCRIPTION = """
shapehint trains segmentation networks from a few shape hints per structure (presence, size,
centroid, spread, length, or an ellipse) instead of painted masks.

**Auth**: every route except `/api/health` and `/api/units` needs `Authorization: Bearer <token>`
(create one with `POST /api/tokens`; `SHAPEHINT_BOOTSTRAP_TOKEN` is an admin token) or a browser
session from `POST /api/auth/login` (then send the `X-CSRF-Token` header on writes).

**Errors** always look like `{"detail": {"code": "...", "message": "..."}}`.
**Lists** take `offset` and `limit` and return `{"items", "total", "offset", "limit"}`.
"""

TAGS = [
    {"name": "health", "description": "Liveness, database and broker reachability"},
    {"name": "auth", "description": "Browser sign-in with a password (session cookie + CSRF)"},
    {"name": "users", "description": "Accounts (admins manage them)"},
    {"name": "tokens", "description": "Personal API tokens for scripts"},
    {"name": "projects", "description": "Projects, classes (labels) and members (roles)"},
    {
        "name": "images",
        "description": "Upload (DICOM, NIfTI, PNG/JPG/TIFF), list, slice renderings",
    },
    {"name": "hints", "description": "Shape hints per slice and class, with history"},
    {"name": "priors", "description": "Per-class priors for a whole project"},
    {"name": "references", "description": "Reference masks for evaluation"},
    {"name": "review", "description": "Accept / reject predictions per image"},
    {"name": "jobs", "description": "Training and prediction jobs"},
    {"name": "models", "description": "Trained model versions"},
    {"name": "predictions", "description": "Predicted masks and exports"},
]

ROUTERS = (
    health,
    units,
    auth,
    users,
    tokens,
    projects,
    images,
    hints,
    priors,
    references,
    reviews,
    jobs,
    model_versions,
    predictions,
)


def _sqlite_fast_commits(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # In WAL mode NORMAL keeps the database consistent and only risks the last commits on power
    # loss; FULL fsyncs every commit, which made each hint PUT ~12 ms slower.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _is_upload(route: APIRoute) -> bool:
    content = (route.openapi_extra or {}).get("requestBody", {}).get("content", {})
    return "multipart/form-data" in content


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.ensure_dirs()
    # Swagger UI and ReDoc from the files fastapi-offline ships (no CDN: works offline).
    app = FastAPIOffline(
        title="shapehint",
        version=VERSION,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url="/docs",
        redoc_url="/redoc",
        static_url=DOCS_ASSETS_URL,
    )
    engine = make_engine(settings.resolved_database_url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_fast_commits)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.blobs = open_blob_store(settings)
    app.state.login_throttle = LoginThrottle(settings)
    app.state.password_checks = PasswordCheckPool(settings.password_hash_concurrency)
    install_error_handlers(app)
    for module in ROUTERS:
        app.include_router(module.router, prefix="/api")
    # Upload routes stream their multipart body to disk under max_upload_bytes themselves.
    uploads = [
        r for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute) and _is_upload(r)
    ]
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_json_body_bytes,
        streams_body=route_matcher(uploads, prefix="/api"),
    )
    # Outermost of ours, so the limit's 413 carries the headers too.
    app.add_middleware(SecurityHeaders, docs_paths=("/docs", "/redoc"))
    if WEBUI_DIR.is_dir():
        # Last, so /api and /docs win; html=True serves index.html at "/".
        app.mount("/", StaticFiles(directory=WEBUI_DIR, html=True), name="webui")
    return app
