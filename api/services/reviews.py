"""Review decisions per (image, model version), append-only; ``images.review_status`` mirrors
the latest decision on the image's current (newest predicted) version (``store.reviews``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError
from store.jobs_tables import ModelVersion, Prediction
from store.reviews import current_version_id, latest_status, refresh_review_status
from store.tables import Image, Review, User


def resolve_version(session: Session, image: Image, model_version_id: int | None) -> int | None:
    """The version a decision is about: the given one (it must have predicted the image), else
    the image's newest predicted version, else None (no prediction yet)."""
    if model_version_id is None:
        return current_version_id(session, image.id)
    found = session.scalar(
        select(ModelVersion.id)
        .join(Prediction, Prediction.model_version_id == ModelVersion.id)
        .where(Prediction.image_id == image.id, ModelVersion.id == model_version_id)
    )
    if found is None:
        raise ApiError(
            404,
            "no_prediction",
            f"image {image.id} has no prediction by model version {model_version_id}",
        )
    return found


def put_review(
    session: Session,
    user: User,
    image: Image,
    status: str,
    comment: str,
    model_version_id: int | None = None,
) -> Review:
    version_id = resolve_version(session, image, model_version_id)
    review = Review(
        image_id=image.id,
        reviewer_id=user.id,
        status=status,
        comment=comment,
        model_version_id=version_id,
    )
    session.add(review)
    session.flush()
    refresh_review_status(session, image.id)
    session.commit()
    return review


def state(
    session: Session, image: Image, model_version_id: int | None
) -> tuple[int | None, str | None]:
    """``(version id, latest status on it)`` for the given or current version."""
    version_id = resolve_version(session, image, model_version_id)
    return version_id, latest_status(session, image.id, version_id)


def history(
    session: Session, image: Image, version_id: int | None = None, limit: int = 100
) -> list[Review]:
    """Decisions on the image, newest first (only those on ``version_id`` when given)."""
    query = select(Review).where(Review.image_id == image.id)
    if version_id is not None:
        query = query.where(Review.model_version_id == version_id)
    return list(session.scalars(query.order_by(Review.id.desc()).limit(limit)))
