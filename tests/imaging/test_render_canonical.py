"""Window/level rendering and the canonical form's serialisation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from api.imaging.canonical import CanonicalImage, read_volume
from api.imaging.errors import ImagingError, SliceOutOfRangeError
from api.imaging.importer import import_uploads
from api.imaging.render import render_slice_png


def _png(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    return np.asarray(img)


def _image(data: np.ndarray, windows: list | None = None) -> CanonicalImage:
    return CanonicalImage(
        data=data.astype(np.float32),
        spacing=(2.0, 0.5, 0.5),
        affine=np.diag([0.5, 0.5, 2.0, 1.0]),
        modality="CT",
        windows=windows or [],
        source_kind="nifti",
        name="x",
    )


def test_explicit_window_level() -> None:
    row = np.array([-200.0, -160.0, 40.0, 240.0, 1000.0], dtype=np.float32)
    img = _image(np.tile(row, (1, 1, 2, 1)))
    out = _png(render_slice_png(img, 0, wc=40, ww=400))
    np.testing.assert_array_equal(out[0], [0, 0, 127, 255, 255])


def test_default_window_is_first_preset() -> None:
    row = np.array([-160.0, 40.0, 240.0], dtype=np.float32)
    img = _image(np.tile(row, (2, 1, 1, 1)), windows=[{"name": "SOFT", "center": 40, "width": 400}])
    out = _png(render_slice_png(img, 1))
    np.testing.assert_array_equal(out[0], [0, 127, 255])
    # Only ww given: wc still from the preset.
    out = _png(render_slice_png(img, 1, ww=800))
    np.testing.assert_array_equal(out[0], [63, 127, 191])


def test_default_window_robust_to_outliers() -> None:
    data = np.linspace(0, 100, 64 * 64, dtype=np.float32).reshape(1, 1, 64, 64)
    data[0, 0, 0, 0] = 1e6  # one hot pixel must not wash out the image
    out = _png(render_slice_png(data, 0))
    assert out.dtype == np.uint8 and out.shape == (64, 64)
    assert 100 < out[32, 32] < 155
    assert out[0, 0] == 255 and out[0, 1] == 0


def test_rgb_and_chw_array() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (3, 5, 7)).astype(np.float32)
    out = _png(render_slice_png(rgb))
    assert out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, rgb.transpose(1, 2, 0).astype(np.uint8))


def test_render_errors() -> None:
    img = _image(np.zeros((2, 1, 4, 4)))
    with pytest.raises(SliceOutOfRangeError, match=r"slice 2 is outside 0\.\.1"):
        render_slice_png(img, 2)
    with pytest.raises(ImagingError, match="window width must be > 0"):
        render_slice_png(img, 0, wc=0, ww=0)


def test_meta_and_volume_round_trip(ct_series, limits, tmp_path: Path) -> None:
    paths, _, _ = ct_series
    [image] = import_uploads([(p.name, p) for p in paths], limits)
    meta = json.loads(json.dumps(image.to_meta()))
    volume_path = tmp_path / "volume.npy"
    image.write_volume(volume_path)
    for source in (volume_path, image.volume_npy_bytes()):
        back = CanonicalImage.load(meta, source, mmap=isinstance(source, Path))
        np.testing.assert_array_equal(back.data, image.data)
        np.testing.assert_allclose(back.affine, image.affine)
        assert back.spacing == image.spacing and back.windows == image.windows
        assert back.dicom is not None and image.dicom is not None
        assert back.dicom.sop_instance_uids == image.dicom.sop_instance_uids
        assert back.dicom.frame_numbers == image.dicom.frame_numbers
        assert back.name == image.name and back.source_kind == "dicom"


def test_read_volume_refuses_non_canonical_arrays() -> None:
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="not a canonical volume"):
        read_volume(buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        read_volume(buf.getvalue())
