"""Projects, their classes (label order) and members."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import OrmModel, StrictModel, UtcDatetime
from store.tables import Role

CLASS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.()+-]{0,63}$"
COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"


class ClassIn(StrictModel):
    name: str = Field(pattern=CLASS_NAME_PATTERN, examples=["LV"])
    color: str | None = Field(
        default=None, pattern=COLOR_PATTERN, description="#rrggbb; default from a palette"
    )


class ClassUpdate(StrictModel):
    name: str | None = Field(default=None, pattern=CLASS_NAME_PATTERN)
    color: str | None = Field(default=None, pattern=COLOR_PATTERN)


class ClassOut(OrmModel):
    id: int
    index: int = Field(description="Label value of this class in masks (1-based; 0 = background)")
    name: str
    color: str


class ProjectCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200, examples=["Cardiac MRI"])
    description: str = Field(default="", max_length=10_000)
    classes: list[ClassIn] = Field(
        min_length=1,
        max_length=255,
        examples=[[{"name": "LV", "color": "#e6194b"}, {"name": "RV"}]],
    )


class ProjectUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class ProjectOut(OrmModel):
    id: int
    name: str
    description: str
    classes: list[ClassOut]
    role: Role = Field(description="Your role in this project")
    image_count: int
    created_at: UtcDatetime


class MemberIn(StrictModel):
    username: str = Field(max_length=64, examples=["bob"])
    role: Role = Role.ANNOTATOR


class MemberUpdate(StrictModel):
    role: Role


class MemberOut(StrictModel):
    user_id: int
    username: str
    role: Role
    created_at: UtcDatetime
