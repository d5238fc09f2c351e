"""Predicted label maps: which one to serve, and exports through ``api.imaging.export``.

A prediction blob is ``(Z, H, W)`` uint8 ``.npy`` on the image's grid (0 = background, k = class
``class_names[k - 1]`` of its model version).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO, Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError, not_found, unprocessable
from api.imaging.canonical import CanonicalImage, DicomReference
from api.imaging.errors import ExportError
from api.imaging.export import (
    export_file_name,
    load_label_map,
    to_dicom_seg_bytes,
    to_nifti_bytes,
    to_png_bytes,
    write_zip,
)
from store.blobs import BlobStore
from store.jobs_tables import ModelVersion, Prediction
from store.model_versions import NEWEST_FIRST, latest_version
from store.reviews import accepted_image_ids
from store.tables import Image

Format = Literal["png", "nifti", "dicom-seg"]
MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "nifti": "application/gzip",
    "dicom-seg": "application/dicom",
}


def find_prediction(
    session: Session, image: Image, model_version_id: int | None
) -> tuple[Prediction, ModelVersion]:
    """The image's prediction by ``model_version_id``, or by the newest version that has one."""
    query = (
        select(Prediction, ModelVersion)
        .join(ModelVersion, Prediction.model_version_id == ModelVersion.id)
        .where(Prediction.image_id == image.id)
    )
    if model_version_id is not None:
        query = query.where(ModelVersion.id == model_version_id)
    row = session.execute(query.order_by(NEWEST_FIRST).limit(1)).first()
    if row is None:
        if model_version_id is not None:
            raise ApiError(
                404,
                "no_prediction",
                f"image {image.id} has no prediction by model version {model_version_id}",
            )
        raise ApiError(
            404, "no_prediction", f"image {image.id} has no prediction yet: run a train job"
        )
    return row[0], row[1]


def load_labels(blobs: BlobStore, prediction: Prediction) -> np.ndarray:
    """The stored label map ``(Z, H, W)`` uint8 (memory-mapped)."""
    return load_label_map(blobs.local_path(prediction.mask_key))


def canonical_header(image: Image) -> CanonicalImage:
    """The image's canonical description without reading its voxels (exports need the grid,
    affine and DICOM references only; the data is a zero-cost broadcast view)."""
    meta: dict[str, Any] = dict(image.meta or {})
    dicom_meta = meta.get("dicom")
    shape = (int(image.num_slices), int(image.channels), int(image.height), int(image.width))
    return CanonicalImage(
        data=np.broadcast_to(np.zeros((1, 1, 1, 1), dtype=np.float32), shape),
        spacing=tuple(image.spacing),  # type: ignore[arg-type]
        affine=np.asarray(image.affine, dtype=np.float64),
        modality=str(image.modality),
        windows=list(image.window_presets or []),
        source_kind=image.source_kind,  # type: ignore[arg-type]
        name=image.name,
        dicom=DicomReference.from_meta(dicom_meta) if isinstance(dicom_meta, dict) else None,
    )


def export(
    blobs: BlobStore,
    image: Image,
    version: ModelVersion,
    labels: np.ndarray,
    fmt: Format,
    z: int | None = None,
) -> tuple[bytes, str]:
    """``(file bytes, download name)`` of a label map in ``fmt``. 422 when it cannot be made."""
    try:
        if fmt == "png":
            if z is None and labels.shape[0] > 1:
                raise unprocessable(
                    f"image {image.id} has {labels.shape[0]} slices: PNG needs ?z= "
                    "(or use format=nifti)",
                    code="slice_required",
                )
            return to_png_bytes(labels, z or 0), export_file_name(image.name, "png")
        canonical = canonical_header(image)
        if fmt == "nifti":
            return to_nifti_bytes(labels, canonical), export_file_name(image.name, "nifti")
        sources = [blobs.read_bytes(k) for k in image.source_keys or []]
        data = to_dicom_seg_bytes(labels, sources, list(version.class_names), canonical=canonical)
        return data, export_file_name(image.name, "dicom-seg")
    except ExportError as exc:
        raise unprocessable(str(exc), code="export_failed") from None


def project_version(
    session: Session, project_id: int, model_version_id: int | None
) -> ModelVersion:
    """The given version of the project, or its newest one."""
    version = latest_version(session, project_id, model_version_id)
    if version is None:
        if model_version_id is not None:
            raise not_found("model version", model_version_id)
        raise ApiError(404, "no_prediction", f"project {project_id} has no trained model yet")
    return version


def project_zip(
    session: Session,
    blobs: BlobStore,
    project_id: int,
    version: ModelVersion,
    fmt: Format,
    accepted_only: bool = False,
) -> BinaryIO:
    """A zip of every predicted image of the project by ``version`` (rewound file object);
    with ``accepted_only``, only images whose latest review of that version's mask accepts it.

    PNG: one file per slice (``name_labels_zNNN.png`` for volumes). Images whose export fails
    (e.g. DICOM SEG of a PNG upload) make the whole request fail with a 422 naming the image.
    """
    rows = session.execute(
        select(Image, Prediction)
        .join(Prediction, Prediction.image_id == Image.id)
        .where(Image.project_id == project_id, Prediction.model_version_id == version.id)
        .order_by(Image.id)
    ).all()
    if not rows:
        raise ApiError(
            404, "no_prediction", f"model version {version.id} has no stored predictions"
        )
    if accepted_only:
        accepted = accepted_image_ids(session, version.id)
        rows = [row for row in rows if row[0].id in accepted]
        if not rows:
            raise ApiError(
                404,
                "none_accepted",
                f"no image is accepted for model version {version.version} (id {version.id}): "
                "accept masks in Review first",
            )

    def entries() -> Iterator[tuple[str, bytes]]:
        for image, prediction in rows:
            labels = load_labels(blobs, prediction)
            if fmt == "png" and labels.shape[0] > 1:
                stem = export_file_name(image.name, "png")[: -len(".png")]
                for z in range(labels.shape[0]):
                    yield f"{stem}_z{z:03d}.png", to_png_bytes(labels, z)
                continue
            try:
                data, name = export(blobs, image, version, labels, fmt)
            except ApiError as exc:
                raise unprocessable(
                    f"image {image.id} ({image.name}): {exc.message}", code="export_failed"
                ) from None
            yield name, data

    out = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)  # noqa: SIM115
    try:
        write_zip(out, entries())  # type: ignore[arg-type]
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out  # type: ignore[return-value]
