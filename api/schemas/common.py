"""Shared schema pieces: UTC datetimes, pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A datetime that always serialises with its UTC offset (SQLite hands back naive ones)."""

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items`` from ``offset`` on, at most ``limit``; ``total`` in all."""

    items: list[T]
    total: int = Field(description="Number of items over all pages")
    offset: int
    limit: int


def has_nul(value: Any) -> bool:
    """Does a string (or any string inside lists and dicts, keys included) hold a NUL byte?"""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error that names them; text may not hold NUL
    bytes (PostgreSQL cannot store them and no name or comment needs one)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if has_nul(value):
            raise ValueError("text must not contain NUL (\\x00) characters")
        return value


class OrmModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
