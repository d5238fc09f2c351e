"""Users: admins create and manage them; everyone sees and edits themselves."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import func, select

from api.deps import SESSION_COOKIE, AdminUser, CurrentUser, Id, SessionDep
from api.errors import ERROR_RESPONSES, not_found
from api.pagination import PageDep
from api.schemas.common import Page
from api.schemas.users import UserCreate, UserOut, UserUpdate
from api.services import users as service
from store.tables import User

router = APIRouter(prefix="/users", tags=["users"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> UserOut:
    """Create a user (admins only). Without a password the user signs in with tokens only."""
    user = service.create_user(session, body.username, body.password, body.is_admin)
    session.commit()
    return UserOut.model_validate(user)


@router.get("")
def list_users(session: SessionDep, _admin: AdminUser, page: PageDep) -> Page[UserOut]:
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.id).offset(page.offset).limit(page.limit))
    return Page(
        items=[UserOut.model_validate(u) for u in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/me")
def get_me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.get("/{user_id}")
def get_user(user_id: Id, session: SessionDep, user: CurrentUser) -> UserOut:
    target = session.get(User, user_id)
    if target is None or (not user.is_admin and target.id != user.id):
        raise not_found("user", user_id)
    return UserOut.model_validate(target)


@router.patch("/{user_id}")
def update_user(
    user_id: Id, body: UserUpdate, request: Request, session: SessionDep, user: CurrentUser
) -> UserOut:
    """Change a password (yours, or anyone's as admin; ends that user's other browser
    sessions), admin flag or active flag (admins)."""
    target = service.update_user(
        session,
        user,
        user_id,
        body.password,
        body.is_admin,
        body.is_active,
        keep_cookie=request.cookies.get(SESSION_COOKIE),
    )
    return UserOut.model_validate(target)
