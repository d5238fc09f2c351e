"""Review: accept / reject / ask for more hints, per image, with a comment."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from api.deps import CurrentUser, Id, SessionDep, require_image_role
from api.errors import ERROR_RESPONSES
from api.schemas.images import ReviewIn, ReviewOut, ReviewState
from api.services import reviews as service
from store.tables import Image

router = APIRouter(tags=["review"], responses=ERROR_RESPONSES)


def _state(session: Session, image: Image) -> ReviewState:
    return ReviewState(
        image_id=image.id,
        status=image.review_status,  # type: ignore[arg-type]
        history=[ReviewOut.model_validate(r) for r in service.history(session, image)],
    )


@router.put("/images/{image_id}/review")
def put_review(image_id: Id, body: ReviewIn, session: SessionDep, user: CurrentUser) -> ReviewState:
    """Record a decision (annotator role); image lists can filter by the latest one."""
    image, _ = require_image_role(session, user, image_id, "annotator")
    service.put_review(session, user, image, body.status, body.comment)
    return _state(session, image)


@router.get("/images/{image_id}/review")
def get_review(image_id: Id, session: SessionDep, user: CurrentUser) -> ReviewState:
    image, _ = require_image_role(session, user, image_id, "viewer")
    return _state(session, image)
