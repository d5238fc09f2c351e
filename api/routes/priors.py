"""Project priors per class (ranges usually in mm / mm^2, expected presence)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from api.deps import CurrentUser, Id, SessionDep, require_project_role
from api.errors import ERROR_RESPONSES
from api.schemas.hints import PRIOR_EXAMPLE, PriorsOut
from api.services import hints as service

router = APIRouter(tags=["priors"], responses=ERROR_RESPONSES)

PriorBody = Annotated[
    dict[str, Any],
    Body(
        description="Class name -> prior (docs/interfaces.md). Replaces the project's priors.",
        openapi_examples={
            "mm ranges": {"summary": "Size and length in mm", "value": PRIOR_EXAMPLE}
        },
    ),
]


@router.put("/projects/{project_id}/priors")
def put_priors(
    project_id: Id, body: PriorBody, session: SessionDep, user: CurrentUser
) -> PriorsOut:
    """Set the priors (annotator role); they apply to every slice of every image at training."""
    project = require_project_role(session, user, project_id, "annotator", lock=True)
    service.put_priors(session, user, project, body)
    return PriorsOut(project_id=project.id, priors=service.get_priors(session, project))


@router.get("/projects/{project_id}/priors")
def get_priors(project_id: Id, session: SessionDep, user: CurrentUser) -> PriorsOut:
    project = require_project_role(session, user, project_id, "viewer")
    return PriorsOut(project_id=project.id, priors=service.get_priors(session, project))
