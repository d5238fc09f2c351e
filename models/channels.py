"""Grey pictures saved with three channels are grey.

Viewers, screenshots and many exporters write a grey image as RGB (three equal channels), and
JPEG stores grey that way more often than not. Counted as colour, such an image would train a
network on three copies of one channel and take the colour images' recipe
(``models.budget.default_for`` reads ``ProjectFacts.channels``); so imports keep one: rasters,
the CLI's files and DICOM series (ultrasound and secondary captures are often grey stored as
RGB).
"""

from __future__ import annotations

import numpy as np

GREY_LEVELS = 255.0
"""Channels that differ by at most one part in this many of the image's value range are equal
(the rounding a converter's colour transform leaves on grey)."""


def drop_equal_channels(image: np.ndarray, axis: int = 0) -> np.ndarray:
    """An image whose ``axis`` holds three equal channels (within :data:`GREY_LEVELS`) -> the
    same with one channel there, their mean: ``(3, H, W)`` -> ``(1, H, W)``, or a volume's
    ``(Z, 3, H, W)`` -> ``(Z, 1, H, W)`` with ``axis=1`` (equal on every slice). Anything else
    is returned unchanged. Same dtype and units as given."""
    if image.ndim < 3 or image.shape[axis] != 3:
        return image
    channels = np.moveaxis(image, axis, 0)  # a view
    first = channels[0].astype(np.float32)  # unsigned pixels would wrap when subtracted
    tolerance = float(np.ptp(image)) / GREY_LEVELS
    if any(float(np.abs(channels[c] - first).max()) > tolerance for c in (1, 2)):
        return image
    return image.mean(axis=axis, keepdims=True, dtype=np.float64).astype(image.dtype)
