"""The canonical image form (see docs/interfaces.md) and the limits that guard imports.

A canonical image is a float32 volume ``(Z, C, H, W)`` (C = 1 grey or 3 RGB) with spacing
``(z_mm, row_mm, col_mm)``, a 4x4 NIfTI (RAS) affine for array axes ``(col, row, slice)``, a
modality, window presets and, for DICOM sources, what a DICOM SEG needs to reference them.
Stored as ``volume.npy`` plus the JSON-able dict of :meth:`CanonicalImage.to_meta`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

SourceKind = Literal["dicom", "nifti", "raster"]
META_VERSION = 1


@dataclass(frozen=True)
class ImportLimits:
    """Upper bounds on what an import may produce or unpack.

    ``max_voxels`` counts Z*H*W*C of one image; ``max_slice_side`` bounds H and W (pixels);
    ``max_unpacked_bytes`` bounds the total uncompressed size of zip members (zip bombs);
    ``max_zip_members`` bounds the number of entries of one zip.
    """

    max_voxels: int = 512 * 1024 * 1024 // 4
    max_slice_side: int = 4096
    max_unpacked_bytes: int = 4 * 1024**3
    max_zip_members: int = 20_000

    @classmethod
    def from_settings(cls, settings: Any) -> ImportLimits:
        """Limits from ``store.settings.Settings`` (unpacked bytes: 4x the upload limit)."""
        upload = int(getattr(settings, "max_upload_bytes", 1024**3))
        return cls(
            max_voxels=int(settings.max_image_voxels),
            max_slice_side=int(settings.max_slice_side),
            max_unpacked_bytes=int(getattr(settings, "max_unpacked_bytes", 4 * upload)),
            max_zip_members=int(getattr(settings, "max_zip_members", cls.max_zip_members)),
        )


@dataclass(frozen=True)
class DicomReference:
    """Where each canonical slice came from, for DICOM SEG export.

    ``sop_instance_uids[z]`` / ``frame_numbers[z]`` (1-based) identify the source frame of slice z;
    ``source_paths`` are the series' files on disk at import time (the caller stores them as blobs;
    they are not serialised).
    """

    study_instance_uid: str
    series_instance_uid: str
    frame_of_reference_uid: str | None
    sop_class_uid: str
    sop_instance_uids: tuple[str, ...]
    frame_numbers: tuple[int, ...]
    source_paths: tuple[Path, ...] = ()

    def to_meta(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uids": list(self.sop_instance_uids),
            "frame_numbers": list(self.frame_numbers),
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> DicomReference:
        return cls(
            study_instance_uid=str(meta["study_instance_uid"]),
            series_instance_uid=str(meta["series_instance_uid"]),
            frame_of_reference_uid=meta.get("frame_of_reference_uid"),
            sop_class_uid=str(meta["sop_class_uid"]),
            sop_instance_uids=tuple(str(u) for u in meta["sop_instance_uids"]),
            frame_numbers=tuple(int(f) for f in meta["frame_numbers"]),
        )


@dataclass
class CanonicalImage:
    """One imported image.

    ``data``: float32 ``(Z, C, H, W)``, C in {1, 3}, in modality units (e.g. HU after rescale).
    ``spacing``: ``(z_mm, row_mm, col_mm)``. ``affine``: 4x4 float64 mapping voxel indices
    ``(col, row, slice, 1)`` to RAS+ mm (NIfTI convention). ``windows``: display presets
    ``[{"name", "center", "width"}]`` in the units of ``data``.
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    modality: str
    windows: list[dict[str, Any]]
    source_kind: SourceKind
    name: str
    dicom: DicomReference | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 4 or self.data.shape[1] not in (1, 3):
            raise ValueError(
                f"canonical data must be (Z, C, H, W) with C 1 or 3, got {self.data.shape}"
            )
        if self.data.dtype != np.float32:
            raise ValueError(f"canonical data must be float32, got {self.data.dtype}")
        self.affine = np.asarray(self.affine, dtype=np.float64).reshape(4, 4)
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(Z, C, H, W)``."""
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def label_shape(self) -> tuple[int, int, int]:
        """Shape ``(Z, H, W)`` of a label map on this image's grid."""
        z, _, h, w = self.shape
        return (z, h, w)

    def to_meta(self) -> dict[str, Any]:
        """JSON-able description of everything except the voxels (and DICOM file paths)."""
        return {
            "version": META_VERSION,
            "shape": list(self.shape),
            "spacing": list(self.spacing),
            "affine": self.affine.tolist(),
            "modality": self.modality,
            "windows": [dict(w) for w in self.windows],
            "source_kind": self.source_kind,
            "name": self.name,
            "dicom": self.dicom.to_meta() if self.dicom else None,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any], data: np.ndarray) -> CanonicalImage:
        """Rebuild from :meth:`to_meta` and the volume (checked against the stored shape)."""
        if list(data.shape) != list(meta["shape"]):
            raise ValueError(f"volume shape {data.shape} does not match meta shape {meta['shape']}")
        return cls(
            data=data,
            spacing=tuple(meta["spacing"]),  # type: ignore[arg-type]
            affine=np.asarray(meta["affine"], dtype=np.float64),
            modality=str(meta["modality"]),
            windows=list(meta["windows"]),
            source_kind=meta["source_kind"],
            name=str(meta["name"]),
            dicom=DicomReference.from_meta(meta["dicom"]) if meta.get("dicom") else None,
            extra=dict(meta.get("extra") or {}),
        )

    def write_volume(self, target: str | Path | BinaryIO) -> None:
        """Write ``data`` as ``.npy`` to a path or binary file object without an extra copy."""
        np.save(target, self.data, allow_pickle=False)

    def volume_npy_bytes(self) -> bytes:
        """``data`` as ``.npy`` bytes (a full copy in memory; prefer :meth:`write_volume`)."""
        buf = io.BytesIO()
        self.write_volume(buf)
        return buf.getvalue()

    @classmethod
    def load(
        cls, meta: dict[str, Any], volume: bytes | str | Path | BinaryIO, *, mmap: bool = False
    ) -> CanonicalImage:
        """Rebuild from meta and a stored ``volume.npy`` (bytes, path or file object).

        ``mmap=True`` (paths only) maps the file read-only instead of reading it, so rendering
        one slice of a large volume touches only that slice.
        """
        return cls.from_meta(meta, read_volume(volume, mmap=mmap))


