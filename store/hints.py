"""Reading annotations as they count: the latest hint per (image, slice, class, author), priors.

Used by the API (GET hints) and by the worker (training inputs). Payloads are the hint / prior
JSON of docs/interfaces.md exactly as given; convert them with ``models.bounds.parse_hint`` /
``parse_prior`` and combine several authors with ``models.bounds.intersect``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import Hint, Prior, ProjectClass, User


@dataclass(frozen=True)
class HintRecord:
    """The latest hint of one author for (image, z, class)."""

    image_id: int
    z: int
    class_name: str
    class_index: int
    author_id: int
    author: str
    payload: dict[str, Any]
    created_at: datetime


def latest_hints(
    session: Session, image_ids: Sequence[int], z: int | None = None
) -> list[HintRecord]:
    """Every author's latest (not withdrawn) hint on the given images (optionally one slice),
    ordered by image, slice, class index, author."""
    if not image_ids:
        return []
    filters = [Hint.image_id.in_(list(image_ids))]
    if z is not None:
        filters.append(Hint.z == z)
    latest = (
        select(func.max(Hint.id).label("id"))
        .where(*filters)
        .group_by(Hint.image_id, Hint.z, Hint.class_id, Hint.author_id)
        .subquery()
    )
    rows = session.execute(
        select(Hint, ProjectClass.name, ProjectClass.index, User.username)
        .join(latest, latest.c.id == Hint.id)
        .join(ProjectClass, ProjectClass.id == Hint.class_id)
        .join(User, User.id == Hint.author_id)
        .where(Hint.payload.is_not(None))
        .order_by(Hint.image_id, Hint.z, ProjectClass.index, Hint.author_id)
    ).all()
    out = []
    for hint, class_name, class_index, username in rows:
        if hint.payload is None:  # JSON null may come back as None despite the filter
            continue
        out.append(
            HintRecord(
                image_id=hint.image_id,
                z=hint.z,
                class_name=class_name,
                class_index=class_index,
                author_id=hint.author_id,
                author=username,
                payload=hint.payload,
                created_at=hint.created_at,
            )
        )
    return out


def hints_by_slice(
    session: Session, image_ids: Sequence[int]
) -> dict[tuple[int, int], dict[str, list[dict[str, Any]]]]:
    """``{(image_id, z): {class_name: [payload of each author]}}`` for training."""
    out: dict[tuple[int, int], dict[str, list[dict[str, Any]]]] = {}
    for rec in latest_hints(session, image_ids):
        out.setdefault((rec.image_id, rec.z), {}).setdefault(rec.class_name, []).append(rec.payload)
    return out


def project_priors(session: Session, project_id: int) -> dict[str, dict[str, Any]]:
    """``{class_name: prior payload}`` of a project."""
    rows = session.execute(
        select(ProjectClass.name, Prior.payload)
        .join(ProjectClass, ProjectClass.id == Prior.class_id)
        .where(Prior.project_id == project_id)
        .order_by(ProjectClass.index)
    ).all()
    return {name: payload for name, payload in rows}
