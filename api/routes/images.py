"""Images: upload (multipart field ``files``), list with review filter, get, slice PNG, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import (
    BlobsDep,
    CurrentUser,
    Id,
    SessionDep,
    SettingsDep,
    SliceIndex,
    require_image_role,
    require_project_role,
)
from api.errors import ERROR_RESPONSES, ErrorBody
from api.pagination import PageDep
from api.schemas.common import Page
from api.schemas.images import ImageOut
from api.services import images as service
from api.uploads import multipart_schema, receive_files

router = APIRouter(tags=["images"], responses=ERROR_RESPONSES)

UPLOAD_DOC = (
    "One or more files in the repeated form field `files`: PNG/JPG/TIFF (2D, one slice), NIfTI "
    "(.nii, .nii.gz), DICOM files or a .zip of them (one image per series)."
)


@router.post(
    "/projects/{project_id}/images",
    status_code=status.HTTP_201_CREATED,
    response_model=list[ImageOut],
    openapi_extra=multipart_schema("files", True, UPLOAD_DOC),
    responses={413: {"model": ErrorBody, "description": "Upload or image over the size limit"}},
)
async def upload_images(
    project_id: Id,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> list[ImageOut]:
    """Upload images (annotator role). The body is streamed to disk, never held in memory;
    nothing is stored unless every file is a valid image."""
    project = await run_in_threadpool(require_project_role, session, user, project_id, "annotator")
    # End the read transaction: the upload may take minutes and must not hold a connection.
    await run_in_threadpool(session.commit)
    scratch = service.scratch_dir(settings)
    try:
        files = await receive_files(request, "files", scratch / "in", settings.max_upload_bytes)
        rows = await run_in_threadpool(
            service.import_images, session, blobs, settings, project, user, files, scratch
        )
        return [ImageOut.model_validate(r) for r in rows]
    finally:
        await run_in_threadpool(service.cleanup, scratch)


@router.get("/projects/{project_id}/images")
def list_images(
    project_id: Id,
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    review: Annotated[
        Literal["accepted", "rejected", "needs-hints", "unreviewed"] | None,
        Query(description="Only images whose latest review has this status"),
    ] = None,
) -> Page[ImageOut]:
    require_project_role(session, user, project_id, "viewer")
    rows, total = service.list_images(session, project_id, review, page.offset, page.limit)
    return Page(
        items=[ImageOut.model_validate(r) for r in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/images/{image_id}")
def get_image(image_id: Id, session: SessionDep, user: CurrentUser) -> ImageOut:
    image, _ = require_image_role(session, user, image_id, "viewer")
    return ImageOut.model_validate(image)


@router.delete("/images/{image_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_image(image_id: Id, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> None:
    """Delete an image with its hints, reviews and reference mask (owner role)."""
    image, _ = require_image_role(session, user, image_id, "owner", lock=True)
    service.delete_image(session, blobs, image)


@router.get(
    "/images/{image_id}/slices/{z}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "8-bit PNG of the slice"}},
)
def slice_png(
    image_id: Id,
    z: SliceIndex,
    session: SessionDep,
    user: CurrentUser,
    blobs: BlobsDep,
    wc: Annotated[
        float | None, Query(allow_inf_nan=False, description="Window centre (data units, e.g. HU)")
    ] = None,
    ww: Annotated[
        float | None, Query(gt=0, allow_inf_nan=False, description="Window width (> 0)")
    ] = None,
) -> Response:
    """Slice ``z`` rendered to 8 bits with window/level (default: the first preset, else a
    robust range of the slice)."""
    image, _ = require_image_role(session, user, image_id, "viewer")
    session.close()  # rendering needs no database; free the connection for other requests
    rendered = service.slice_png(blobs, image, z, wc, ww)
    # The window used is sent along so a client can start window/level dragging from it.
    headers = {
        "Cache-Control": "private, max-age=3600",
        "X-Window-Center": f"{rendered.center:.6g}",
        "X-Window-Width": f"{rendered.width:.6g}",
    }
    return Response(rendered.png, media_type="image/png", headers=headers)
