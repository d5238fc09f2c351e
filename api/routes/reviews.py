"""Review: accept / reject / ask for more hints, per image and model version, with a comment."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.deps import MAX_ID, CurrentUser, Id, SessionDep, require_image_role
from api.errors import ERROR_RESPONSES
from api.schemas.images import ReviewIn, ReviewOut, ReviewState
from api.services import reviews as service
from store.tables import Image

router = APIRouter(tags=["review"], responses=ERROR_RESPONSES)

ModelQuery = Annotated[
    int | None,
    Query(alias="model", ge=1, le=MAX_ID, description="Model version id (default: the newest)"),
]


def _state(session: Session, image: Image, model_version_id: int | None) -> ReviewState:
    version_id, status = service.state(session, image, model_version_id)
    return ReviewState(
        image_id=image.id,
        model_version_id=version_id,
        status=status,  # type: ignore[arg-type]
        history=[ReviewOut.model_validate(r) for r in service.history(session, image)],
    )


@router.put("/images/{image_id}/review")
def put_review(image_id: Id, body: ReviewIn, session: SessionDep, user: CurrentUser) -> ReviewState:
    """Record a decision on a model version's mask (annotator role; default version: the
    newest that predicted the image). A newer model's mask starts unreviewed."""
    image, _ = require_image_role(session, user, image_id, "annotator")
    review = service.put_review(
        session, user, image, body.status, body.comment, body.model_version_id
    )
    return _state(session, image, review.model_version_id)


@router.get("/images/{image_id}/review")
def get_review(
    image_id: Id, session: SessionDep, user: CurrentUser, model: ModelQuery = None
) -> ReviewState:
    """The latest decision on a model version's mask (default: the newest predicted version)
    and every decision on the image, newest first."""
    image, _ = require_image_role(session, user, image_id, "viewer")
    return _state(session, image, model)
