"""Which model version is the newest: the highest ``version`` number of its project (and, across
projects, the last created). Every query that needs "the latest version" or lists versions
newest first uses this module."""

from __future__ import annotations

from typing import Any

from sqlalchemy import UnaryExpression, select
from sqlalchemy.orm import Session

from store.jobs_tables import ModelVersion

NEWEST_FIRST: UnaryExpression[int] = ModelVersion.version.desc()
"""ORDER BY clause: newest model version first."""


def latest_version(
    session: Session, project_id: int, version_id: int | None = None
) -> ModelVersion | None:
    """Version ``version_id`` of the project, or (None) the project's newest; None if there is
    no such version."""
    query = select(ModelVersion).where(ModelVersion.project_id == project_id)
    if version_id is not None:
        query = query.where(ModelVersion.id == version_id)
    return session.scalars(query.order_by(NEWEST_FIRST)).first()


def recent_runs(session: Session, limit: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(config, metrics)`` of the ``limit`` model versions trained last on this server, in any
    project, newest first (what their runs measured, e.g. the pace of a step)."""
    rows = session.execute(
        select(ModelVersion.config, ModelVersion.metrics)
        .order_by(ModelVersion.id.desc())
        .limit(limit)
    )
    return [(dict(config or {}), dict(metrics or {})) for config, metrics in rows]
