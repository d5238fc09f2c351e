"""DICOM files -> canonical images: one image per series (per geometry within a series).

Two passes keep memory bounded by the output volume plus one frame: pass 1 reads headers only
(pixel data deferred) to group, validate and order frames; pass 2 decodes one frame at a time
into a preallocated ``(Z, C, H, W)`` float32 array, applying rescale slope/intercept.
Single-frame series and multi-frame (enhanced, functional groups) files are handled alike:
each frame is placed by its position along the slice normal (orientation x position).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import iter_pixels
from pydicom.uid import UID, MediaStorageDirectoryStorage

from api.imaging.canonical import CanonicalImage, DicomReference, ImportLimits, check_size
from api.imaging.errors import ImageImportError
from models.channels import drop_equal_channels

_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Keep headers small: pixel data and other big values are read only when needed.
_DEFER_BYTES = 4096


@dataclass(frozen=True)
class DicomFile:
    """A DICOM file on disk and the name to show in messages (client file or zip entry)."""

    path: Path
    display_name: str


@dataclass
class _Frame:
    file: DicomFile
    frame_index: int  # 0-based within its file
    sop_uid: str
    instance_number: int
    position: np.ndarray | None  # ImagePositionPatient (LPS mm) or None
    slope: float
    intercept: float


@dataclass
class _Header:
    """What the import needs from one file's header, converted eagerly: pydicom converts
    values lazily, so on untrusted files any later attribute access could raise."""

    file: DicomFile
    series_uid: str
    study_uid: str
    frame_uid: str | None
    sop_class: str
    sop_uid: str
    rows: int
    cols: int
    samples: int
    photometric: str
    modality: str
    series_number: int
    series_description: str
    orientation: np.ndarray | None  # (6,) row then column direction cosines (LPS)
    pixel_spacing: tuple[float, float]  # (row_mm, col_mm)
    z_fallback_mm: float  # SpacingBetweenSlices or SliceThickness, for series without positions
    windows: list[dict[str, Any]]
    frames: list[_Frame]

    @property
    def group_key(self) -> tuple[Any, ...]:
        iop = self.orientation
        return (
            self.series_uid,
            self.rows,
            self.cols,
            self.samples,
            tuple(np.round(iop, 3)) if iop is not None else None,
        )


def _functional(ds: Dataset, frame: int, seq: str, attr: str) -> Any:
    """``attr`` of functional group ``seq`` for ``frame``: per-frame first, then shared."""
    for groups_name, idx in (
        ("PerFrameFunctionalGroupsSequence", frame),
        ("SharedFunctionalGroupsSequence", 0),
    ):
        groups = ds.get(groups_name)
        if groups is not None and len(groups) > idx:
            item = groups[idx].get(seq)
            if item is not None and len(item) and attr in item[0]:
                return item[0].get(attr)
    return ds.get(attr)


def _floats(value: Any, n: int, what: str) -> np.ndarray | None:
    """``n`` finite floats from a DICOM multi-value, None if absent; ValueError if malformed."""
    if value is None:
        return None
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} values, expected {n}")
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} is not finite")
    return arr


def _scalar(value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"non-finite value {value!r}")
    return out


def _orientation(ds: Dataset) -> np.ndarray | None:
    iop = _floats(
        _functional(ds, 0, "PlaneOrientationSequence", "ImageOrientationPatient"),
        6,
        "ImageOrientationPatient",
    )
    if iop is None:
        return None
    if np.linalg.norm(iop[:3]) < 1e-3 or np.linalg.norm(iop[3:]) < 1e-3:
        raise ValueError("ImageOrientationPatient has a zero direction")
    if np.linalg.norm(np.cross(iop[:3], iop[3:])) < 1e-3:
        raise ValueError("ImageOrientationPatient directions are parallel")
    return iop


def _pixel_spacing(ds: Dataset) -> tuple[float, float]:
    ps = _functional(ds, 0, "PixelMeasuresSequence", "PixelSpacing")
    if ps is None:
        ps = ds.get("ImagerPixelSpacing")
    try:
        arr = _floats(ps, 2, "PixelSpacing")
    except ValueError:
        arr = None
    if arr is None or arr.min() <= 0:
        return (1.0, 1.0)  # no usable calibration: pixels
    return (float(arr[0]), float(arr[1]))


def _windows(ds: Dataset) -> list[dict[str, Any]]:
    centers = _functional(ds, 0, "FrameVOILUTSequence", "WindowCenter")
    widths = _functional(ds, 0, "FrameVOILUTSequence", "WindowWidth")
    names = _functional(ds, 0, "FrameVOILUTSequence", "WindowCenterWidthExplanation")
    if centers is None or widths is None:
        return []

    def as_list(v: Any) -> list[Any]:
        return list(v) if isinstance(v, Sequence) and not isinstance(v, str) else [v]

    cs, ws = as_list(centers), as_list(widths)
    ns = as_list(names) if names is not None else []
    out = []
    for i, (c, w) in enumerate(zip(cs, ws, strict=False)):
        try:
            center, width = _scalar(c, float("nan")), _scalar(w, 0.0)
        except (TypeError, ValueError):
            continue  # a broken preset is not worth refusing the image
        if not width > 0 or not np.isfinite(center):
            continue
        name = str(ns[i]).strip() if i < len(ns) and ns[i] else f"preset {i + 1}"
        out.append({"name": name, "center": center, "width": width})
    return out


def _parse_header(file: DicomFile, ds: Dataset, limits: ImportLimits) -> _Header:
    for attr in ("Rows", "Columns", "SeriesInstanceUID", "SOPInstanceUID"):
        if attr not in ds:
            raise ImageImportError(f"DICOM image lacks {attr}", file.display_name)
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3):
        raise ImageImportError(f"{samples} samples per pixel is not supported", file.display_name)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    # Before looping over frames: a header may claim any number of them.
    check_size((n_frames, samples, rows, cols), limits, file.display_name)
    sop_uid = str(ds.SOPInstanceUID)
    instance = int(_scalar(ds.get("InstanceNumber"), 0.0))
    frames = []
    for i in range(n_frames):
        ipp = _functional(ds, i, "PlanePositionSequence", "ImagePositionPatient")
        slope = _functional(ds, i, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _functional(ds, i, "PixelValueTransformationSequence", "RescaleIntercept")
        frames.append(
            _Frame(
                file=file,
                frame_index=i,
                sop_uid=sop_uid,
                instance_number=instance,
                position=_floats(ipp, 3, "ImagePositionPatient"),
                slope=_scalar(slope, 1.0),
                intercept=_scalar(intercept, 0.0),
            )
        )
    between = _functional(ds, 0, "PixelMeasuresSequence", "SpacingBetweenSlices")
    thickness = _functional(ds, 0, "PixelMeasuresSequence", "SliceThickness")
    z_mm = _scalar(between, 0.0) or _scalar(thickness, 0.0)
    return _Header(
        file=file,
        series_uid=str(ds.SeriesInstanceUID),
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        frame_uid=str(ds.FrameOfReferenceUID) if ds.get("FrameOfReferenceUID") else None,
        sop_class=str(ds.get("SOPClassUID", "") or ""),
        sop_uid=sop_uid,
        rows=rows,
        cols=cols,
        samples=samples,
        photometric=str(ds.get("PhotometricInterpretation", "") or ""),
        modality=str(ds.get("Modality", "") or "OT"),
        series_number=int(_scalar(ds.get("SeriesNumber"), 0.0)),
        series_description=str(ds.get("SeriesDescription", "") or "").strip(),
        orientation=_orientation(ds),
        pixel_spacing=_pixel_spacing(ds),
        z_fallback_mm=z_mm if z_mm > 0 else 1.0,
        windows=_windows(ds),
        frames=frames,
    )


def read_header(file: DicomFile, limits: ImportLimits) -> _Header | None:
    """Header of a DICOM file (pixel data deferred), or ``None`` for non-image objects
    (DICOMDIR, structured reports). Raises :class:`ImageImportError` if it cannot be parsed,
    is over the size limits or has image attributes but no pixel data (truncated)."""
    try:
        ds = pydicom.dcmread(file.path, defer_size=_DEFER_BYTES)
        has_pixels = any(tag in ds for tag in _PIXEL_TAGS)
        if not has_pixels:
            meta = getattr(ds, "file_meta", None)
            sop_class = ds.get("SOPClassUID") or (
                meta.get("MediaStorageSOPClassUID") if meta else None
            )
            if sop_class == MediaStorageDirectoryStorage:
                return None  # DICOMDIR: an index, not an image
            # pydicom stops quietly at EOF, so a truncated image looks like an object without
            # pixels: only complete non-image objects (SR, presentation states...) are skipped.
            if (
                "Rows" in ds
                or sop_class is None
                or "SOPInstanceUID" not in ds
                or "Image" in UID(str(sop_class)).name
            ):
                raise ImageImportError(
                    "corrupt or truncated DICOM: no pixel data", file.display_name
                )
            return None
        return _parse_header(file, ds, limits)
    except ImageImportError:
        raise
    except Exception as exc:  # any parser failure on untrusted bytes means a corrupt file
        raise ImageImportError(
            f"corrupt or truncated DICOM ({type(exc).__name__}: {exc})", file.display_name
        ) from exc


def _series_name(h: _Header, prefix: str | None, part: int | None) -> str:
    name = h.series_description or (
        f"Series {h.series_number}" if h.series_number else f"Series {h.series_uid}"
    )
    if part is not None:
        name += f" (part {part})"
    return f"{prefix}: {name}" if prefix else name


def _order(
    frames: list[_Frame], iop: np.ndarray | None, label: str
) -> tuple[list[_Frame], np.ndarray | None]:
    """Frames sorted along the slice normal and the mean step vector between them (LPS mm)."""
    if iop is not None and all(f.position is not None for f in frames):
        normal = np.cross(iop[:3], iop[3:])
        along = np.asarray([float(np.dot(f.position, normal)) for f in frames])  # type: ignore[arg-type]
        order = np.argsort(along, kind="stable")
        sorted_frames = [frames[i] for i in order]
        if len(frames) > 1:
            gaps = np.diff(along[order])
            if np.any(np.abs(gaps) < 1e-4):
                dup = int(np.sum(np.abs(gaps) < 1e-4))
                raise ImageImportError(
                    f"series {label} has {dup} slice(s) at the same position as another "
                    "(several acquisitions, echoes or time points in one series are not supported)"
                )
            first, last = sorted_frames[0].position, sorted_frames[-1].position
            return sorted_frames, (last - first) / (len(frames) - 1)  # type: ignore[operator]
        return sorted_frames, None
    # No geometry: fall back to instance number, then frame order within a file.
    return sorted(frames, key=lambda f: (f.instance_number, f.frame_index)), None


def build_series(headers: list[_Header], limits: ImportLimits, name: str) -> CanonicalImage:
    """One canonical image from the headers of one series (one geometry)."""
    h0 = headers[0]
    frames = [f for h in headers for f in h.frames]
    iop = h0.orientation
    frames, step = _order(frames, iop, repr(name))
    rows, cols = h0.rows, h0.cols
    channels = h0.samples
    check_size((len(frames), channels, rows, cols), limits, name)
    row_mm, col_mm = h0.pixel_spacing
    z_mm = float(np.linalg.norm(step)) if step is not None else h0.z_fallback_mm

    row_dir = iop[:3] if iop is not None else np.array([1.0, 0.0, 0.0])
    col_dir = iop[3:] if iop is not None else np.array([0.0, 1.0, 0.0])
    step_vec = step if step is not None else np.cross(row_dir, col_dir) * z_mm
    origin = frames[0].position if frames[0].position is not None else np.zeros(3)
    lps = np.eye(4)
    lps[:3, 0] = row_dir * col_mm  # array axis 0 = column index moves along the row direction
    lps[:3, 1] = col_dir * row_mm
    lps[:3, 2] = step_vec
    lps[:3, 3] = origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM LPS -> NIfTI RAS

    volume = np.empty((len(frames), channels, rows, cols), dtype=np.float32)
    where: dict[Path, dict[int, int]] = defaultdict(dict)
    by_path: dict[Path, DicomFile] = {}
    for z, f in enumerate(frames):
        where[f.file.path][f.frame_index] = z
        by_path[f.file.path] = f.file
    for path, targets in where.items():
        _read_frames(by_path[path], targets, frames, volume)
    volume = drop_equal_channels(volume, axis=1)

    windows = next((h.windows for h in headers if h.windows), [])
    reference = DicomReference(
        study_instance_uid=h0.study_uid,
        series_instance_uid=h0.series_uid,
        frame_of_reference_uid=h0.frame_uid,
        sop_class_uid=h0.sop_class,
        sop_instance_uids=tuple(f.sop_uid for f in frames),
        frame_numbers=tuple(f.frame_index + 1 for f in frames),
        source_paths=tuple(dict.fromkeys(h.file.path for h in headers)),
    )
    extra: dict[str, Any] = {}
    if h0.photometric == "MONOCHROME1":
        extra["monochrome1"] = True  # display inverted: higher values darker
    return CanonicalImage(
        data=volume,
        spacing=(z_mm, row_mm, col_mm),
        affine=affine,
        modality=h0.modality,
        windows=windows,
        source_kind="dicom",
        name=name,
        dicom=reference,
        extra=extra,
    )


def _read_frames(
    file: DicomFile, targets: dict[int, int], frames: list[_Frame], volume: np.ndarray
) -> None:
    """Decode the frames of one file one at a time into ``volume[z]`` (rescaled)."""
    rows, cols = volume.shape[2], volume.shape[3]
    try:
        for index, arr in enumerate(iter_pixels(file.path, indices=sorted(targets))):
            frame_index = sorted(targets)[index]
            z = targets[frame_index]
            f = frames[z]
            if arr.shape[:2] != (rows, cols):
                raise ValueError(f"frame of {arr.shape[:2]} pixels, series has {(rows, cols)}")
            out = volume[z]
            if arr.ndim == 3:
                out[...] = np.moveaxis(arr, -1, 0)
            else:
                out[0] = arr
            if f.slope != 1.0 or f.intercept != 0.0:
                out *= np.float32(f.slope)
                out += np.float32(f.intercept)
    except ImageImportError:
        raise
    except Exception as exc:  # decoder errors on untrusted bytes: corrupt, truncated, unsupported
        raise ImageImportError(
            f"cannot decode DICOM pixel data ({type(exc).__name__}: {exc})", file.display_name
        ) from exc


def import_dicom_files(
    files: list[DicomFile], limits: ImportLimits, *, name_prefix: str | None = None
) -> list[CanonicalImage]:
    """Canonical images from DICOM files: one per series (split further by frame geometry).

    Non-image DICOM objects (DICOMDIR, SR) are skipped. Images come out ordered by series number.
    """
    groups: dict[tuple[Any, ...], list[_Header]] = defaultdict(list)
    for file in files:
        header = read_header(file, limits)
        if header is not None:
            groups[header.group_key].append(header)
    per_series: dict[str, int] = defaultdict(int)
    for key in groups:
        per_series[key[0]] += 1
    seen: dict[str, int] = defaultdict(int)
    images = []
    ordered = sorted(groups.items(), key=lambda kv: (kv[1][0].series_number, kv[0][0]))
    for key, headers in ordered:
        seen[key[0]] += 1
        part = seen[key[0]] if per_series[key[0]] > 1 else None
        images.append(build_series(headers, limits, _series_name(headers[0], name_prefix, part)))
    return images
