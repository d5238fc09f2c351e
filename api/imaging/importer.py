"""Uploads -> canonical images: the one entry point the API calls for imports.

Kinds are recognised by content (magic bytes); the client's file name only makes messages
clearer. Zip members are streamed to generated file names in ``work_dir`` (never paths derived
from member names). All DICOM files of one upload (loose and zipped) are grouped by series.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from api.imaging.canonical import CanonicalImage, ImportLimits
from api.imaging.dicom_import import DicomFile, import_dicom_files
from api.imaging.errors import ImageImportError
from api.imaging.nifti_io import load_nifti
from api.imaging.raster_io import load_raster
from api.imaging.safe_zip import iter_zip_members
from api.imaging.sniff import sniff_file

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIXES = (".dcm", ".dicom")


def _refuse_unknown(filename: str, kind: str) -> ImageImportError:
    lower = filename.lower()
    if lower.endswith(_NIFTI_SUFFIXES):
        return ImageImportError("broken NIfTI header (no NIfTI magic found)", filename)
    if lower.endswith(_DICOM_SUFFIXES):
        return ImageImportError("not a valid DICOM file (no 'DICM' marker at byte 128)", filename)
    if kind == "gzip":
        return ImageImportError("gzip file that does not contain a NIfTI image", filename)
    return ImageImportError(
        "not a supported image (expected DICOM, NIfTI, PNG, JPEG, TIFF or a zip of them)", filename
    )


def import_uploads(
    files: list[tuple[str, Path]],
    limits: ImportLimits | None = None,
    *,
    single_series: bool = False,
    work_dir: Path | None = None,
) -> list[CanonicalImage]:
    """Canonical images from uploaded files.

    ``files``: ``(client file name, path on disk)`` pairs. Each NIfTI/PNG/JPEG/TIFF file is one
    image; all DICOM files (loose or inside zips) are grouped by SeriesInstanceUID, one image per
    series. ``single_series=True`` refuses an upload that yields more than one image.

    DICOM images keep ``image.dicom.source_paths``: the loose upload paths, or for zip members
    files inside ``work_dir``. Pass a ``work_dir`` that you delete after storing those files;
    without one, zip members go to a temporary directory deleted before returning (then
    ``source_paths`` of zipped DICOM no longer exist, which is fine if you do not keep originals).

    Raises :class:`ImageImportError` (a ``ValueError``) naming the file and the problem;
    :class:`ImageTooLargeError` for size limits. Nothing is returned partially: any bad file
    fails the whole upload.
    """
    limits = limits or ImportLimits()
    if not files:
        raise ImageImportError("no files uploaded")
    own_dir = work_dir is None
    scratch = Path(tempfile.mkdtemp(prefix="shapehint-import-")) if own_dir else work_dir
    assert scratch is not None
    try:
        images = _import(files, limits, scratch)
    finally:
        if own_dir:
            shutil.rmtree(scratch, ignore_errors=True)
    for image in images:
        _refuse_non_finite(image)
    if not images:
        names = ", ".join(name for name, _ in files)
        raise ImageImportError(f"no images found in the upload ({names})")
    if single_series and len(images) > 1:
        listed = "; ".join(img.name for img in images[:5])
        raise ImageImportError(
            f"expected one image or series but the upload holds {len(images)} ({listed})"
        )
    return images


def _refuse_non_finite(image: CanonicalImage) -> None:
    """NaN/Inf voxels (or a NIfTI scl_slope of inf) would render black and poison training:
    refuse the image, naming how many voxels are affected. Checked slice by slice so the test
    needs no second full-size array."""
    bad = sum(int(np.count_nonzero(~np.isfinite(plane))) for plane in image.data)
    if bad:
        raise ImageImportError(
            f"{bad} of {image.data.size} voxels are NaN or infinite (check the file's data and "
            "its intensity scaling, e.g. NIfTI scl_slope)",
            image.name,
        )


def _import(
    files: list[tuple[str, Path]], limits: ImportLimits, scratch: Path
) -> list[CanonicalImage]:
    images: list[CanonicalImage] = []
    dicom_files: list[DicomFile] = []
    zip_names: list[str] = []
    for filename, path in files:
        kind = sniff_file(path)
        if kind == "zip":
            zip_dir = Path(tempfile.mkdtemp(prefix="zip-", dir=scratch))
            zip_names.append(filename)
            found = 0
            for member, member_path in iter_zip_members(path, filename, limits, zip_dir):
                shown = f"{filename}:{member}"
                member_kind = sniff_file(member_path)
                if member_kind == "dicom":
                    dicom_files.append(DicomFile(member_path, shown))
                    found += 1
                elif member_kind in ("nifti", "nifti-gz", "png", "jpeg", "tiff"):
                    images.append(_load_single(member_kind, member_path, shown, limits))
                    found += 1
                elif member_kind == "zip":
                    raise ImageImportError(f"nested zip {member!r} is not supported", filename)
                # Anything else (DICOMDIR text, notes, thumbnails) is not an image: skipped.
            if found == 0:
                raise ImageImportError("zip archive contains no images", filename)
        elif kind == "dicom":
            dicom_files.append(DicomFile(path, filename))
        elif kind in ("nifti", "nifti-gz", "png", "jpeg", "tiff"):
            images.append(_load_single(kind, path, filename, limits))
        else:
            raise _refuse_unknown(filename, kind)
    if dicom_files:
        prefix = zip_names[0] if len(zip_names) == 1 and len(files) == 1 else None
        images.extend(import_dicom_files(dicom_files, limits, name_prefix=prefix))
    return images


def _load_single(kind: str, path: Path, shown: str, limits: ImportLimits) -> CanonicalImage:
    if kind in ("nifti", "nifti-gz"):
        return load_nifti(path, shown, limits, compressed=kind == "nifti-gz")
    return load_raster(path, shown, limits)
