"""Synthetic DICOM for tests and benchmarks: CT series (single-frame) and enhanced multi-frame.

Pixel values are stored so that ``stored * slope + intercept`` equals the requested volume
(``(Z, H, W)`` in HU, integers), with ``Z`` along the slice normal of the orientation.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, ExplicitVRLittleEndian, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _base(
    sop_class: str,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    series_number: int,
    description: str,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid
    ds.PatientName = "Test^Phantom"
    ds.PatientID = "PHANTOM1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = datetime.date.today().strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = "A1"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.Modality = "CT"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.Manufacturer = "shapehint-tests"
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _stored(hu: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    stored = np.rint((hu - intercept) / slope)
    assert stored.min() >= -32768 and stored.max() <= 32767
    return stored.astype(np.int16)


def make_ct_series(
    volume_hu: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (2.5, 0.8, 0.7),
    orientation: Sequence[float] = AXIAL,
    origin: Sequence[float] = (-100.0, -80.0, 30.0),
    slope: float = 1.0,
    intercept: float = -1024.0,
    windows: Sequence[tuple[float, float, str]] = (),
    series_number: int = 1,
    description: str = "CT test",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_uid: str | None = None,
) -> list[Dataset]:
    """Single-frame CT datasets for ``volume_hu`` (Z, H, W), slice z at origin + z*dz*normal.

    ``spacing`` is (z, row, col) mm; ``windows`` (center, width, explanation) presets.
    """
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = frame_uid or generate_uid()
    iop = np.asarray(orientation, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    out = []
    for z, hu in enumerate(volume_hu):
        ds = _base(CTImageStorage, study_uid, series_uid, frame_uid, series_number, description)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = z + 1
        ds.ImageOrientationPatient = [float(v) for v in iop]
        pos = np.asarray(origin, dtype=float) + z * spacing[0] * normal
        ds.ImagePositionPatient = [round(float(v), 4) for v in pos]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.RescaleType = "HU"
        ds.KVP = 120
        if windows:
            ds.WindowCenter = [w[0] for w in windows]
            ds.WindowWidth = [w[1] for w in windows]
            ds.WindowCenterWidthExplanation = [w[2] for w in windows]
        ds.Rows, ds.Columns = hu.shape
        ds.PixelData = _stored(hu, slope, intercept).tobytes()
        out.append(ds)
    return out


def make_enhanced_ct(
    volume_hu: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (3.0, 0.9, 0.9),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    slope: float = 2.0,
    intercept: float = -1000.0,
    frame_order: Sequence[int] | None = None,
    windows: tuple[float, float, str] | None = (40.0, 400.0, "SOFT"),
    series_number: int = 7,
) -> Dataset:
    """One enhanced CT multi-frame dataset; ``frame_order[i]`` is the z of stored frame i
    (to check that frames are placed by position, not by frame number)."""
    n = volume_hu.shape[0]
    order = list(frame_order) if frame_order is not None else list(range(n))
    ds = _base(
        EnhancedCTImageStorage,
        generate_uid(),
        generate_uid(),
        generate_uid(),
        series_number,
        "Enhanced CT test",
    )
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    ds.Rows, ds.Columns = volume_hu.shape[1:]
    ds.ContentQualification = "RESEARCH"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.AcquisitionNumber = 1
    ds.AcquisitionDateTime = ds.StudyDate + "120000"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [spacing[1], spacing[2]]
    pm.SliceThickness = spacing[0]
    shared.PixelMeasuresSequence = DicomSequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = list(AXIAL)
    shared.PlaneOrientationSequence = DicomSequence([po])
    pvt = Dataset()
    pvt.RescaleSlope = slope
    pvt.RescaleIntercept = intercept
    pvt.RescaleType = "HU"
    shared.PixelValueTransformationSequence = DicomSequence([pvt])
    if windows:
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth, voi.WindowCenterWidthExplanation = windows
        shared.FrameVOILUTSequence = DicomSequence([voi])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    frames = []
    for z in order:
        item = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [
            float(origin[0]),
            float(origin[1]),
            float(origin[2]) + z * spacing[0],
        ]
        item.PlanePositionSequence = DicomSequence([pp])
        fc = Dataset()
        fc.StackID = "1"
        fc.InStackPositionNumber = z + 1
        item.FrameContentSequence = DicomSequence([fc])
        per_frame.append(item)
        frames.append(_stored(volume_hu[z], slope, intercept))
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.stack(frames).tobytes()
    return ds


def write_datasets(datasets: Sequence[Dataset], folder: Path, prefix: str = "img") -> list[Path]:
    """Save each dataset as ``folder/prefix-NNNN.dcm`` (with the DICM preamble)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        path = folder / f"{prefix}-{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
