"""Reference masks (full label maps for evaluation, or mixed supervision when a job opts in).

Upload: one label image on the image's grid (PNG for 2D, NIfTI for 3D; read by the same
importer as images, so axes match) with integer values 0..K (K = number of classes). Stored as
a uint8 ``(Z, H, W)`` ``.npy`` blob.

One slice at a time (a mask corrected in Review): a label PNG of the slice; the row then lists
the labelled slices (``slices``), and training and Dice use only those.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import lock_row
from api.errors import ApiError, not_found, unprocessable
from api.imaging.canonical import ImportLimits
from api.imaging.errors import ImageImportError, ImageTooLargeError, ImagingError
from api.imaging.export import load_label_map, to_png_bytes
from api.imaging.importer import import_uploads
from api.schemas.images import ReferenceSlicesOut
from api.services.images import check_slice
from store.blobs import BlobStore
from store.settings import Settings
from store.tables import Image, Project, ReferenceMask, User


def read_labels(
    files: list[tuple[str, Path]], image: Image, num_classes: int, settings: Settings, work: Path
) -> np.ndarray:
    """The uploaded label map as uint8 ``(Z, H, W)``, checked against the image and classes."""
    if len(files) != 1:
        raise unprocessable(
            "send exactly one label image in the field 'file'", code="bad_reference"
        )
    name = files[0][0]
    try:
        (canon,) = import_uploads(
            files, ImportLimits.from_settings(settings), single_series=True, work_dir=work
        )
    except ImageTooLargeError as exc:
        raise ApiError(413, "image_too_large", str(exc)) from None
    except (ImageImportError, ImagingError) as exc:
        raise unprocessable(str(exc), code="bad_reference") from None
    z, c, h, w = canon.shape
    if c != 1:
        raise unprocessable(f"{name}: a label image has one channel, got {c}", code="bad_reference")
    if (z, h, w) != (image.num_slices, image.height, image.width):
        raise unprocessable(
            f"{name}: label map of shape {(z, h, w)} does not match image {image.id} of shape "
            f"{(image.num_slices, image.height, image.width)} (Z, H, W)",
            code="bad_reference",
        )
    values = canon.data[:, 0]
    if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
        raise unprocessable(f"{name}: label values must be integers", code="bad_reference")
    lo, hi = float(values.min()), float(values.max())
    if lo < 0 or hi > num_classes:
        raise unprocessable(
            f"{name}: label values must lie in 0..{num_classes} (0 = background, k = k-th class), "
            f"got {lo:g}..{hi:g}",
            code="bad_reference",
        )
    return values.astype(np.uint8)


def put_reference(
    session: Session,
    blobs: BlobStore,
    user: User,
    image: Image,
    labels: np.ndarray,
) -> ReferenceMask:
    """Replace the image's reference with a whole label volume (every slice labelled)."""
    return _write_reference(session, blobs, user, image, lambda _row: (labels, None))


def read_slice_labels(path: Path, name: str, image: Image, num_classes: int) -> np.ndarray:
    """A label PNG of one slice as uint8 ``(H, W)``: grey levels 0..K (8 or 16 bit), or RGB(A)
    with R = G = B and opaque alpha (what a browser canvas writes)."""

    def bad(message: str) -> ApiError:
        return unprocessable(f"{name}: {message}", code="bad_reference")

    try:
        with PILImage.open(path) as im:
            if im.format != "PNG":
                raise bad(f"send a PNG, got {im.format or 'an unknown format'}")
            # The size is in the header: checked before any pixel is decoded.
            if im.size != (image.width, image.height):
                raise bad(
                    f"slice of {im.size[1]}x{im.size[0]} px does not match image {image.id} "
                    f"({image.height}x{image.width} px, rows x columns)"
                )
            mode = im.mode
            arr = np.asarray(im)
    except ApiError:
        raise
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise bad(f"not a readable PNG ({exc})") from None
    if mode in ("RGB", "RGBA"):
        if mode == "RGBA" and not np.all(arr[..., 3] == 255):
            raise bad("a label PNG must be opaque (alpha 255 everywhere)")
        if not (
            np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])
        ):
            raise bad("a colour label PNG must be grey (R = G = B = label)")
        arr = arr[..., 0]
    elif mode not in ("L", "I", "I;16", "I;16B", "1"):
        raise bad(f"unsupported PNG mode {mode} (grey levels 0..{num_classes} expected)")
    arr = np.asarray(arr, dtype=np.int64)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > num_classes:
        raise bad(
            f"label values must lie in 0..{num_classes} (0 = background, k = k-th class), "
            f"got {lo}..{hi}"
        )
    return arr.astype(np.uint8)


