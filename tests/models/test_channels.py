"""Three equal channels are one (models.channels)."""

from __future__ import annotations

import numpy as np

from models.channels import drop_equal_channels


def test_equal_channels_within_one_level_of_the_range_become_their_mean() -> None:
    rng = np.random.default_rng(0)
    grey = rng.uniform(0.0, 1000.0, (1, 8, 9)).astype(np.float32)
    rounded = np.concatenate([grey, grey + 2.0, grey - 2.0])  # 2 < 1000 / 255
    out = drop_equal_channels(rounded)
    assert out.shape == (1, 8, 9) and out.dtype == np.float32
    np.testing.assert_allclose(out, grey, atol=1e-3)


def test_channels_that_differ_anywhere_stay_and_other_shapes_pass() -> None:
    rng = np.random.default_rng(1)
    grey = rng.uniform(0.0, 255.0, (1, 8, 9)).astype(np.float32)
    rgb = np.concatenate([grey, grey, grey])
    rgb[2, 5, 5] += 3.0  # 3 > 255 / 255
    assert drop_equal_channels(rgb) is rgb
    assert drop_equal_channels(grey) is grey
    two = np.concatenate([grey, grey])
    assert drop_equal_channels(two) is two
    flat = np.zeros((3, 4, 4), np.float32)
    assert drop_equal_channels(flat).shape == (1, 4, 4)


def test_unsigned_pixels_and_a_volume_channel_axis() -> None:
    """uint8 channels below the first must not wrap round; ``axis=1`` reads ``(Z, 3, H, W)``."""
    rng = np.random.default_rng(2)
    grey = rng.integers(1, 255, (2, 1, 5, 6)).astype(np.uint8)
    grey[0, 0, 0, :2] = (1, 254)  # the volume spans 0..255, so one level is within tolerance
    volume = np.concatenate([grey, grey - 1, grey + 1], axis=1)
    out = drop_equal_channels(volume, axis=1)
    assert out.shape == (2, 1, 5, 6) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, grey)
    volume[1, 2, 0, 0] = 0 if volume[1, 0, 0, 0] > 9 else 255  # one coloured pixel on slice 1
    assert drop_equal_channels(volume, axis=1) is volume
