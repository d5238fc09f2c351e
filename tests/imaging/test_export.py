"""Exports of label maps: NIfTI keeps the affine, PNG keeps label values, DICOM SEG is valid and
matches the label map, zips are safe."""

from __future__ import annotations

import gzip
import io
import random
import zipfile
from pathlib import Path

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from api.imaging.errors import ExportError
from api.imaging.export import (
    export_file_name,
    safe_member_name,
    to_dicom_seg_bytes,
    to_nifti_bytes,
    to_png_bytes,
    zip_bytes,
)
from api.imaging.importer import import_uploads
from tests.imaging.dicom_factory import make_ct_series, make_enhanced_ct, write_datasets
from tests.imaging.test_nifti_raster import AFFINE

CLASSES = ["left ventricle", "myocardium", "never predicted"]


def _labels(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    z, h, w = shape
    labels[1 : z - 1, h // 4 : h // 2, w // 4 : w // 2] = 1
    labels[2, h // 2 :, w // 2 :] = 2
    labels[3] = np.where(rng.random((h, w)) < 0.2, 2, labels[3])
    return labels  # class 3 absent on purpose


@pytest.mark.parametrize("compress", [True, False])
def test_nifti_export_keeps_affine_and_orientation(tmp_path: Path, limits, compress) -> None:
    arr = np.random.default_rng(0).random((9, 7, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(arr, AFFINE), tmp_path / "v.nii.gz")
    [image] = import_uploads([("v.nii.gz", tmp_path / "v.nii.gz")], limits)
    labels = (image.data[:, 0] > 0.5).astype(np.uint8)
    out = to_nifti_bytes(labels, image, compress=compress)
    raw = gzip.decompress(out) if compress else out
    back = nib.Nifti1Image.from_bytes(raw)
    np.testing.assert_allclose(back.affine, AFFINE, atol=1e-5)
    np.testing.assert_allclose(back.get_sform(), AFFINE, atol=1e-5)  # qform cannot shear
    assert back.get_data_dtype() == np.uint8
    # Same voxel grid as the source: label == (source > 0.5) voxel by voxel in NIfTI order.
    np.testing.assert_array_equal(np.asarray(back.dataobj), (arr > 0.5).astype(np.uint8))


def test_nifti_export_of_dicom_matches_positions(ct_series, limits) -> None:
    paths, datasets, _ = ct_series
    [image] = import_uploads([(p.name, p) for p in paths], limits)
    labels = _labels(image.label_shape)
    back = nib.Nifti1Image.from_bytes(gzip.decompress(to_nifti_bytes(labels, image)))
    ipp = np.array([float(v) for v in datasets[4].ImagePositionPatient])
    ras = back.affine @ np.array([0, 0, 4, 1.0])
    np.testing.assert_allclose(ras[:3], ipp * [-1, -1, 1], atol=1e-3)
    # Rotation without shear: the qform (read by some viewers) agrees with the sform.
    np.testing.assert_allclose(back.get_qform(), back.get_sform(), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(back.dataobj)[:, :, 2], labels[2].T)


def test_nifti_export_shape_mismatch(ct_series, limits) -> None:
    paths, _, _ = ct_series
    [image] = import_uploads([(p.name, p) for p in paths], limits)
    with pytest.raises(ExportError, match="does not match the image"):
        to_nifti_bytes(np.zeros((1, 20, 14), np.uint8), image)
    with pytest.raises(ExportError, match="uint8"):
        to_nifti_bytes(np.zeros(image.label_shape, np.int64), image)


@pytest.mark.parametrize("colour", [False, True])
def test_png_export_keeps_label_values(colour: bool) -> None:
    labels = _labels((5, 12, 10))
    img = Image.open(io.BytesIO(to_png_bytes(labels, 2, colour=colour)))
    assert img.mode == ("P" if colour else "L")
    np.testing.assert_array_equal(np.asarray(img), labels[2])
    if colour:
        rgb = np.asarray(img.convert("RGB"))
        assert (rgb[labels[2] == 0] == 0).all()
        assert len({tuple(c) for c in rgb[labels[2] == 1]}) == 1
        assert not (rgb[labels[2] == 1] == rgb[labels[2] == 2][0]).all()
    with pytest.raises(ExportError, match="slice 5 is outside"):
        to_png_bytes(labels, 5)


def _read_seg(data: bytes) -> hd.seg.Segmentation:
    return hd.seg.segread(io.BytesIO(data))


@pytest.mark.parametrize("seg_type", ["binary", "labelmap"])
def test_dicom_seg_matches_labels(ct_series, limits, seg_type: str) -> None:
    paths, datasets, _ = ct_series
    shuffled = paths[:]
    random.Random(1).shuffle(shuffled)
    [image] = import_uploads([(p.name, p) for p in shuffled], limits)
    labels = _labels(image.label_shape)
    sources = [p.read_bytes() for p in shuffled]  # as the API holds them: blobs, any order
    seg = _read_seg(
        to_dicom_seg_bytes(labels, sources, CLASSES, canonical=image, segmentation_type=seg_type)
    )
    # Binary SEG and the newer Label Map SEG are different SOP classes.
    assert (
        seg.SOPClassUID
        == {"binary": "1.2.840.10008.5.1.4.1.1.66.4", "labelmap": "1.2.840.10008.5.1.4.1.1.66.7"}[
            seg_type
        ]
    )
    assert seg.SegmentationType == seg_type.upper()
    by_number = {int(s.SegmentNumber): s.SegmentLabel for s in seg.SegmentSequence}
    # A label map SEG also describes segment 0 (highdicom names it "Background").
    assert {k: v for k, v in by_number.items() if k > 0} == dict(enumerate(CLASSES, start=1))
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == datasets[0].SeriesInstanceUID
    assert seg.StudyInstanceUID == datasets[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
    assert seg.SeriesInstanceUID != datasets[0].SeriesInstanceUID
    uids = [str(d.SOPInstanceUID) for d in datasets]  # slice order
    got = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, combine_segments=True, skip_overlap_checks=True
    )
    np.testing.assert_array_equal(got, labels)


def test_dicom_seg_all_background(ct_series, limits) -> None:
    paths, datasets, _ = ct_series
    [image] = import_uploads([(p.name, p) for p in paths], limits)
    labels = np.zeros(image.label_shape, np.uint8)
    seg = _read_seg(to_dicom_seg_bytes(labels, paths, CLASSES[:1], canonical=image))
    assert [s.SegmentLabel for s in seg.SegmentSequence] == CLASSES[:1]
    got = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(d.SOPInstanceUID) for d in datasets], combine_segments=True
    )
    assert got.shape == labels.shape and not got.any()


def test_dicom_seg_of_multiframe_source(tmp_path: Path, limits) -> None:
    vol = np.zeros((5, 12, 10))
    ds = make_enhanced_ct(vol, frame_order=[3, 0, 4, 1, 2])
    [path] = write_datasets([ds], tmp_path)
    [image] = import_uploads([("mf.dcm", path)], limits)
    labels = _labels(image.label_shape, seed=3)
    seg = _read_seg(to_dicom_seg_bytes(labels, [path], CLASSES, canonical=image))
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ds.SeriesInstanceUID
    for z, frame in enumerate((2, 4, 5, 1, 3)):
        got = seg.get_pixels_by_source_frame(
            source_sop_instance_uid=ds.SOPInstanceUID,
            source_frame_numbers=[frame],
            combine_segments=True,
            assert_missing_frames_are_empty=True,
        )
        np.testing.assert_array_equal(got[0], labels[z])


# Type 2 (and a few type 3) attributes that anonymisers drop; highdicom reads several of them.
STRIPPED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "SeriesTime",
    "ContentDate",
    "ContentTime",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyID",
    "SeriesNumber",
    "InstanceNumber",
    "SeriesDescription",
    "Manufacturer",
    "PositionReferenceIndicator",
)


def test_dicom_seg_of_a_series_stripped_of_type2_attributes(tmp_path: Path, limits) -> None:
    """Issue 11 (6): "'FileDataset' object has no attribute 'PatientBirthDate'" before."""
    datasets = make_ct_series(np.zeros((4, 12, 10)), spacing=(2.0, 0.8, 0.8))
    for ds in datasets:
        for key in STRIPPED:
            if key in ds:
                delattr(ds, key)
    paths = write_datasets(datasets, tmp_path / "stripped")
    [image] = import_uploads([(p.name, p) for p in paths], limits)
    labels = _labels(image.label_shape, seed=2)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    seg = _read_seg(to_dicom_seg_bytes(labels, sources, CLASSES, canonical=image))
    # Unknown values stay empty (DICOM's "unknown"), and the caller's datasets are untouched.
    assert seg.PatientID == "" and seg.PatientBirthDate == "" and seg.StudyDate == ""
    assert seg.StudyInstanceUID == datasets[0].StudyInstanceUID
    assert all("PatientBirthDate" not in ds and "StudyID" not in ds for ds in sources)
    got = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(d.SOPInstanceUID) for d in datasets],
        combine_segments=True,
        skip_overlap_checks=True,
    )
    np.testing.assert_array_equal(got, labels)


