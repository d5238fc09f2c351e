"""DICOM import: grouping by series, ordering along the normal, rescale, spacing, presets,
multi-frame, zips."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from api.imaging.canonical import ImportLimits
from api.imaging.errors import ImageImportError
from api.imaging.importer import import_uploads
from tests.imaging.conftest import OBLIQUE
from tests.imaging.dicom_factory import make_ct_series, make_enhanced_ct, write_datasets


def _uploads(paths: list[Path]) -> list[tuple[str, Path]]:
    return [(p.name, p) for p in paths]


def test_shuffled_series_is_ordered_along_normal_and_rescaled(ct_series, limits) -> None:
    paths, datasets, volume = ct_series
    shuffled = paths[:]
    random.Random(3).shuffle(shuffled)
    assert shuffled != paths
    [image] = import_uploads(_uploads(shuffled), limits)
    assert image.source_kind == "dicom"
    assert image.shape == (6, 1, 20, 14)
    assert image.data.dtype == np.float32
    # slope 0.5 quantises HU to multiples of 0.5; the fixture holds integers, so exact.
    np.testing.assert_array_equal(image.data[:, 0], volume.astype(np.float32))
    assert image.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert image.modality == "CT"
    assert image.windows == [
        {"name": "SOFT TISSUE", "center": 40.0, "width": 400.0},
        {"name": "LUNG", "center": -600.0, "width": 1500.0},
    ]
    assert image.dicom is not None
    assert image.dicom.sop_instance_uids == tuple(str(d.SOPInstanceUID) for d in datasets)
    assert image.dicom.series_instance_uid == str(datasets[0].SeriesInstanceUID)
    assert set(image.dicom.source_paths) == set(paths)


def test_affine_maps_voxels_to_dicom_positions_in_ras(ct_series, limits) -> None:
    paths, datasets, _ = ct_series
    [image] = import_uploads(_uploads(paths), limits)
    row_dir, col_dir = np.array(OBLIQUE[:3]), np.array(OBLIQUE[3:])
    for z in (0, 5):
        ipp = np.array([float(v) for v in datasets[z].ImagePositionPatient])
        for row, col in ((0, 0), (19, 13), (3, 7)):
            lps = ipp + col * 0.7 * row_dir + row * 0.8 * col_dir
            expected_ras = lps * np.array([-1, -1, 1])
            got = image.affine @ np.array([col, row, z, 1.0])
            np.testing.assert_allclose(got[:3], expected_ras, atol=1e-3)


def test_reversed_positions_still_sort_by_normal(tmp_path: Path, limits) -> None:
    """Instance numbers contradict positions: the position along the normal wins."""
    vol = np.arange(4 * 8 * 8, dtype=float).reshape(4, 8, 8)
    datasets = make_ct_series(vol)
    for i, ds in enumerate(datasets):
        ds.InstanceNumber = 10 - i
    paths = write_datasets(datasets, tmp_path)
    [image] = import_uploads(_uploads(paths[::-1]), limits)
    np.testing.assert_array_equal(image.data[:, 0], vol)


def test_several_series_in_one_zip_each_become_an_image(tmp_path: Path, limits) -> None:
    rng = np.random.default_rng(2)
    vol_a = rng.integers(-500, 500, (3, 10, 12)).astype(float)
    vol_b = rng.integers(-500, 500, (5, 8, 8)).astype(float)
    a = make_ct_series(vol_a, series_number=2, description="Arterial")
    b = make_ct_series(
        vol_b,
        series_number=1,
        description="Plain",
        study_uid=str(a[0].StudyInstanceUID),
        spacing=(1.0, 0.5, 0.5),
    )
    paths = write_datasets(a, tmp_path / "a", "a") + write_datasets(b, tmp_path / "b", "b")
    random.Random(0).shuffle(paths)
    zpath = tmp_path / "upload.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for i, p in enumerate(paths):
            zf.write(p, f"study/{i:03d}")  # no extension: detection is by content
        zf.writestr("study/README.txt", "not an image")
        zf.writestr("__MACOSX/._junk", b"\x00\x05\x16\x07")
    work = tmp_path / "work"
    work.mkdir()
    images = import_uploads([("upload.zip", zpath)], limits, work_dir=work)
    assert [im.name for im in images] == ["upload.zip: Plain", "upload.zip: Arterial"]
    np.testing.assert_array_equal(images[0].data[:, 0], vol_b)
    np.testing.assert_array_equal(images[1].data[:, 0], vol_a)
    assert images[0].spacing == pytest.approx((1.0, 0.5, 0.5))
    # Originals for DICOM SEG live in work_dir under generated names.
    for im in images:
        assert im.dicom is not None
        for p in im.dicom.source_paths:
            assert p.is_file() and work in p.parents and "study" not in str(p)


def test_mixed_series_refused_when_one_expected(tmp_path: Path, limits) -> None:
    a = make_ct_series(np.zeros((2, 8, 8)), description="first")
    b = make_ct_series(np.zeros((2, 8, 8)), description="second")
    paths = write_datasets(a + b, tmp_path)
    with pytest.raises(
        ImageImportError, match="expected one image or series but the upload holds 2"
    ):
        import_uploads(_uploads(paths), limits, single_series=True)
    assert len(import_uploads(_uploads(paths), limits)) == 2


def test_multiframe_frames_placed_by_position(tmp_path: Path, limits) -> None:
    rng = np.random.default_rng(4)
    vol = 2 * rng.integers(-400, 400, (5, 12, 10)).astype(float)  # even: exact with slope 2
    ds = make_enhanced_ct(vol, frame_order=[3, 0, 4, 1, 2], spacing=(3.0, 0.9, 0.6))
    [path] = write_datasets([ds], tmp_path)
    [image] = import_uploads([("enhanced.dcm", path)], limits)
    np.testing.assert_array_equal(image.data[:, 0], vol)
    assert image.spacing == pytest.approx((3.0, 0.9, 0.6))
    assert image.windows == [{"name": "SOFT", "center": 40.0, "width": 400.0}]
    assert image.dicom is not None
    assert image.dicom.frame_numbers == (2, 4, 5, 1, 3)


def _rgb_series(frames: np.ndarray, modality: str) -> list[Dataset]:
    """A series of 8-bit RGB datasets, one per ``(H, W, 3)`` frame of ``frames``."""
    datasets = make_ct_series(np.zeros(frames.shape[:3]))
    for ds, frame in zip(datasets, frames, strict=True):
        ds.Modality = modality
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        del ds.RescaleSlope, ds.RescaleIntercept
        ds.PixelData = frame.tobytes()
    return datasets


def test_rgb_dicom_gives_three_channels(tmp_path: Path, limits) -> None:
    rgb = np.random.default_rng(5).integers(0, 255, (6, 5, 3), dtype=np.uint8)
    [path] = write_datasets(_rgb_series(rgb[None], "OT"), tmp_path)
    [image] = import_uploads([("rgb.dcm", path)], limits)
    assert image.shape == (1, 3, 6, 5)
    np.testing.assert_array_equal(image.data[0], rgb.transpose(2, 0, 1))


def test_grey_stored_as_rgb_dicom_gives_one_channel(tmp_path: Path, limits) -> None:
    """Ultrasound and secondary captures often store grey as RGB: the series imports grey
    (``models.channels``), unless one pixel of one frame is coloured."""
    grey = np.random.default_rng(6).integers(0, 255, (2, 6, 5), dtype=np.uint8)
    as_rgb = np.repeat(grey[..., None], 3, axis=-1)
    marked = as_rgb.copy()
    marked[1, 2, 3, 1] = 255 - grey[1, 2, 3]
    for name, rgb in (("grey", as_rgb), ("marked", marked)):
        paths = write_datasets(_rgb_series(rgb, "US"), tmp_path / name)
        [image] = import_uploads([(p.name, p) for p in paths], limits)
        if name == "grey":
            assert image.shape == (2, 1, 6, 5)
            np.testing.assert_array_equal(image.data[:, 0], grey)
        else:
            assert image.shape == (2, 3, 6, 5)
            np.testing.assert_array_equal(image.data[1, 1, 2, 3], 255 - grey[1, 2, 3])


def test_duplicate_positions_refused(tmp_path: Path, limits) -> None:
    datasets = make_ct_series(np.zeros((3, 8, 8)))
    datasets[2].ImagePositionPatient = datasets[1].ImagePositionPatient
    paths = write_datasets(datasets, tmp_path)
    with pytest.raises(ImageImportError, match="same position"):
        import_uploads(_uploads(paths), limits)


def test_series_over_voxel_limit_refused_before_reading_pixels(ct_series) -> None:
    paths, _, _ = ct_series
    tiny = ImportLimits(max_voxels=6 * 20 * 14 - 1)
    with pytest.raises(ImageImportError, match="exceeds the limit"):
        import_uploads(_uploads(paths), tiny)
