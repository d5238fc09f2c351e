"""Review: accept / reject / ask for more hints, per image, with a comment."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, Id, SessionDep, require_image_role
from api.errors import ERROR_RESPONSES
from api.schemas.images import ReviewIn, ReviewOut, ReviewState
from api.services import reviews as service

router = APIRouter(tags=["review"], responses=ERROR_RESPONSES)


def _state(session: SessionDep, image_id: Id, status: str | None) -> ReviewState:
    from store.tables import Image

    image = session.get(Image, image_id)
    assert image is not None
    return ReviewState(
        image_id=image_id,
        status=status,  # type: ignore[arg-type]
        history=[ReviewOut.model_validate(r) for r in service.history(session, image)],
    )


@router.put("/images/{image_id}/review")
def put_review(image_id: Id, body: ReviewIn, session: SessionDep, user: CurrentUser) -> ReviewState:
    """Record a decision (annotator role); image lists can filter by the latest one."""
    image, _ = require_image_role(session, user, image_id, "annotator")
    service.put_review(session, user, image, body.status, body.comment)
    return _state(session, image.id, image.review_status)


@router.get("/images/{image_id}/review")
def get_review(image_id: Id, session: SessionDep, user: CurrentUser) -> ReviewState:
    image, _ = require_image_role(session, user, image_id, "viewer")
    return _state(session, image.id, image.review_status)