def test_dicom_seg_refused_for_other_sources(tmp_path: Path, limits) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    [image] = import_uploads([("a.png", tmp_path / "a.png")], limits)
    with pytest.raises(
        ExportError, match=r"DICOM SEG needs a DICOM source; image 'a\.png' came from raster"
    ):
        to_dicom_seg_bytes(np.zeros((1, 4, 4), np.uint8), [], ["x"], canonical=image)


def test_dicom_seg_errors(ct_series, limits) -> None:
    paths, _, _ = ct_series
    [image] = import_uploads([(p.name, p) for p in paths], limits)
    labels = _labels(image.label_shape)
    with pytest.raises(ExportError, match="label value 2 has no class"):
        to_dicom_seg_bytes(labels, paths, ["only one"], canonical=image)
    with pytest.raises(ExportError, match="1 source DICOM instance"):
        to_dicom_seg_bytes(labels, paths[1:], CLASSES, canonical=image)


def test_zip_bytes_and_names() -> None:
    data = zip_bytes([("a.png", b"1"), ("a.png", b"2"), ("dir/b.nii.gz", b"3")])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["a.png", "a-2.png", "dir/b.nii.gz"]
        assert zf.read("a-2.png") == b"2"
    for bad in ("../x", "/etc/x", ""):
        with pytest.raises(ExportError, match="unsafe zip member"):
            zip_bytes([(bad, b"")])
    assert safe_member_name("../../etc/pa ss<wd>") == "pa ss_wd_"
    assert safe_member_name("..") == "image"
    assert export_file_name("scan 1.nii.gz", "dicom-seg") == "scan 1_seg.dcm"
    assert export_file_name("CT: Arterial/phase", "nifti") == "phase_labels.nii.gz"
