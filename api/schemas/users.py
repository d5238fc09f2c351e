"""Users, API tokens and browser sessions."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import OrmModel, StrictModel, UtcDatetime

USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"


class UserOut(OrmModel):
    id: int
    username: str
    is_admin: bool
    is_active: bool
    created_at: UtcDatetime


class UserCreate(StrictModel):
    username: str = Field(pattern=USERNAME_PATTERN, examples=["alice"])
    password: str | None = Field(
        default=None, min_length=8, max_length=256, examples=["correct horse battery"]
    )
    is_admin: bool = False


class UserUpdate(StrictModel):
    """Admins may change any field; users may change only their own password."""

    password: str | None = Field(default=None, min_length=8, max_length=256)
    is_admin: bool | None = None
    is_active: bool | None = None


class TokenCreate(StrictModel):
    name: str = Field(min_length=1, max_length=100, examples=["laptop scripts"])


class TokenOut(OrmModel):
    id: int
    name: str
    prefix: str = Field(description="First characters of the token, to tell tokens apart")
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself; shown only in this response")


class LoginIn(StrictModel):
    username: str = Field(max_length=64, examples=["alice"])
    password: str = Field(max_length=256, examples=["correct horse battery"])


class LoginOut(StrictModel):
    user: UserOut
    csrf_token: str = Field(
        description="Send it as the X-CSRF-Token header on every write (also set as a cookie)"
    )
