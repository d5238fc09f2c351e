"""``shapehint users``: create users, reset a password, issue a token, straight on the database.

For the operator of the server (it needs the same ``SHAPEHINT_*`` settings as ``serve``, no
running server and no token): the way back in when the admin's password or token is lost.
Passwords and tokens are printed once; only their hashes are stored.
"""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store.tables import User

app = typer.Typer(
    help="Manage users on the server's database (no server needed): create, reset-password, "
    "new-token, list.",
    no_args_is_help=True,
)


class UserCommandError(ValueError):
    """A user command that cannot be done (unknown user, name taken)."""


@contextmanager
def _session() -> Iterator[Session]:
    from store.db import session_scope
    from store.migrate import upgrade_head

    upgrade_head()  # a fresh data directory works too
    with session_scope() as session:
        yield session


def find_user(session: Session, username: str) -> User:
    from sqlalchemy import select

    from store.tables import User

    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise UserCommandError(f"no user named {username!r}")
    return user


def create(session: Session, username: str, password: str | None, admin: bool) -> tuple[User, str]:
    """A new active user with ``password`` (a random one when None); returns it and the password."""
    from api.errors import ApiError
    from api.services.users import create_user

    password = password or pysecrets.token_urlsafe(12)
    try:
        user = create_user(session, username, password, is_admin=admin)
    except ApiError as err:
        raise UserCommandError(err.message) from None
    session.commit()
    return user, password


def reset_password(session: Session, username: str, password: str | None) -> str:
    """Set a new password (random when None), reactivate the user, end their browser sessions."""
    from sqlalchemy import update

    from api.auth import secrets
    from store.db import utcnow
    from store.tables import WebSession

    user = find_user(session, username)
    password = password or pysecrets.token_urlsafe(12)
    user.password_hash = secrets.hash_password(password)
    user.is_active = True
    session.execute(
        update(WebSession)
        .where(WebSession.user_id == user.id, WebSession.expires_at > utcnow())
        .values(expires_at=utcnow())
    )
    session.commit()
    return password


def new_token(session: Session, username: str, name: str) -> str:
    """A new API token for the user (their other tokens stay valid)."""
    from api.services.users import issue_token

    user = find_user(session, username)
    _, token = issue_token(session, user, name)
    session.commit()
    return token


def _fail(err: Exception) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(1)


PASSWORD = typer.Option(
    None, "--password", help="The password (default: a random one, printed once)"
)


@app.command("create")
def create_command(
    username: str = typer.Argument(..., help="Login name"),
    admin: bool = typer.Option(False, "--admin", help="Make the user an administrator"),
    password: str | None = PASSWORD,
    token: bool = typer.Option(False, "--token", help="Also issue an API token"),
) -> None:
    """Create a user; prints the password (and token) once."""
    with _session() as session:
        try:
            user, password = create(session, username, password, admin)
            issued = new_token(session, username, "cli") if token else None
        except UserCommandError as err:
            raise _fail(err) from None
        typer.echo(f"created {'administrator' if user.is_admin else 'user'} {username!r}")
    typer.echo(f"  password:  {password}")
    if issued:
        typer.echo(f"  API token: {issued}")


@app.command("reset-password")
def reset_password_command(
    username: str = typer.Argument(..., help="Login name (the first admin is 'admin')"),
    password: str | None = PASSWORD,
) -> None:
    """Give a user a new password (printed once) and end their browser sessions."""
    with _session() as session:
        try:
            password = reset_password(session, username, password)
        except UserCommandError as err:
            raise _fail(err) from None
    typer.echo(f"new password for {username!r}: {password}")


@app.command("new-token")
def new_token_command(
    username: str = typer.Argument(..., help="Login name (the first admin is 'admin')"),
    name: str = typer.Option("cli", "--name", help="A label for the token"),
) -> None:
    """Issue a new API token for a user (printed once; older tokens stay valid)."""
    with _session() as session:
        try:
            token = new_token(session, username, name)
        except UserCommandError as err:
            raise _fail(err) from None
    typer.echo(f"API token for {username!r}: {token}")


@app.command("list")
def list_command() -> None:
    """Every user: name, admin, active."""
    from sqlalchemy import select

    from store.tables import User

    with _session() as session:
        for user in session.scalars(select(User).order_by(User.id)):
            flags = ("admin " if user.is_admin else "") + ("" if user.is_active else "inactive")
            typer.echo(f"{user.username}\t{flags.strip()}")
