"""Image import, listing and slice rendering.

Import: uploaded files (already on disk) -> ``api.imaging.importer.import_uploads`` -> for each
canonical image, ``volume.npy`` written once to the blob store (plus the original DICOM files)
-> all rows inserted in one transaction. If anything fails, every blob written so far is
deleted again, so a failed upload leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.errors import ApiError, not_found, unprocessable
from api.imaging.canonical import CanonicalImage, ImportLimits
from api.imaging.errors import ImageImportError, ImageTooLargeError, ImagingError
from api.imaging.importer import import_uploads
from api.imaging.render import RenderedSlice, render_slice
from store.blobs import BlobStore
from store.jobs_tables import Prediction
from store.settings import Settings
from store.tables import Image, Project, ReferenceMask, User


def scratch_dir(settings: Settings) -> Path:
    """A fresh folder for one request's temporary files, on the data volume (same disk as blobs)."""
    base = settings.resolved_data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="upload-", dir=base))


def import_images(
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    project: Project,
    user: User,
    files: list[tuple[str, Path]],
    scratch: Path,
) -> list[Image]:
    """Import ``files`` ((client name, path) pairs) into ``project``; all or nothing."""
    limits = ImportLimits.from_settings(settings)
    work = scratch / "work"
    work.mkdir(exist_ok=True)
    try:
        canon = import_uploads(files, limits, work_dir=work)
    except ImageTooLargeError as exc:
        raise ApiError(413, "image_too_large", str(exc)) from None
    except (ImageImportError, ImagingError) as exc:
        raise unprocessable(str(exc), code="bad_image") from None
    written: list[str] = []
    try:
        rows = [_store_one(blobs, project, user, image, scratch, written) for image in canon]
        session.add_all(rows)
        session.commit()
    except BaseException:
        session.rollback()
        for key in written:
            blobs.delete(key)
        raise
    return rows


def _store_one(
    blobs: BlobStore,
    project: Project,
    user: User,
    image: CanonicalImage,
    scratch: Path,
    written: list[str],
) -> Image:
    volume_path = scratch / f"volume-{len(written)}.npy"
    image.write_volume(volume_path)
    volume_key = blobs.put_file(volume_path, ".npy")
    written.append(volume_key)
    volume_path.unlink(missing_ok=True)
    source_keys: list[str] = []
    if image.dicom is not None:
        for path in image.dicom.source_paths:
            key = blobs.put_file(path, ".dcm")
            written.append(key)
            source_keys.append(key)
    z, c, h, w = image.shape
    return Image(
        project_id=project.id,
        name=printable(image.name)[:255] or "image",
        source_kind=image.source_kind,
        modality=printable(image.modality or "OT")[:16] or "OT",
        num_slices=z,
        channels=c,
        height=h,
        width=w,
        spacing=[float(s) for s in image.spacing],
        affine=image.affine.tolist(),
        window_presets=[{**wp, "name": printable(str(wp.get("name", "")))} for wp in image.windows],
        meta=image.to_meta(),
        volume_key=volume_key,
        source_keys=source_keys,
        created_by=user.id,
    )


def printable(text: str) -> str:
    """File metadata (DICOM SeriesDescription, NIfTI descrip, ...) without NUL and other
    control characters, which PostgreSQL cannot store and no display wants."""
    return "".join(ch for ch in text if ch.isprintable()).strip()


def cleanup(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)


def list_images(
    session: Session, project_id: int, review: str | None, offset: int, limit: int
) -> tuple[list[Image], int]:
    query = select(Image).where(Image.project_id == project_id)
    if review == "unreviewed":
        query = query.where(Image.review_status.is_(None))
    elif review is not None:
        query = query.where(Image.review_status == review)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Image.id).offset(offset).limit(limit)).all()
    return list(rows), total


def load_canonical(blobs: BlobStore, image: Image) -> CanonicalImage:
    """The stored canonical image; the volume is memory-mapped (only touched slices are read)."""
    return CanonicalImage.load(image.meta, blobs.local_path(image.volume_key), mmap=True)


def check_slice(image: Image, z: int) -> None:
    if not 0 <= z < image.num_slices:
        raise not_found(f"slice {z} of image", f"{image.id} (slices 0..{image.num_slices - 1})")


def slice_png(
    blobs: BlobStore, image: Image, z: int, wc: float | None, ww: float | None
) -> RenderedSlice:
    """8-bit PNG of slice ``z`` with window centre/width in data units (defaults: presets),
    and the window actually used."""
    check_slice(image, z)
    try:
        return render_slice(load_canonical(blobs, image), z, wc, ww)
    except ImagingError as exc:
        raise unprocessable(str(exc), code="bad_window") from None


def delete_image(session: Session, blobs: BlobStore, image: Image) -> None:
    """Delete the image row (the database cascades to hints, reviews, reference mask and
    predictions) and every blob those rows own."""
    keys = [image.volume_key, *image.source_keys]
    keys += session.scalars(
        select(ReferenceMask.mask_key).where(ReferenceMask.image_id == image.id)
    )
    keys += session.scalars(select(Prediction.mask_key).where(Prediction.image_id == image.id))
    session.delete(image)
    session.commit()
    # Blobs go after the commit: a failed commit must not lose the data of a live row.
    for key in keys:
        blobs.delete(key)