def put_reference_slice(
    session: Session, blobs: BlobStore, user: User, image: Image, z: int, labels: np.ndarray
) -> ReferenceMask:
    """Write slice ``z`` of the image's reference volume (created, all other slices unlabelled,
    when there is none). A whole uploaded volume stays whole; otherwise ``z`` joins the list of
    labelled slices."""
    check_slice(image, z)

    def with_slice(row: ReferenceMask | None) -> tuple[np.ndarray, list[int] | None]:
        if row is None:
            volume = np.zeros((image.num_slices, image.height, image.width), np.uint8)
            slices: list[int] | None = [z]
        else:
            volume = np.array(load_labels(blobs, row), dtype=np.uint8)
            slices = None if row.slices is None else sorted({*row.slices, z})
        volume[z] = labels
        return volume, slices

    return _write_reference(session, blobs, user, image, with_slice)


def _write_reference(
    session: Session,
    blobs: BlobStore,
    user: User,
    image: Image,
    build: Callable[[ReferenceMask | None], tuple[np.ndarray, list[int] | None]],
) -> ReferenceMask:
    """Store ``build(current row)`` -> ``(label volume (Z, H, W) uint8, labelled slices or None
    for all)`` as the image's reference: a new blob, the row pointed at it, the old blob gone.
    Writers of one image take turns (row lock), so a read-modify-write loses nothing, and a
    deleted image is a 404, not a foreign-key error."""
    key = None
    try:
        lock_row(session, Image, image.id)
        if session.get(Image, image.id) is None:
            raise not_found("image", image.id)
        row = session.scalars(
            select(ReferenceMask).where(ReferenceMask.image_id == image.id)
        ).first()
        volume, slices = build(row)
        buf = io.BytesIO()
        np.save(buf, volume, allow_pickle=False)
        key = blobs.put_bytes(buf.getvalue(), ".npy")
        old_key = row.mask_key if row is not None else None
        if row is None:
            row = ReferenceMask(image_id=image.id, mask_key=key)
            session.add(row)
        row.mask_key = key
        labelled = volume if slices is None else volume[slices]
        row.labels = [int(v) for v in np.unique(labelled)]
        row.slices = slices
        row.uploaded_by = user.id
        session.commit()
    except BaseException:
        session.rollback()
        if key is not None:
            blobs.delete(key)
        raise
    if old_key:
        blobs.delete(old_key)
    return row


def get_reference(session: Session, image: Image) -> ReferenceMask:
    row = session.scalars(select(ReferenceMask).where(ReferenceMask.image_id == image.id)).first()
    if row is None:
        raise not_found("reference mask of image", image.id)
    return row


def reference_slices(session: Session, image: Image) -> ReferenceSlicesOut:
    row = session.scalars(select(ReferenceMask).where(ReferenceMask.image_id == image.id)).first()
    if row is None:
        return ReferenceSlicesOut(image_id=image.id, exists=False, slices=[])
    return ReferenceSlicesOut(image_id=image.id, exists=True, slices=row.slices)


def load_labels(blobs: BlobStore, row: ReferenceMask) -> np.ndarray:
    """uint8 ``(Z, H, W)`` (memory-mapped)."""
    return load_label_map(blobs.local_path(row.mask_key))


def reference_png(
    blobs: BlobStore, image: Image, row: ReferenceMask, z: int, colour: bool
) -> bytes:
    check_slice(image, z)
    return to_png_bytes(load_labels(blobs, row), z, colour=colour)


def delete_reference(session: Session, blobs: BlobStore, image: Image) -> None:
    row = get_reference(session, image)
    key = row.mask_key
    session.delete(row)
    session.commit()
    blobs.delete(key)


def num_classes(project: Project) -> int:
    return max((c.index for c in project.classes), default=0)
