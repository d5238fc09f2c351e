"""Projects, classes and members; the creator of a project becomes its owner."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from api.deps import project_roles
from api.errors import ApiError, conflict, not_found, unprocessable
from api.schemas.projects import ClassIn, ProjectOut
from store.tables import Image, Project, ProjectClass, ProjectMember, User

# Distinct, colour-blind-friendly-ish defaults (Sasha Trubetskoy's list), cycled by label index.
PALETTE: tuple[str, ...] = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
    "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8",
    "#800000", "#aaffc3", "#808000", "#ffd8b1", "#000075", "#808080",
)  # fmt: skip


def default_color(index: int) -> str:
    return PALETTE[(index - 1) % len(PALETTE)]


def _check_unique(names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise unprocessable(f"class {name!r} is listed twice", code="duplicate_class")
        seen.add(name)


def create_project(
    session: Session, user: User, name: str, description: str, classes: Sequence[ClassIn]
) -> Project:
    _check_unique([c.name for c in classes])
    project = Project(name=name, description=description, created_by=user.id)
    session.add(project)
    session.flush()
    for i, c in enumerate(classes, start=1):
        session.add(
            ProjectClass(
                project_id=project.id, index=i, name=c.name, color=c.color or default_color(i)
            )
        )
    session.add(ProjectMember(project_id=project.id, user_id=user.id, role="owner"))
    session.commit()
    session.refresh(project)
    return project


def project_out(session: Session, user: User, project: Project) -> ProjectOut:
    return project_outs(session, user, [project])[0]


def project_outs(session: Session, user: User, projects: Sequence[Project]) -> list[ProjectOut]:
    """``ProjectOut`` of each project, with image counts and roles read in one query each
    (not per project: a list page holds up to 500)."""
    ids = [p.id for p in projects]
    counts: dict[int, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(Image.project_id, func.count())
            .where(Image.project_id.in_(ids))
            .group_by(Image.project_id)
        ).all()
    )
    roles = project_roles(session, user, ids)
    return [
        ProjectOut.model_validate(
            {
                "id": project.id,
                "name": project.name,
                "description": project.description,
                "classes": project.classes,
                "role": roles.get(project.id, "viewer"),
                "image_count": counts.get(project.id, 0),
                "created_at": project.created_at,
            }
        )
        for project in projects
    ]


def list_projects(
    session: Session, user: User, offset: int, limit: int
) -> tuple[list[Project], int]:
    query = select(Project)
    if not user.is_admin:
        query = query.join(
            ProjectMember,
            (ProjectMember.project_id == Project.id) & (ProjectMember.user_id == user.id),
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(Project.classes))
        .order_by(Project.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def update_project(
    session: Session, project: Project, name: str | None, description: str | None
) -> Project:
    if name is not None:
        project.name = name
    if description is not None:
        project.description = description
    session.commit()
    return project


def add_class(session: Session, project: Project, name: str, color: str | None) -> ProjectClass:
    if any(c.name == name for c in project.classes):
        raise conflict(f"class {name!r} already exists in project {project.id}")
    index = max((c.index for c in project.classes), default=0) + 1
    if index > 255:
        raise unprocessable("a project has at most 255 classes (labels are 8-bit)")
    row = ProjectClass(
        project_id=project.id, index=index, name=name, color=color or default_color(index)
    )
    session.add(row)
    _commit_class(session, project, name)
    return row


def _commit_class(session: Session, project: Project, name: str) -> None:
    # The caller locked the project (require_project_role(lock=True)); this only catches what
    # slipped past it, e.g. a writer that does not lock.
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise conflict(
            f"class {name!r} conflicts with a class added to project {project.id} at the same "
            "time; reload the project's classes"
        ) from None


def update_class(
    session: Session, project: Project, class_id: int, name: str | None, color: str | None
) -> ProjectClass:
    row = next((c for c in project.classes if c.id == class_id), None)
    if row is None:
        raise not_found("class", class_id)
    if name is not None and name != row.name:
        if any(c.name == name for c in project.classes):
            raise conflict(f"class {name!r} already exists in project {project.id}")
        row.name = name
    if color is not None:
        row.color = color
    _commit_class(session, project, row.name)
    return row


def list_members(
    session: Session, project: Project, offset: int, limit: int
) -> tuple[list[ProjectMember], int]:
    where = ProjectMember.project_id == project.id
    total = session.scalar(select(func.count()).select_from(ProjectMember).where(where)) or 0
    rows = session.scalars(
        select(ProjectMember)
        .where(where)
        .order_by(ProjectMember.user_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def _owner_count(session: Session, project_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(ProjectMember)
            .where(ProjectMember.project_id == project_id, ProjectMember.role == "owner")
        )
        or 0
    )


def set_member(session: Session, project: Project, username: str, role: str) -> ProjectMember:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise unprocessable(f"no user named {username!r}", code="unknown_user")
    member = session.get(ProjectMember, (project.id, user.id))
    if member is None:
        member = ProjectMember(project_id=project.id, user_id=user.id, role=role)
        session.add(member)
    else:
        _keep_an_owner(session, member, role)
        member.role = role
    session.commit()
    session.refresh(member)
    return member


def update_member(session: Session, project: Project, user_id: int, role: str) -> ProjectMember:
    member = session.get(ProjectMember, (project.id, user_id))
    if member is None:
        raise not_found("member", user_id)
    _keep_an_owner(session, member, role)
    member.role = role
    session.commit()
    return member


def remove_member(session: Session, project: Project, user_id: int) -> None:
    member = session.get(ProjectMember, (project.id, user_id))
    if member is None:
        raise not_found("member", user_id)
    _keep_an_owner(session, member, None)
    session.delete(member)
    session.commit()


def _keep_an_owner(session: Session, member: ProjectMember, new_role: str | None) -> None:
    if (
        member.role == "owner"
        and new_role != "owner"
        and _owner_count(session, member.project_id) <= 1
    ):
        raise ApiError(409, "last_owner", "a project needs at least one owner")
