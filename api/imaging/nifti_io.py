"""NIfTI (.nii, .nii.gz) <-> canonical images, affine kept as given.

NIfTI array axes are ``(i, j, k)`` = ``(col, row, slice)`` of the canonical form, so a NIfTI
array ``A[i, j, k]`` becomes ``data[k, 0, j, i]`` and the affine is stored unchanged.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np

from api.imaging.canonical import CanonicalImage, ImportLimits, check_size
from api.imaging.errors import ExportError, ImageImportError


def _open_stream(path: Path, compressed: bool) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if compressed else open(path, "rb")  # type: ignore[return-value]


def load_nifti(
    path: Path, filename: str, limits: ImportLimits, *, compressed: bool, name: str | None = None
) -> CanonicalImage:
    """Canonical image from a NIfTI-1/2 file (2D or 3D; 4D only with one volume).

    The header is validated and the size limits checked before any voxel is read.
    """
    stream = _open_stream(path, compressed)
    try:
        head = stream.read(540)
        stream.seek(0)
        # nibabel silently "fixes" a wrong sizeof_hdr, but then the byte order is a guess.
        sizes = {int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")}
        if not sizes & {348, 540}:
            raise ImageImportError(
                f"broken NIfTI header: sizeof_hdr is {int.from_bytes(head[:4], 'little')}, "
                "expected 348 (NIfTI-1) or 540 (NIfTI-2)",
                filename,
            )
        cls = nib.Nifti2Image if head[4:8] in (b"n+2\x00", b"ni2\x00") else nib.Nifti1Image
        img = cls.from_stream(stream)
    except Exception as exc:  # nibabel raises many types on malformed headers
        stream.close()
        if isinstance(exc, ImageImportError):
            raise
        raise ImageImportError(
            f"broken NIfTI header ({type(exc).__name__}: {exc})", filename
        ) from exc
    try:
        hdr = img.header
        shape = tuple(int(s) for s in img.shape)
        if len(shape) == 0 or any(s <= 0 for s in shape):
            raise ImageImportError(f"broken NIfTI header: dimensions {shape}", filename)
        if len(shape) > 3 and any(s != 1 for s in shape[3:]):
            raise ImageImportError(
                f"NIfTI of shape {shape} has more than 3 dimensions (4D/time series are not "
                "supported; upload one volume)",
                filename,
            )
        if img.get_data_dtype().names is not None:
            raise ImageImportError("RGB/structured NIfTI voxels are not supported", filename)
        # img.header no longer holds the file's scaling (nibabel moves it into the data proxy
        # and silently drops an infinite one), so read it from the raw header.
        raw = cls.header_class.from_fileobj(io.BytesIO(head))
        scaling = [float(raw[k]) for k in ("scl_slope", "scl_inter")]
        if any(np.isinf(v) for v in scaling):
            raise ImageImportError(
                f"broken NIfTI header: intensity scaling scl_slope/scl_inter {scaling} is not "
                "finite",
                filename,
            )
        shape3 = (*shape[:3], *([1] * (3 - min(len(shape), 3))))
        x, y, z = shape3
        check_size((z, 1, y, x), limits, filename)
        zooms = [float(v) for v in hdr.get_zooms()[:3]] + [1.0] * (3 - min(len(shape), 3))
        if not all(np.isfinite(zooms)) or any(v <= 0 for v in zooms[: len(shape[:3])]):
            raise ImageImportError(f"broken NIfTI header: voxel sizes {zooms}", filename)
        zooms = [v if v > 0 else 1.0 for v in zooms]
        affine = np.asarray(img.affine, dtype=np.float64)
        if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ImageImportError("broken NIfTI header: singular or non-finite affine", filename)
        arr = np.asarray(img.dataobj, dtype=np.float32).reshape(shape3)
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        data = np.ascontiguousarray(arr.transpose(2, 1, 0))[:, None]
    except ImageImportError:
        raise
    except Exception as exc:  # truncated data block, bad scaling, ...
        raise ImageImportError(
            f"cannot read NIfTI voxels ({type(exc).__name__}: {exc})", filename
        ) from exc
    finally:
        stream.close()
    desc = hdr.get("descrip")
    extra = {"descrip": desc.item().decode("latin-1").strip("\x00 ")} if desc is not None else {}
    return CanonicalImage(
        data=data,
        spacing=(zooms[2], zooms[1], zooms[0]),
        affine=affine,
        modality="OT",
        windows=[],
        source_kind="nifti",
        name=name or filename,
        extra={k: v for k, v in extra.items() if v},
    )


def labels_to_nifti_bytes(
    labels: np.ndarray, affine: np.ndarray, *, compress: bool = True
) -> bytes:
    """NIfTI-1 bytes of a label map ``(Z, H, W)`` uint8 with the given 4x4 affine.

    The array is written in NIfTI order ``(col, row, slice)``; qform and sform both carry the
    affine (code 1, scanner). ``compress`` gives .nii.gz bytes, else .nii.
    """
    if labels.ndim != 3 or labels.dtype != np.uint8:
        raise ExportError(f"label map must be (Z, H, W) uint8, got {labels.shape} {labels.dtype}")
    img = nib.Nifti1Image(np.ascontiguousarray(labels.transpose(2, 1, 0)), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_intent("label")
    raw = img.to_bytes()
    # Level 1: label maps are mostly runs of zeros, higher levels only cost time.
    return gzip.compress(raw, compresslevel=1) if compress else raw
