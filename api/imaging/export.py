"""Label-map exports: NIfTI (original affine), PNG, DICOM SEG (highdicom) and zip bundles.

A label map is ``(Z, H, W)`` uint8 on a canonical image's grid: 0 = background, k = k-th
project class (1-based), ``class_names[k - 1]`` names class k.
"""

from __future__ import annotations

import copy
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

import highdicom as hd
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from api.imaging.canonical import CanonicalImage
from api.imaging.errors import ExportError
from api.imaging.nifti_io import labels_to_nifti_bytes

SOFTWARE_NAME = "shapehint"
SOFTWARE_VERSION = "0.1.0"
# Generic codes: the project's classes are free text, so segments say "tissue" and carry the
# class name as their label.
_CATEGORY = Code("85756007", "SCT", "Tissue")
_TYPE = Code("85756007", "SCT", "Tissue")

# Distinct colours for classes 1..; index 0 (background) is black.
_PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
        [170, 110, 40],
        [255, 250, 200],
        [128, 0, 0],
    ],
    dtype=np.uint8,
)


def _check_labels(labels: np.ndarray, shape: tuple[int, int, int] | None = None) -> None:
    if labels.ndim != 3 or labels.dtype != np.uint8:
        raise ExportError(f"label map must be (Z, H, W) uint8, got {labels.shape} {labels.dtype}")
    if shape is not None and tuple(labels.shape) != tuple(shape):
        raise ExportError(f"label map of shape {labels.shape} does not match the image {shape}")


def load_label_map(path: Path) -> np.ndarray:
    """A stored label-map ``.npy`` -> uint8 ``(Z, H, W)``, memory-mapped read-only, so a
    one-slice export reads one slice, not the whole volume."""
    return np.ascontiguousarray(np.load(path, mmap_mode="r", allow_pickle=False), dtype=np.uint8)


def to_nifti_bytes(
    labels: np.ndarray, canonical: CanonicalImage, *, compress: bool = True
) -> bytes:
    """``.nii.gz`` (or ``.nii``) bytes of ``labels`` (Z, H, W) with the image's original affine,
    so the mask overlays the source in 3D Slicer / ITK-SNAP."""
    _check_labels(labels, canonical.label_shape)
    return labels_to_nifti_bytes(labels, canonical.affine, compress=compress)


def palette(num_classes: int) -> np.ndarray:
    """``(256, 3)`` uint8 colours; entry k is class k's colour (0 black)."""
    out = np.zeros((256, 3), dtype=np.uint8)
    for k in range(1, 256):
        out[k] = _PALETTE[1 + (k - 1) % (len(_PALETTE) - 1)]
    return out


