"""Reference masks: upload (multipart field ``file``; a whole label image, or one slice),
metadata, slice PNG, delete."""

from __future__ import annotations

from typing import Annotated

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
)
from api.errors import ERROR_RESPONSES, ErrorBody, unprocessable
from api.schemas.images import ReferenceOut, ReferenceSlicesOut
from api.services import images as images_service
from api.services import references as service
from api.uploads import multipart_schema, receive_files

router = APIRouter(tags=["references"], responses=ERROR_RESPONSES)


@router.put(
    "/images/{image_id}/reference",
    openapi_extra=multipart_schema(
        "file", False, "One label image on the image's grid: PNG (2D) or NIfTI (3D), values 0..K"
    ),
    responses={413: {"model": ErrorBody}},
)
async def put_reference(
    image_id: Id,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> ReferenceOut:
    """Set the image's reference mask (annotator role); replaces an earlier one."""
    image, project = await run_in_threadpool(
        require_image_role, session, user, image_id, "annotator"
    )
    # End the read transaction: the upload may take minutes and must not hold a connection.
    await run_in_threadpool(session.commit)
    scratch = images_service.scratch_dir(settings)
    try:
        files = await receive_files(request, "file", scratch / "in", settings.max_upload_bytes)
        work = scratch / "work"
        work.mkdir()
        labels = await run_in_threadpool(
            service.read_labels, files, image, service.num_classes(project), settings, work
        )
        row = await run_in_threadpool(service.put_reference, session, blobs, user, image, labels)
        return ReferenceOut.model_validate(row)
    finally:
        await run_in_threadpool(images_service.cleanup, scratch)


@router.put(
    "/images/{image_id}/reference/slices/{z}",
    openapi_extra=multipart_schema(
        "file",
        False,
        "Label PNG of slice z on the image's grid: grey level k = k-th class, 0 = background "
        "(RGB(A) with R = G = B is read as grey)",
    ),
    responses={413: {"model": ErrorBody}},
)
async def put_reference_slice(
    image_id: Id,
    z: SliceIndex,
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> ReferenceOut:
    """Set one slice of the reference mask (a mask corrected in Review; annotator role)."""
    image, project = await run_in_threadpool(
        require_image_role, session, user, image_id, "annotator"
    )
    await run_in_threadpool(images_service.check_slice, image, z)
    await run_in_threadpool(session.commit)
    scratch = images_service.scratch_dir(settings)
    try:
        files = await receive_files(request, "file", scratch / "in", settings.max_upload_bytes)
        if len(files) != 1:
            raise unprocessable("send exactly one label PNG in the field 'file'", "bad_reference")
        labels = await run_in_threadpool(
            service.read_slice_labels, files[0][1], files[0][0], image, service.num_classes(project)
        )
        row = await run_in_threadpool(
            service.put_reference_slice, session, blobs, user, image, z, labels
        )
        return ReferenceOut.model_validate(row)
    finally:
        await run_in_threadpool(images_service.cleanup, scratch)


@router.get("/images/{image_id}/reference")
def get_reference(image_id: Id, session: SessionDep, user: CurrentUser) -> ReferenceOut:
    image, _ = require_image_role(session, user, image_id, "viewer")
    return ReferenceOut.model_validate(service.get_reference(session, image))


@router.get("/images/{image_id}/reference/slices")
def reference_slices(image_id: Id, session: SessionDep, user: CurrentUser) -> ReferenceSlicesOut:
    """The labelled slices of the image's reference mask; 200 (``exists`` false) without one."""
    image, _ = require_image_role(session, user, image_id, "viewer")
    return service.reference_slices(session, image)


@router.get(
    "/images/{image_id}/reference/slices/{z}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "Label PNG of the slice"}},
)
def reference_png(
    image_id: Id,
    z: SliceIndex,
    session: SessionDep,
    user: CurrentUser,
    blobs: BlobsDep,
    colour: Annotated[
        bool, Query(description="RGB with class colours instead of label values")
    ] = False,
) -> Response:
    image, _ = require_image_role(session, user, image_id, "viewer")
    row = service.get_reference(session, image)
    return Response(service.reference_png(blobs, image, row, z, colour), media_type="image/png")


@router.delete("/images/{image_id}/reference", status_code=status.HTTP_204_NO_CONTENT)
def delete_reference(image_id: Id, session: SessionDep, user: CurrentUser, blobs: BlobsDep) -> None:
    image, _ = require_image_role(session, user, image_id, "annotator")
    service.delete_reference(session, blobs, image)
