"""Alembic environment: runs against ``sqlalchemy.url`` set by ``store.migrate``."""

from __future__ import annotations

import contextlib

from alembic import context
from sqlalchemy import create_engine, pool

import store.tables
from store.db import Base, make_engine

with contextlib.suppress(ImportError):  # the jobs tables join once their module exists
    import store.jobs_tables  # noqa: F401

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    # make_engine turns on SQLite's foreign keys, so ON DELETE rules hold in migrations too.
    engine = (
        make_engine(url)
        if url.startswith("sqlite")
        else create_engine(url, poolclass=pool.NullPool)
    )
    try:
        with engine.connect() as connection:
            # Batch mode lets later migrations alter SQLite tables (copy-and-move).
            context.configure(
                connection=connection, target_metadata=target_metadata, render_as_batch=True
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
