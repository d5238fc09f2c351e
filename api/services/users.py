"""Users, API tokens, browser sessions and the bootstrap administrator."""

from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth import secrets
from api.errors import ApiError, conflict, forbidden, not_found, unauthorized
from store.db import utcnow
from store.tables import ApiToken, User, WebSession

SESSION_LIFETIME = timedelta(days=7)
BOOTSTRAP_USERNAME = "admin"


@dataclass(frozen=True)
class Bootstrap:
    """What ``ensure_admin`` did: the admin's name and, when it made one, a new token/password."""

    username: str
    token: str | None = None
    password: str | None = None


def create_user(
    session: Session, username: str, password: str | None = None, is_admin: bool = False
) -> User:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise conflict(f"username {username!r} is taken", code="username_taken")
    user = User(
        username=username,
        password_hash=secrets.hash_password(password) if password else None,
        is_admin=is_admin,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict(f"username {username!r} is taken", code="username_taken") from None
    return user


def update_user(
    session: Session,
    actor: User,
    user_id: int,
    password: str | None = None,
    is_admin: bool | None = None,
    is_active: bool | None = None,
    keep_cookie: str | None = None,
) -> User:
    """Apply the changes; a new password ends the user's browser sessions except the caller's
    own (``keep_cookie``: the session cookie of this request), so a stolen session dies with
    the old password. API tokens are separate credentials and stay (revoke them one by one)."""
    user = session.get(User, user_id)
    if user is None or (not actor.is_admin and user.id != actor.id):
        raise not_found("user", user_id)
    if not actor.is_admin and (is_admin is not None or is_active is not None):
        raise forbidden("only administrators may change roles or deactivate users")
    if password is not None:
        user.password_hash = secrets.hash_password(password)
        ended = update(WebSession).where(
            WebSession.user_id == user.id, WebSession.expires_at > utcnow()
        )
        if keep_cookie and user.id == actor.id:
            ended = ended.where(WebSession.session_hash != secrets.digest(keep_cookie))
        session.execute(ended.values(expires_at=utcnow()))
    if is_admin is not None:
        if user.id == actor.id and not is_admin:
            # Otherwise the last admin can lock everyone out of user management.
            raise ApiError(400, "bad_request", "you cannot remove your own admin rights")
        user.is_admin = is_admin
    if is_active is not None:
        if user.id == actor.id and not is_active:
            raise ApiError(400, "bad_request", "you cannot deactivate yourself")
        user.is_active = is_active
    session.commit()
    return user


def issue_token(
    session: Session, user: User, name: str, token: str | None = None
) -> tuple[ApiToken, str]:
    """Store a new token for ``user``; returns the row and the token (shown once)."""
    token = token or secrets.new_token()
    row = ApiToken(user_id=user.id, name=name, token_hash=secrets.digest(token), prefix=token[:8])
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != user.id and not user.is_admin):
        raise not_found("token", token_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    session.commit()
    return row


def list_tokens(
    session: Session, user: User, offset: int, limit: int
) -> tuple[list[ApiToken], int]:
    where = ApiToken.user_id == user.id
    total = session.scalar(select(func.count()).select_from(ApiToken).where(where)) or 0
    rows = session.scalars(
        select(ApiToken).where(where).order_by(ApiToken.id).offset(offset).limit(limit)
    ).all()
    return list(rows), total


def login_candidate(session: Session, username: str) -> tuple[int | None, str | None]:
    """``(user id, password hash)`` of an active user with this name, else ``(None, None)``.

    The password is checked elsewhere (off the request thread pool, see ``api.auth.throttle``),
    so this only reads; unknown and inactive users still get a full hash computation there.
    """
    row = session.execute(
        select(User.id, User.password_hash).where(User.username == username, User.is_active)
    ).first()
    session.rollback()  # end the read: the password check may wait in line for a while
    return (row.id, row.password_hash) if row is not None else (None, None)


def open_session(session: Session, user_id: int) -> tuple[User, str, str]:
    """Open a browser session for a user whose password was checked: (user, cookie, CSRF)."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise unauthorized("wrong username or password")
    cookie, csrf = secrets.new_secret(), secrets.new_secret()
    session.add(
        WebSession(
            user_id=user.id,
            session_hash=secrets.digest(cookie),
            csrf_hash=secrets.digest(csrf),
            expires_at=utcnow() + SESSION_LIFETIME,
        )
    )
    session.commit()
    return user, cookie, csrf


def logout(session: Session, cookie: str | None) -> None:
    if cookie:
        session.execute(
            update(WebSession)
            .where(WebSession.session_hash == secrets.digest(cookie))
            .values(expires_at=utcnow())
        )
        session.commit()


def ensure_admin(session: Session, bootstrap_token: str | None) -> Bootstrap:
    """Make sure an administrator can log in.

    With a bootstrap token: the token belongs to an admin (created as ``admin`` if needed).
    Without: if no admin exists yet, create ``admin`` with a fresh token and password and return
    them (printed once by ``serve``); otherwise change nothing.
    """
    if bootstrap_token:
        digest = secrets.digest(bootstrap_token)
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
        if row is not None:
            # The operator said this token is the admin's: make it so even if it was revoked.
            row.revoked_at = None
            row.user.is_admin = True
            row.user.is_active = True
            session.commit()
            return Bootstrap(username=row.user.username)
        admin = _bootstrap_user(session)
        issue_token(session, admin, "bootstrap", token=bootstrap_token)
        session.commit()
        return Bootstrap(username=admin.username)
    if session.scalar(select(User.id).where(User.is_admin.is_(True))) is not None:
        return Bootstrap(username="")
    admin = _bootstrap_user(session)
    password = pysecrets.token_urlsafe(12)
    admin.password_hash = secrets.hash_password(password)
    _, token = issue_token(session, admin, "bootstrap")
    session.commit()
    return Bootstrap(username=admin.username, token=token, password=password)


def _bootstrap_user(session: Session) -> User:
    user = session.scalars(select(User).where(User.username == BOOTSTRAP_USERNAME)).first()
    if user is None:
        user = User(username=BOOTSTRAP_USERNAME, is_admin=True)
        session.add(user)
        session.flush()
    user.is_admin = True
    user.is_active = True
    return user
