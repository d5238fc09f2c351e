"""FastAPI dependencies as ``Annotated`` aliases, and the project-role checks every route uses.

- ``SessionDep``: a SQLAlchemy session for this request (bound to the app's engine). Services
  commit explicitly; anything not committed is rolled back when the request ends.
- ``CurrentUser``: the authenticated, active ``User`` (Bearer token, or session cookie with a
  matching ``X-CSRF-Token`` header on writes). 401 otherwise.
- ``SettingsDep``, ``BlobsDep``: the app's ``Settings`` and ``BlobStore``.
- ``require_project_role(session, user, project_id, minimum) -> Project``: 404 when the project
  does not exist or the user is no member (so ids of other people's projects reveal nothing),
  403 when the user's role is below ``minimum``. Admins act as owners everywhere.
- ``require_image_role(session, user, image_id, minimum) -> (Image, Project)``: the same for
  the project that holds an image.
- ``Id`` / ``SliceIndex``: annotated ``int`` path parameters bounded to the database's INTEGER
  (use them for every ``{..._id}`` and ``{z}`` in a path).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.auth import secrets
from api.errors import ApiError, forbidden, not_found, unauthorized
from store.blobs import BlobStore
from store.db import utcnow
from store.settings import Settings
from store.tables import (
    ROLES,
    ApiToken,
    Image,
    Project,
    ProjectMember,
    Role,
    User,
    WebSession,
    as_utc,
)

MAX_ID = 2**31 - 1
# Path ids are bounded to what every database's INTEGER holds, so a huge id is a 422, not a 500.
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="Row id")]
SliceIndex = Annotated[int, Path(ge=0, le=MAX_ID, description="Slice index z (0-based)")]

SESSION_COOKIE = "shapehint_session"
CSRF_COOKIE = "shapehint_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is refreshed at most this often, so reads do not turn into writes under load.
_TOUCH_INTERVAL = timedelta(minutes=5)

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A personal API token (`POST /api/tokens`) or SHAPEHINT_BOOTSTRAP_TOKEN",
)


def get_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_blobs(request: Request) -> BlobStore:
    return request.app.state.blobs


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]


def user_from_token(session: Session, token: str) -> User | None:
    """The active user owning an unrevoked API token, or None."""
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == secrets.digest(token), ApiToken.revoked_at.is_(None)
        )
    ).first()
    if row is None or not row.user.is_active:
        return None
    now = utcnow()
    last = as_utc(row.last_used_at)
    if last is None or now - last > _TOUCH_INTERVAL:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        session.commit()
    return row.user


def session_from_cookie(session: Session, cookie: str) -> WebSession | None:
    row = session.scalars(
        select(WebSession).where(WebSession.session_hash == secrets.digest(cookie))
    ).first()
    if row is None or not row.user.is_active:
        return None
    expires = as_utc(row.expires_at)
    if expires is None or expires <= utcnow():
        return None
    return row


def get_current_user(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> User:
    if credentials is not None:
        user = user_from_token(session, credentials.credentials)
        if user is None:
            raise unauthorized("the API token is invalid or revoked")
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        web = session_from_cookie(session, cookie)
        if web is None:
            raise unauthorized("the session has expired; sign in again")
        if request.method not in _SAFE_METHODS:
            # Double submit: the page copies the CSRF cookie into a header, which a cross-site
            # form cannot do; the value must also be the one issued with this session.
            header = request.headers.get(CSRF_HEADER, "")
            if not header or not secrets.same(secrets.digest(header), web.csrf_hash):
                raise ApiError(403, "csrf_failed", f"missing or wrong {CSRF_HEADER} header")
        return web.user
    raise unauthorized("authentication required: send 'Authorization: Bearer <token>'")


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise forbidden("only administrators may do this")
    return user


AdminUser = Annotated[User, Depends(require_admin)]


def role_rank(role: str) -> int:
    return ROLES.index(role)


def project_role(session: Session, user: User, project_id: int) -> str | None:
    """The user's role in a project (admins: "owner"), or None for non-members."""
    return project_roles(session, user, [project_id]).get(project_id)


def project_roles(session: Session, user: User, project_ids: Sequence[int]) -> dict[int, str]:
    """The user's role in each of ``project_ids`` (one query; admins: "owner" everywhere);
    projects the user is no member of are left out."""
    if user.is_admin:
        return dict.fromkeys(project_ids, "owner")
    rows = session.execute(
        select(ProjectMember.project_id, ProjectMember.role).where(
            ProjectMember.project_id.in_(project_ids), ProjectMember.user_id == user.id
        )
    )
    return {project_id: role for project_id, role in rows}


def lock_row(session: Session, table: type[Project] | type[Image], row_id: int) -> None:
    """Serialise writers of one project or image until this transaction ends.

    Check-then-write code (next class index, "is there still another owner?", insert or update
    a reference) locks first and reads after, so parallel requests take turns. PostgreSQL: a
    row lock (SELECT ... FOR UPDATE). SQLite has no row locks: a no-op UPDATE takes the
    database's write lock (pysqlite begins the transaction at the first write), and reads after
    it see every earlier commit.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(table.id).where(table.id == row_id).with_for_update())
    else:
        session.execute(update(table).where(table.id == row_id).values(id=table.id))
    # Objects read before the lock may be stale now.
    session.expire_all()


def require_project_role(
    session: Session, user: User, project_id: int, minimum: Role, *, lock: bool = False
) -> Project:
    """The project if ``user`` has at least ``minimum`` in it (see the module docstring).
    ``lock=True`` locks the project first (``lock_row``), so the role is checked, and the
    caller's writes happen, against the latest committed state."""
    if lock:
        lock_row(session, Project, project_id)
    project = session.get(Project, project_id)
    role = project_role(session, user, project_id) if project is not None else None
    if project is None or role is None:
        raise not_found("project", project_id)
    if role_rank(role) < role_rank(minimum):
        raise forbidden(f"this needs the {minimum} role in project {project_id}; you are {role}")
    return project


def require_image_role(
    session: Session, user: User, image_id: int, minimum: Role, *, lock: bool = False
) -> tuple[Image, Project]:
    """``lock=True`` locks the image row first (``lock_row``)."""
    if lock:
        lock_row(session, Image, image_id)
    image = session.get(Image, image_id)
    if image is None:
        raise not_found("image", image_id)
    try:
        project = require_project_role(session, user, image.project_id, minimum)
    except ApiError as exc:
        if exc.status_code == 404:
            raise not_found("image", image_id) from None
        raise
    return image, project
