"""NIfTI (affine kept, 2D/3D) and PNG/JPEG/TIFF (grey, RGB, physical resolution) imports."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from api.imaging.errors import ImageImportError
from api.imaging.importer import import_uploads

AFFINE = np.array(
    [[0.0, -0.9, 0.1, 40.0], [1.2, 0.0, 0.0, -20.0], [0.0, 0.05, 3.0, 7.5], [0, 0, 0, 1]]
)


def _nifti(tmp_path: Path, arr: np.ndarray, name: str, affine: np.ndarray = AFFINE) -> Path:
    img = nib.Nifti1Image(arr, affine)
    path = tmp_path / name
    nib.save(img, path)
    return path


@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
def test_nifti_3d_axes_spacing_and_affine(tmp_path: Path, limits, name: str) -> None:
    arr = np.random.default_rng(0).normal(size=(9, 7, 4)).astype(np.float32)  # (col, row, slice)
    path = _nifti(tmp_path, arr, name)
    upload = tmp_path / "upload.bin"  # the API's temp file has no meaningful suffix
    upload.write_bytes(path.read_bytes())
    [image] = import_uploads([(name, upload)], limits)
    assert image.source_kind == "nifti"
    assert image.name == name
    assert image.shape == (4, 1, 7, 9)
    for i, j, k in ((0, 0, 0), (8, 6, 3), (3, 2, 1)):
        assert image.data[k, 0, j, i] == arr[i, j, k]
    np.testing.assert_allclose(image.affine, AFFINE, atol=1e-6)
    zooms = np.sqrt((AFFINE[:3, :3] ** 2).sum(axis=0))
    assert image.spacing == pytest.approx((zooms[2], zooms[1], zooms[0]), rel=1e-5)


def test_nifti_scaling_applied(tmp_path: Path, limits) -> None:
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)  # (col, row, slice)
    img = nib.Nifti1Image(raw, np.eye(4))
    img.header.set_slope_inter(2.0, -5.0)
    path = tmp_path / "s.nii"
    nib.save(img, path)
    [image] = import_uploads([("s.nii", path)], limits)
    assert image.data[0, 0, 0, 1] == pytest.approx(2.0 * raw[1, 0, 0] - 5.0)
    assert image.data.max() == pytest.approx(2.0 * 23 - 5.0)


def test_nifti_2d_is_one_slice(tmp_path: Path, limits) -> None:
    arr = np.arange(30, dtype=np.float32).reshape(6, 5)
    path = _nifti(tmp_path, arr, "flat.nii.gz", np.diag([0.5, 0.25, 1.0, 1.0]))
    [image] = import_uploads([("flat.nii.gz", path)], limits)
    assert image.shape == (1, 1, 5, 6)
    np.testing.assert_array_equal(image.data[0, 0], arr.T)
    assert image.spacing == pytest.approx((1.0, 0.25, 0.5))


def test_nifti_4d_refused(tmp_path: Path, limits) -> None:
    path = _nifti(tmp_path, np.zeros((4, 4, 3, 2), np.float32), "t.nii")
    with pytest.raises(ImageImportError, match=r"t\.nii: .*more than 3 dimensions"):
        import_uploads([("t.nii", path)], limits)


def test_nifti_4d_with_one_volume_accepted(tmp_path: Path, limits) -> None:
    path = _nifti(tmp_path, np.ones((4, 4, 3, 1), np.float32), "one.nii")
    [image] = import_uploads([("one.nii", path)], limits)
    assert image.shape == (3, 1, 4, 4)


def test_png_grey_and_rgb(tmp_path: Path, limits) -> None:
    grey = np.random.default_rng(1).integers(0, 255, (13, 17), dtype=np.uint8)
    rgb = np.random.default_rng(2).integers(0, 255, (9, 11, 3), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    g, c = import_uploads([("g.png", tmp_path / "g.png"), ("c.png", tmp_path / "c.png")], limits)
    assert g.shape == (1, 1, 13, 17) and g.source_kind == "raster"
    np.testing.assert_array_equal(g.data[0, 0], grey)
    assert c.shape == (1, 3, 9, 11)
    np.testing.assert_array_equal(c.data[0], rgb.transpose(2, 0, 1))
    assert g.spacing == (1.0, 1.0, 1.0)


def test_png_16bit_and_rgba(tmp_path: Path, limits) -> None:
    deep = np.arange(20 * 10, dtype=np.uint16).reshape(20, 10) * 300
    Image.fromarray(deep).save(tmp_path / "d.png")
    rgba = np.random.default_rng(3).integers(0, 255, (4, 6, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    d, a = import_uploads([("d.png", tmp_path / "d.png"), ("a.png", tmp_path / "a.png")], limits)
    np.testing.assert_array_equal(d.data[0, 0], deep.astype(np.float32))
    np.testing.assert_array_equal(a.data[0], rgba[..., :3].transpose(2, 0, 1))


def test_jpeg_rgb_and_grey(tmp_path: Path, limits) -> None:
    yy, xx = np.mgrid[0:32, 0:24]
    smooth = (xx * 8 + yy * 2).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "g.jpg", quality=95)
    Image.fromarray(np.stack([smooth, 255 - smooth, smooth // 2], -1)).save(tmp_path / "c.jpg")
    g, c = import_uploads([("g.jpg", tmp_path / "g.jpg"), ("c.jpg", tmp_path / "c.jpg")], limits)
    assert g.shape == (1, 1, 32, 24) and c.shape == (1, 3, 32, 24)
    assert np.abs(g.data[0, 0] - smooth).mean() < 3  # lossy but close


def test_grey_saved_as_rgb_is_imported_grey(tmp_path: Path, limits) -> None:
    yy, xx = np.mgrid[0:32, 0:24]
    grey = (xx * 8 + yy * 2).astype(np.uint8)
    as_rgb = np.repeat(grey[..., None], 3, axis=-1)
    Image.fromarray(as_rgb).save(tmp_path / "g.png")
    Image.fromarray(as_rgb).save(tmp_path / "g.jpg", quality=90)
    tinted = as_rgb.copy()
    tinted[3, 4, 0] = 255 - tinted[3, 4, 0]  # one coloured pixel (a burnt-in marker)
    Image.fromarray(tinted).save(tmp_path / "t.png")
    uploads = [(n, tmp_path / n) for n in ("g.png", "g.jpg", "t.png")]
    png, jpg, marked = import_uploads(uploads, limits)
    assert png.shape == (1, 1, 32, 24) and jpg.shape == (1, 1, 32, 24)
    np.testing.assert_array_equal(png.data[0, 0], grey.astype(np.float32))
    assert np.abs(jpg.data[0, 0] - grey).mean() < 3
    assert marked.shape == (1, 3, 32, 24)
    np.testing.assert_array_equal(marked.data[0], tinted.transpose(2, 0, 1))


def test_tiff_resolution_gives_spacing(tmp_path: Path, limits) -> None:
    arr = np.random.default_rng(4).random((8, 6)).astype(np.float32)
    Image.fromarray(arr, "F").save(tmp_path / "r.tif", dpi=(254.0, 127.0))  # x: 0.1 mm, y: 0.2
    [image] = import_uploads([("r.tif", tmp_path / "r.tif")], limits)
    np.testing.assert_allclose(image.data[0, 0], arr)
    assert image.spacing == pytest.approx((1.0, 0.2, 0.1), rel=1e-3)
    np.testing.assert_allclose(np.diag(image.affine), [0.1, 0.2, 1.0, 1.0], rtol=1e-3)


def test_default_screen_dpi_is_not_a_measurement(tmp_path: Path, limits) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "s.png", dpi=(72, 72))
    [image] = import_uploads([("s.png", tmp_path / "s.png")], limits)
    assert image.spacing == (1.0, 1.0, 1.0)


def test_gzip_of_non_nifti_refused(tmp_path: Path, limits) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"hello world" * 100))
    with pytest.raises(ImageImportError, match="gzip file that does not contain a NIfTI"):
        import_uploads([("x.gz", path)], limits)
