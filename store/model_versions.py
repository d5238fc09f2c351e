"""Which model version is the newest: the highest ``version`` number of its project. Every query
that needs "the latest version" or lists versions newest first uses this module."""

from __future__ import annotations

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
