"""Projects, their classes and members. Roles: viewer reads, owner changes the project."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import CurrentUser, Id, SessionDep, require_project_role
from api.errors import ERROR_RESPONSES
from api.pagination import PageDep
from api.schemas.common import Page
from api.schemas.projects import (
    ClassIn,
    ClassOut,
    ClassUpdate,
    MemberIn,
    MemberOut,
    MemberUpdate,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
)
from api.services import projects as service
from store.tables import ProjectMember

router = APIRouter(prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


def _member_out(m: ProjectMember) -> MemberOut:
    return MemberOut(
        user_id=m.user_id, username=m.user.username, role=m.role, created_at=m.created_at
    )  # type: ignore[arg-type]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, session: SessionDep, user: CurrentUser) -> ProjectOut:
    """Create a project; classes are labels 1, 2, ... in the given order; you become owner."""
    project = service.create_project(session, user, body.name, body.description, body.classes)
    return service.project_out(session, user, project)


@router.get("")
def list_projects(session: SessionDep, user: CurrentUser, page: PageDep) -> Page[ProjectOut]:
    """Projects you are a member of (all, for admins)."""
    rows, total = service.list_projects(session, user, page.offset, page.limit)
    return Page(
        items=service.project_outs(session, user, rows),
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/{project_id}")
def get_project(project_id: Id, session: SessionDep, user: CurrentUser) -> ProjectOut:
    project = require_project_role(session, user, project_id, "viewer")
    return service.project_out(session, user, project)


@router.patch("/{project_id}")
def update_project(
    project_id: Id, body: ProjectUpdate, session: SessionDep, user: CurrentUser
) -> ProjectOut:
    project = require_project_role(session, user, project_id, "owner")
    service.update_project(session, project, body.name, body.description)
    return service.project_out(session, user, project)


@router.get("/{project_id}/classes")
def list_classes(project_id: Id, session: SessionDep, user: CurrentUser) -> list[ClassOut]:
    project = require_project_role(session, user, project_id, "viewer")
    return [ClassOut.model_validate(c) for c in project.classes]


@router.post("/{project_id}/classes", status_code=status.HTTP_201_CREATED)
def add_class(project_id: Id, body: ClassIn, session: SessionDep, user: CurrentUser) -> ClassOut:
    """Append a class (it gets the next label value; existing labels never change)."""
    project = require_project_role(session, user, project_id, "owner", lock=True)
    return ClassOut.model_validate(service.add_class(session, project, body.name, body.color))


@router.patch("/{project_id}/classes/{class_id}")
def update_class(
    project_id: Id, class_id: Id, body: ClassUpdate, session: SessionDep, user: CurrentUser
) -> ClassOut:
    """Rename or recolour a class (its label value stays)."""
    project = require_project_role(session, user, project_id, "owner", lock=True)
    row = service.update_class(session, project, class_id, body.name, body.color)
    return ClassOut.model_validate(row)


@router.get("/{project_id}/members")
def list_members(
    project_id: Id, session: SessionDep, user: CurrentUser, page: PageDep
) -> Page[MemberOut]:
    project = require_project_role(session, user, project_id, "viewer")
    rows, total = service.list_members(session, project, page.offset, page.limit)
    return Page(
        items=[_member_out(m) for m in rows], total=total, offset=page.offset, limit=page.limit
    )


@router.post("/{project_id}/members", status_code=status.HTTP_201_CREATED)
def add_member(project_id: Id, body: MemberIn, session: SessionDep, user: CurrentUser) -> MemberOut:
    """Add a user by name with a role (or change the role of an existing member)."""
    project = require_project_role(session, user, project_id, "owner", lock=True)
    return _member_out(service.set_member(session, project, body.username, body.role))


@router.patch("/{project_id}/members/{user_id}")
def update_member(
    project_id: Id, user_id: Id, body: MemberUpdate, session: SessionDep, user: CurrentUser
) -> MemberOut:
    project = require_project_role(session, user, project_id, "owner", lock=True)
    return _member_out(service.update_member(session, project, user_id, body.role))


@router.delete("/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(project_id: Id, user_id: Id, session: SessionDep, user: CurrentUser) -> None:
    project = require_project_role(session, user, project_id, "owner", lock=True)
    service.remove_member(session, project, user_id)
