"""Hints per (image, slice, class, author) and project priors (JSON of docs/interfaces.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import StrictModel, UtcDatetime

HINT_EXAMPLE: dict[str, Any] = {
    "LV": {
        "present": True,
        "unit": "px",
        "size": [300, 600],
        "centroid": {"x": [20, 28], "y": [14, 20]},
    },
    "RV": {"present": False},
}
ELLIPSE_EXAMPLE: dict[str, Any] = {
    "LV": {"ellipse": {"cx": 24, "cy": 16, "a": 10, "b": 7, "angle": 30}, "tolerance": 0.2}
}
PRIOR_EXAMPLE: dict[str, Any] = {
    "LV": {"presence": "maybe", "unit": "mm", "size": [300, 3000]},
    "RV": {"presence": "maybe", "unit": "mm", "length": [None, 400]},
}


class AuthorHint(StrictModel):
    class_name: str
    author_id: int
    author: str
    hint: dict[str, Any]
    updated_at: UtcDatetime


class SliceHints(StrictModel):
    image_id: int
    z: int
    hints: dict[str, dict[str, Any]] = Field(
        description="Your latest hint per class, exactly as given (or the author's of ?author=)"
    )
    entries: list[AuthorHint] = Field(
        description="The latest hint of every author per class: these all count"
    )
    derived: dict[str, dict[str, Any]] = Field(
        description="Per class: all authors' hints intersected, as intervals in px and mm "
        "(models.bounds.describe)"
    )
    conflicts: dict[str, str] = Field(
        default_factory=dict, description="Classes whose authors' hints contradict each other"
    )


class HintChange(StrictModel):
    id: int
    class_name: str
    author_id: int
    author: str
    hint: dict[str, Any] | None = Field(description="null: the author withdrew the hint")
    created_at: UtcDatetime


class SliceSummary(StrictModel):
    z: int
    classes: list[str]
    authors: int


class PriorsOut(StrictModel):
    project_id: int
    priors: dict[str, dict[str, Any]]
