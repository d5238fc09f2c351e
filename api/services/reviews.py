"""Review decisions per image (append-only); ``images.review_status`` mirrors the latest."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.tables import Image, Review, User


def put_review(session: Session, user: User, image: Image, status: str, comment: str) -> Review:
    review = Review(image_id=image.id, reviewer_id=user.id, status=status, comment=comment)
    session.add(review)
    image.review_status = status
    session.commit()
    return review


def history(session: Session, image: Image, limit: int = 100) -> list[Review]:
    return list(
        session.scalars(
            select(Review)
            .where(Review.image_id == image.id)
            .order_by(Review.id.desc())
            .limit(limit)
        )
    )
