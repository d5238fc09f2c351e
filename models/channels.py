"""Grey pictures saved with three channels are grey.

Viewers, screenshots and many exporters write a grey image as RGB (three equal channels), and
JPEG stores grey that way more often than not. Counted as colour, such an image would train a
network on three copies of one channel and take the colour images' recipe
(``models.budget.default_for`` reads ``ProjectFacts.channels``); so imports keep one.
"""

from __future__ import annotations

import numpy as np

GREY_LEVELS = 255.0
"""Channels that differ by at most one part in this many of the image's value range are equal
(the rounding a converter's colour transform leaves on grey)."""


def drop_equal_channels(image: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` whose channels are equal (within :data:`GREY_LEVELS`) -> ``(1, H, W)``,
    their mean; any other ``(C, H, W)`` unchanged. Same dtype and units as given."""
    if image.ndim != 3 or image.shape[0] != 3:
        return image
    tolerance = float(np.ptp(image)) / GREY_LEVELS
    first = image[0]
    if any(float(np.abs(image[c] - first).max()) > tolerance for c in (1, 2)):
        return image
    return image.mean(axis=0, keepdims=True, dtype=np.float64).astype(image.dtype)
