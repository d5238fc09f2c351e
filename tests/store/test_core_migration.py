"""The Alembic migration 0001_core matches store.tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

import store.tables  # noqa: F401  (registers the core tables)
from store.db import Base
from store.migrate import alembic_config, current_heads, upgrade_head
from tests.conftest import postgres_schema_url
from tests.requirements import need_postgres

CORE_TABLES = {
    "users",
    "api_tokens",
    "web_sessions",
    "projects",
    "project_classes",
    "project_members",
    "images",
    "hints",
    "priors",
    "reference_masks",
    "reviews",
}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite3'}"
        return
    base = need_postgres()
    schema = f"m_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield postgres_schema_url(base, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _core_diffs(url: str) -> list:  # type: ignore[type-arg]
    """Differences between the migrated database and the core models (other tables ignored)."""

    def include_name(name: str | None, type_: str, _parents: dict) -> bool:  # type: ignore[type-arg]
        return type_ != "table" or name in CORE_TABLES

    def include_object(_obj, name, type_, _reflected, _compare_to) -> bool:  # type: ignore[no-untyped-def]
        return type_ != "table" or name in CORE_TABLES

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": include_name,
                    "include_object": include_object,
                },
            )
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_comparison_sees_a_missing_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'drift.sqlite3'}"
    upgrade_head(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE reviews DROP COLUMN comment"))
    engine.dispose()
    assert any("comment" in str(d) for d in _core_diffs(url))


def test_upgrade_creates_core_schema_matching_the_models(empty_database: str) -> None:
    upgrade_head(empty_database)
    assert current_heads(empty_database)
    engine = create_engine(empty_database)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert tables >= CORE_TABLES
    assert _core_diffs(empty_database) == []


def test_downgrade_to_base_and_up_again(empty_database: str) -> None:
    upgrade_head(empty_database)
    command.downgrade(alembic_config(empty_database), "base")
    engine = create_engine(empty_database)
    assert not set(inspect(engine).get_table_names()) & CORE_TABLES
    engine.dispose()
    upgrade_head(empty_database)
    # Back at the newest revision (whatever later migrations add).
    heads = ScriptDirectory.from_config(alembic_config(empty_database)).get_heads()
    assert current_heads(empty_database) == set(heads)
    engine = create_engine(empty_database)
    assert set(inspect(engine).get_table_names()) >= CORE_TABLES
    engine.dispose()