def read_volume(source: bytes | str | Path | BinaryIO, *, mmap: bool = False) -> np.ndarray:
    """Read a canonical ``volume.npy``: float32 ``(Z, C, H, W)``, never unpickling objects."""
    if isinstance(source, bytes | bytearray | memoryview):
        source = io.BytesIO(bytes(source))
    if mmap and isinstance(source, str | Path):
        arr = np.load(source, mmap_mode="r", allow_pickle=False)
    else:
        arr = np.load(source, allow_pickle=False)
    if arr.dtype != np.float32 or arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"not a canonical volume: dtype {arr.dtype}, shape {arr.shape}")
    return arr


def check_size(shape_zchw: tuple[int, int, int, int], limits: ImportLimits, filename: str) -> None:
    """Refuse an image of ``(Z, C, H, W)`` over the limits, before any voxel is read."""
    from api.imaging.errors import ImageImportError, ImageTooLargeError

    z, c, h, w = shape_zchw
    if min(shape_zchw) <= 0:  # a 422 like other unusable files, not a 413 "too large"
        raise ImageImportError(f"image has an empty dimension (shape {shape_zchw})", filename)
    if h > limits.max_slice_side or w > limits.max_slice_side:
        raise ImageTooLargeError(
            f"slice of {h}x{w} pixels exceeds the limit of {limits.max_slice_side} pixels per side",
            filename,
        )
    voxels = z * c * h * w
    if voxels > limits.max_voxels:
        raise ImageTooLargeError(
            f"image of {z}x{h}x{w}x{c} = {voxels} voxels exceeds the limit of {limits.max_voxels}",
            filename,
        )


def robust_window(values: np.ndarray) -> tuple[float, float]:
    """``(center, width)`` spanning the 0.5th-99.5th percentiles of ``values`` (width > 0)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    if finite.size > 1_000_000:
        # A strided sample is plenty for percentiles and keeps rendering of big slices fast.
        finite = finite.ravel()[:: finite.size // 1_000_000 + 1]
    lo, hi = np.percentile(finite, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    width = float(hi - lo) if hi > lo else 1.0
    return float(lo) + width / 2.0, width
