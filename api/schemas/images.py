"""Images, reviews and reference masks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import OrmModel, StrictModel, UtcDatetime

ReviewStatus = Literal["accepted", "rejected", "needs-hints"]


class WindowPreset(StrictModel):
    name: str
    center: float
    width: float


class ImageOut(OrmModel):
    id: int
    project_id: int
    name: str = Field(description="The uploaded file name (or DICOM series description)")
    source_kind: str = Field(description="dicom | nifti | raster")
    modality: str
    shape: list[int] = Field(description="[Z, C, H, W]: slices, channels, rows, columns")
    spacing: list[float] = Field(description="[z_mm, row_mm, col_mm]")
    affine: list[list[float]] = Field(
        description="4x4 NIfTI affine of array axes (col, row, slice)"
    )
    window_presets: list[dict[str, Any]]
    review_status: ReviewStatus | None
    created_at: UtcDatetime


class ReviewIn(StrictModel):
    status: ReviewStatus = Field(examples=["accepted"])
    comment: str = Field(default="", max_length=10_000, examples=["LV boundary looks right"])
    model_version_id: int | None = Field(
        default=None,
        ge=1,
        description="The model version whose mask is judged (default: the newest that predicted "
        "the image)",
    )


class ReviewOut(OrmModel):
    id: int
    image_id: int
    reviewer_id: int | None
    status: ReviewStatus
    comment: str
    model_version_id: int | None = Field(description="The model version judged (null: none)")
    created_at: UtcDatetime


class ReviewState(StrictModel):
    image_id: int
    model_version_id: int | None = Field(
        default=None, description="The model version this state is about (null: no prediction)"
    )
    status: ReviewStatus | None = Field(
        description="Latest decision on this model version's mask; null = not reviewed"
    )
    history: list[ReviewOut] = Field(description="Every decision, newest first")


class ReferenceSlicesOut(BaseModel):
    """Which slices of an image a reference mask labels (200 also when there is none)."""

    image_id: int
    exists: bool = Field(description="The image has a reference mask")
    slices: list[int] | None = Field(
        description="Labelled slices (z); null = every slice (an uploaded volume); [] = none"
    )


class ReferenceOut(OrmModel):
    image_id: int
    labels: list[int] = Field(description="Label values present (0 = background)")
    slices: list[int] | None = Field(
        None,
        description="Labelled slices (z) when only some are (corrected in Review); "
        "null = every slice",
    )
    uploaded_by: int | None
    created_at: UtcDatetime
