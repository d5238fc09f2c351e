"""Review state per (image, model version), torch-free, shared by the API and the worker.

A decision judges one model version's predicted mask. ``images.review_status`` mirrors the
latest decision on the image's *current* version: the newest version that predicted it (or,
without any prediction, the latest decision that names no version).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.jobs_tables import ModelVersion, Prediction
from store.model_versions import NEWEST_FIRST
from store.tables import Image, Review


def current_version_id(session: Session, image_id: int) -> int | None:
    """Id of the newest model version that has a prediction of the image, else None."""
    return session.scalar(
        select(ModelVersion.id)
        .join(Prediction, Prediction.model_version_id == ModelVersion.id)
        .where(Prediction.image_id == image_id)
        .order_by(NEWEST_FIRST)
        .limit(1)
    )


def latest_status(session: Session, image_id: int, version_id: int | None) -> str | None:
    """Status of the latest decision on ``version_id``'s mask of the image (None = none yet)."""
    where = (
        Review.model_version_id.is_(None)
        if version_id is None
        else (Review.model_version_id == version_id)
    )
    return session.scalar(
        select(Review.status)
        .where(Review.image_id == image_id, where)
        .order_by(Review.id.desc())
        .limit(1)
    )


def refresh_review_status(session: Session, image_id: int) -> str | None:
    """Recompute ``images.review_status`` (no commit); returns it."""
    image = session.get(Image, image_id)
    if image is None:
        return None
    image.review_status = latest_status(session, image_id, current_version_id(session, image_id))
    return image.review_status


def accepted_image_ids(session: Session, version_id: int) -> set[int]:
    """Images whose latest decision on ``version_id``'s mask is "accepted"."""
    latest = (
        select(Review.image_id, func.max(Review.id).label("rid"))
        .where(Review.model_version_id == version_id)
        .group_by(Review.image_id)
        .subquery()
    )
    rows = session.scalars(
        select(Review.image_id)
        .join(latest, Review.id == latest.c.rid)
        .where(Review.status == "accepted")
    )
    return set(rows)