def to_png_bytes(labels: np.ndarray, z: int = 0, *, colour: bool = False) -> bytes:
    """PNG of slice ``z`` of ``labels`` (Z, H, W) or of a 2D ``(H, W)`` label map.

    Pixel values are the label values either way; ``colour=True`` writes a palette PNG whose
    colours show the classes (viewers show colours, readers get label indices).
    """
    if labels.ndim == 2:
        labels = labels[None]
    _check_labels(labels)
    if not 0 <= z < labels.shape[0]:
        raise ExportError(f"slice {z} is outside 0..{labels.shape[0] - 1}")
    sl = np.ascontiguousarray(labels[z])
    if colour:
        img = Image.fromarray(sl, "P")
        img.putpalette(palette(int(sl.max())).ravel().tolist())
    else:
        img = Image.fromarray(sl, "L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _as_dataset(source: bytes | str | Path | Dataset) -> Dataset:
    if isinstance(source, Dataset):
        return source
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(bytes(source))
    try:
        # highdicom needs geometry and identifiers, not the source pixels.
        return pydicom.dcmread(source, stop_before_pixels=True)
    except Exception as exc:
        raise ExportError(f"cannot read a DICOM source file ({exc})") from exc


# Attributes highdicom copies from the first source image into the SEG's patient and study
# modules. All are type 2 (present, may be empty) in the source IODs, and anonymisers often
# drop them altogether; an empty value is what DICOM means by "unknown".
_TYPE2_DEFAULTS: dict[str, str] = {
    "PatientID": "",
    "PatientName": "",
    "PatientBirthDate": "",
    "PatientSex": "",
    "StudyDate": "",
    "StudyTime": "",
    "StudyID": "",
    "AccessionNumber": "",
    "ReferringPhysicianName": "",
}


def with_type2_defaults(ds: Dataset) -> Dataset:
    """``ds``, or a copy of it with every missing attribute of :data:`_TYPE2_DEFAULTS` set
    empty and a missing Modality set to ``OT`` (other): the caller's dataset is left as it is."""
    missing = [k for k in _TYPE2_DEFAULTS if k not in ds]
    if not missing and "Modality" in ds:
        return ds
    out = copy.deepcopy(ds)  # sources are read without pixels, so the copy is small
    for key in missing:
        setattr(out, key, _TYPE2_DEFAULTS[key])
    if "Modality" not in out:
        out.Modality = "OT"
    return out


def to_dicom_seg_bytes(
    labels: np.ndarray,
    source_datasets: Sequence[bytes | str | Path | Dataset],
    class_names: Sequence[str],
    *,
    canonical: CanonicalImage,
    segmentation_type: Literal["binary", "labelmap"] = "binary",
    series_description: str = "shapehint segmentation",
    series_number: int = 900,
    content_creator: str | None = None,
) -> bytes:
    """DICOM SEG bytes for ``labels`` (Z, H, W) uint8 on a DICOM-sourced canonical image.

    ``source_datasets``: the original files of the series (bytes, paths or datasets; any order,
    extra files ignored). One segment per class, labelled with its name; the SEG references the
    source series and frames. Segments without pixels stay described but have no frames; an
    all-background map yields a valid SEG with one empty frame.
    """
    ref = canonical.dicom
    if canonical.source_kind != "dicom" or ref is None:
        raise ExportError(
            f"DICOM SEG needs a DICOM source; image {canonical.name!r} came from "
            f"{canonical.source_kind} (use NIfTI or PNG)"
        )
    _check_labels(labels, canonical.label_shape)
    if not class_names:
        raise ExportError("DICOM SEG needs at least one class name")
    if int(labels.max(initial=0)) > len(class_names):
        raise ExportError(
            f"label value {int(labels.max())} has no class (only {len(class_names)} classes)"
        )
    by_uid: dict[str, Dataset] = {}
    for src in source_datasets:
        ds = _as_dataset(src)
        by_uid[str(ds.SOPInstanceUID)] = ds
    wanted = list(dict.fromkeys(ref.sop_instance_uids))
    missing = [uid for uid in wanted if uid not in by_uid]
    if missing:
        raise ExportError(f"{len(missing)} source DICOM instance(s) missing, e.g. {missing[0]}")
    sources = [with_type2_defaults(by_uid[uid]) for uid in wanted]
    if len(sources) == 1 and int(sources[0].get("NumberOfFrames", 1) or 1) > 1:
        # Multi-frame source: SEG frames follow the source's frame order.
        n = int(sources[0].NumberOfFrames)
        pixel = np.zeros((n, *labels.shape[1:]), dtype=np.uint8)
        for z, frame in enumerate(ref.frame_numbers):
            pixel[frame - 1] = labels[z]
    elif len(sources) == labels.shape[0]:
        pixel = labels  # single-frame sources listed in canonical slice order
    else:
        raise ExportError(
            "DICOM SEG export supports a series of single-frame images or one multi-frame image"
        )
    algorithm = hd.AlgorithmIdentificationSequence(
        name=SOFTWARE_NAME,
        version=SOFTWARE_VERSION,
        family=codes.cid7162.ArtificialIntelligence,
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=str(name)[:64],
            segmented_property_category=_CATEGORY,
            segmented_property_type=_TYPE,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_uid=hd.UID(),
            tracking_id=f"{SOFTWARE_NAME} class {k}: {name}"[:64],
        )
        for k, name in enumerate(class_names, start=1)
    ]
    seg_type = (
        hd.seg.SegmentationTypeValues.LABELMAP
        if segmentation_type == "labelmap"
        else hd.seg.SegmentationTypeValues.BINARY
    )
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=pixel,
            segmentation_type=seg_type,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=SOFTWARE_NAME,
            manufacturer_model_name=SOFTWARE_NAME,
            software_versions=SOFTWARE_VERSION,
            device_serial_number="0",
            series_description=series_description[:64],
            content_creator_name=content_creator,
            omit_empty_frames=True,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ExportError(f"cannot build DICOM SEG from the source series ({exc})") from exc
    buf = io.BytesIO()
    seg.save_as(buf)
    return buf.getvalue()


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_member_name(name: str, fallback: str = "image") -> str:
    """A zip member / download file name derived from a display name: no directories, no
    traversal, only ``[A-Za-z0-9._ -]``."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).strip(" .")
    return cleaned[:120] or fallback


def write_zip(target: BinaryIO, entries: Iterable[tuple[str, bytes]]) -> None:
    """Write ``(member name, bytes)`` entries as a deflated zip to ``target``, one at a time.

    Member names must be relative and free of ``..``; duplicates get ``-2``, ``-3``... suffixes.
    """
    used: set[str] = set()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, data in entries:
            norm = name.replace("\\", "/")
            if norm.startswith("/") or ".." in PurePosixPath(norm).parts or not norm:
                raise ExportError(f"unsafe zip member name {name!r}")
            unique, n = norm, 1
            while unique in used:
                n += 1
                stem, dot, ext = norm.partition(".")
                unique = f"{stem}-{n}{dot}{ext}"
            used.add(unique)
            zf.writestr(unique, data)


def zip_bytes(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """Zip archive bytes of ``(member name, bytes)`` entries (see :func:`write_zip`)."""
    buf = io.BytesIO()
    write_zip(buf, entries)
    return buf.getvalue()


def export_file_name(image_name: str, fmt: Literal["png", "nifti", "dicom-seg"]) -> str:
    """Download name for an image's prediction in ``fmt`` (safe for Content-Disposition)."""
    stem = safe_member_name(image_name)
    for suffix in (".nii.gz", ".nii", ".dcm", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".zip"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)] or "image"
            break
    return stem + {"png": "_labels.png", "nifti": "_labels.nii.gz", "dicom-seg": "_seg.dcm"}[fmt]
