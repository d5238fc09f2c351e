"""Shared schema pieces: UTC datetimes, pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


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


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error that names them."""

    model_config = ConfigDict(extra="forbid")


class OrmModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
