"""Model versions: one immutable version per successful training (viewers read)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, Id, SessionDep, require_project_role
from api.errors import ERROR_RESPONSES, ApiError, not_found
from api.pagination import PageDep
from api.schemas.common import Page
from api.schemas.jobs import ModelVersionOut
from api.services import jobs as service

router = APIRouter(tags=["models"], responses=ERROR_RESPONSES)


@router.get("/projects/{project_id}/models")
def list_models(
    project_id: Id, session: SessionDep, user: CurrentUser, page: PageDep
) -> Page[ModelVersionOut]:
    """The project's model versions, newest first, with config, metrics and job."""
    require_project_role(session, user, project_id, "viewer")
    rows, total = service.list_versions(session, project_id, page.offset, page.limit)
    return Page(
        items=[ModelVersionOut.model_validate(v) for v in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/models/{version_id}")
def get_model(version_id: Id, session: SessionDep, user: CurrentUser) -> ModelVersionOut:
    version = service.get_version(session, version_id)
    try:
        require_project_role(session, user, version.project_id, "viewer")
    except ApiError as exc:
        if exc.status_code == 404:
            raise not_found("model version", version_id) from None
        raise
    return ModelVersionOut.model_validate(version)


@router.get("/projects/{project_id}/models/{version_id}")
def get_project_model(
    project_id: Id, version_id: Id, session: SessionDep, user: CurrentUser
) -> ModelVersionOut:
    require_project_role(session, user, project_id, "viewer")
    version = service.get_version(session, version_id)
    if version.project_id != project_id:
        raise not_found("model version", version_id)
    return ModelVersionOut.model_validate(version)
