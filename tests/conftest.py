"""Shared fixtures: an app on a migrated database, SQLite and PostgreSQL alike.

Fixtures (all module-scoped, so one database is migrated per test module and backend):

- ``backend``: ``"sqlite"`` or ``"postgres"``; every test that uses the fixtures below runs on
  both. PostgreSQL uses ``need_postgres()`` (skips locally without it, fails in CI) and a fresh
  schema per module that is dropped afterwards, so runs never see each other's rows.
- ``database_url``: the URL of that database, already at Alembic ``head`` (migrations, never
  ``create_all``).
- ``app_settings``: ``Settings`` with a private ``data_dir`` (blobs, queue) in tmp, the database
  above and ``bootstrap_token=ADMIN_TOKEN``.
- ``app``: ``api.app.create_app(app_settings)`` with the bootstrap admin created.
- ``client``: a ``fastapi.testclient.TestClient`` on ``app`` (no auth headers by itself).
- ``admin_headers``: ``{"Authorization": "Bearer <ADMIN_TOKEN>"}``.
- ``api``: ``tests.api_helpers.Api`` = client + admin headers + ``create_project()``,
  ``upload_png(project_id)``, ``new_user(role, project_id)`` (see its docstring).

``tests.api_helpers`` also has ``png_bytes(height, width, seed)`` and ``bearer(token)``.
The test session points ``SHAPEHINT_DATA_DIR`` at a temporary folder so that nothing that
falls back to the global settings writes into the repository.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("SHAPEHINT_DATA_DIR", tempfile.mkdtemp(prefix="shapehint-tests-"))

from fastapi import FastAPI
from fastapi.testclient import TestClient

from store.settings import Settings
from tests.api_helpers import ADMIN_TOKEN, Api, bearer
from tests.requirements import need_postgres


def postgres_schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with every connection's search_path set to ``schema``."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    from store.migrate import upgrade_head

    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        url = f"sqlite:///{path}"
        upgrade_head(url)
        yield url
        return
    base = need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_schema_url(base, schema)
    try:
        upgrade_head(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def app_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        database_url=database_url,
        bootstrap_token=ADMIN_TOKEN,
    )


@pytest.fixture(scope="module")
def app(app_settings: Settings) -> Iterator[FastAPI]:
    from api.app import create_app
    from api.services.users import ensure_admin

    application = create_app(app_settings)
    with application.state.session_factory() as session:
        ensure_admin(session, app_settings.bootstrap_token)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def admin_headers() -> dict[str, str]:
    return bearer(ADMIN_TOKEN)


@pytest.fixture(scope="module")
def api(client: TestClient, admin_headers: dict[str, str]) -> Api:
    return Api(client=client, headers=admin_headers)
