"""Alembic, configured in code (no alembic.ini): the only way the schema changes.

``upgrade_head(database_url=None)`` brings a database (default: the configured one) to the
latest revision; scripts live in the repository's ``migrations/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from store.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    settings = get_settings()
    if database_url is None:
        settings.ensure_dirs()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # "%" is ConfigParser interpolation syntax; URLs with escaped passwords contain it.
    url = database_url or settings.resolved_database_url
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_head(database_url: str | None = None) -> None:
    command.upgrade(alembic_config(database_url), "head")


def current_heads(database_url: str | None = None) -> set[str]:
    """Revisions the database is at (empty for a fresh database)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    url = database_url or get_settings().resolved_database_url
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
