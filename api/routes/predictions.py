"""Predicted masks: one image (PNG / NIfTI / DICOM SEG) or a whole project as a zip."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from api.deps import (
    MAX_ID,
    BlobsDep,
    CurrentUser,
    Id,
    SessionDep,
    require_image_role,
    require_project_role,
)
from api.errors import ERROR_RESPONSES, unprocessable
from api.schemas.jobs import PredictionOut
from api.services import predictions as service
from store.jobs_tables import ModelVersion, Prediction
from store.model_versions import NEWEST_FIRST

router = APIRouter(tags=["predictions"], responses=ERROR_RESPONSES)

FormatQuery = Annotated[
    service.Format,
    Query(description="png (label values as grey levels), nifti (original affine), dicom-seg"),
]
ModelQuery = Annotated[
    int | None,
    Query(alias="model", ge=1, le=MAX_ID, description="Model version id (default: the newest)"),
]

_FILE = {200: {"content": {"image/png": {}, "application/gzip": {}, "application/dicom": {}}}}


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@router.get("/images/{image_id}/prediction", response_class=Response, responses=_FILE)
def get_prediction(
    image_id: Id,
    session: SessionDep,
    blobs: BlobsDep,
    user: CurrentUser,
    model: ModelQuery = None,
    format: FormatQuery = "png",
    z: Annotated[int | None, Query(ge=0, description="Slice of a volume (PNG only)")] = None,
) -> Response:
    """The predicted label map (0 = background, k = k-th class) of the newest model version
    that predicted this image, or of ``model``."""
    image, _ = require_image_role(session, user, image_id, "viewer")
    prediction, version = service.find_prediction(session, image, model)
    labels = service.load_labels(blobs, prediction)
    if z is not None and z >= labels.shape[0]:
        raise unprocessable(f"slice {z} is outside 0..{labels.shape[0] - 1}", code="bad_slice")
    data, name = service.export(blobs, image, version, labels, format, z)
    headers = _attachment(name) | {"X-Model-Version": str(version.id)}
    return Response(data, media_type=service.MEDIA_TYPES[format], headers=headers)


@router.get("/images/{image_id}/predictions")
def list_image_predictions(
    image_id: Id, session: SessionDep, user: CurrentUser
) -> list[PredictionOut]:
    """Every stored prediction of the image (one per model version), newest version first."""
    require_image_role(session, user, image_id, "viewer")
    rows = session.scalars(
        select(Prediction)
        .join(ModelVersion, Prediction.model_version_id == ModelVersion.id)
        .where(Prediction.image_id == image_id)
        .order_by(NEWEST_FIRST)
    )
    return [PredictionOut.model_validate(p) for p in rows]


@router.get(
    "/projects/{project_id}/predictions.zip",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def get_predictions_zip(
    project_id: Id,
    session: SessionDep,
    blobs: BlobsDep,
    user: CurrentUser,
    model: ModelQuery = None,
    format: FormatQuery = "nifti",
    accepted_only: Annotated[
        bool, Query(description="Only images whose mask by this version was accepted")
    ] = False,
) -> StreamingResponse:
    """All predicted masks of a model version (default: the newest) in one zip; PNG gives one
    file per slice. ``accepted_only=true`` keeps the images accepted in Review."""
    require_project_role(session, user, project_id, "viewer")
    version = service.project_version(session, project_id, model)
    archive = service.project_zip(session, blobs, project_id, version, format, accepted_only)

    def chunks() -> Iterator[bytes]:
        with archive:
            while chunk := archive.read(1024 * 1024):
                yield chunk

    accepted = "_accepted" if accepted_only else ""
    name = f"project{project_id}_model{version.version}{accepted}_{format}.zip"
    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers=_attachment(name) | {"X-Model-Version": str(version.id)},
    )
