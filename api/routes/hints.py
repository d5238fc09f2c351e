"""Hints per image slice: PUT replaces your hints on the slice; GET shows given + derived bounds."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from api.deps import MAX_ID, CurrentUser, Id, SessionDep, SliceIndex, require_image_role
from api.errors import ERROR_RESPONSES
from api.pagination import PageDep
from api.schemas.common import Page
from api.schemas.hints import ELLIPSE_EXAMPLE, HINT_EXAMPLE, HintChange, SliceHints, SliceSummary
from api.services import hints as service

router = APIRouter(tags=["hints"], responses=ERROR_RESPONSES)

HintBody = Annotated[
    dict[str, Any],
    Body(
        description="Class name -> hint (docs/interfaces.md). Replaces all your hints on the "
        "slice; `{}` withdraws them.",
        openapi_examples={
            "intervals": {"summary": "Size and centroid intervals", "value": HINT_EXAMPLE},
            "ellipse": {"summary": "Ellipse shorthand", "value": ELLIPSE_EXAMPLE},
        },
    ),
]


@router.put("/images/{image_id}/slices/{z}/hints")
def put_hints(
    image_id: Id, z: SliceIndex, body: HintBody, session: SessionDep, user: CurrentUser
) -> SliceHints:
    """Set your hints on slice ``z`` (annotator role); every change is kept in the history."""
    image, project = require_image_role(session, user, image_id, "annotator")
    service.put_hints(session, user, image, project, z, body)
    return service.get_hints(session, user, image, project, z, None)


@router.get("/images/{image_id}/slices/{z}/hints")
def get_hints(
    image_id: Id,
    z: SliceIndex,
    session: SessionDep,
    user: CurrentUser,
    author: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Show this user's hints in `hints` (default: yours)"),
    ] = None,
) -> SliceHints:
    """Your hints as given, every author's latest hint, and the derived bounds (px and mm)."""
    image, project = require_image_role(session, user, image_id, "viewer")
    return service.get_hints(session, user, image, project, z, author)


@router.get("/images/{image_id}/slices/{z}/hints/history")
def hint_history(
    image_id: Id, z: SliceIndex, session: SessionDep, user: CurrentUser, page: PageDep
) -> Page[HintChange]:
    """Every change on the slice, newest first (who, when, what; null = withdrawn)."""
    image, _ = require_image_role(session, user, image_id, "viewer")
    items, total = service.hint_history(session, image, z, page.offset, page.limit)
    return Page(items=items, total=total, offset=page.offset, limit=page.limit)


@router.get("/images/{image_id}/hints")
def hinted_slices(image_id: Id, session: SessionDep, user: CurrentUser) -> list[SliceSummary]:
    """Slices of the image that have hints, with their classes and number of authors."""
    image, _ = require_image_role(session, user, image_id, "viewer")
    return service.hinted_slices(session, image)
