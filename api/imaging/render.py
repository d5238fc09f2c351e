"""Slice rendering: one canonical slice -> 8-bit PNG with window/level."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from api.imaging.canonical import CanonicalImage, robust_window
from api.imaging.errors import ImagingError, SliceOutOfRangeError


def window_to_uint8(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map ``values`` linearly so ``center - width/2 -> 0`` and ``center + width/2 -> 255``."""
    if not width > 0:
        raise ImagingError(f"window width must be > 0, got {width}")
    lo = center - width / 2.0
    scaled = (values.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / width)
    return np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).astype(np.uint8)


def default_window(
    image: CanonicalImage | np.ndarray, slice_chw: np.ndarray
) -> tuple[float, float]:
    """First DICOM preset, else for RGB 8-bit data the identity window, else robust
    0.5-99.5 percentile min-max of the slice."""
    if isinstance(image, CanonicalImage) and image.windows:
        first = image.windows[0]
        return float(first["center"]), float(first["width"])
    if slice_chw.shape[0] == 3 and slice_chw.min() >= 0 and slice_chw.max() <= 255:
        return 127.5, 255.0
    return robust_window(slice_chw)


@dataclass(frozen=True)
class RenderedSlice:
    """An 8-bit PNG and the window (centre, width in data units) it was rendered with."""

    png: bytes
    center: float
    width: float


def render_slice_png(
    image: CanonicalImage | np.ndarray,
    z: int = 0,
    wc: float | None = None,
    ww: float | None = None,
) -> bytes:
    """PNG bytes of :func:`render_slice` (same arguments)."""
    return render_slice(image, z, wc, ww).png


def render_slice(
    image: CanonicalImage | np.ndarray,
    z: int = 0,
    wc: float | None = None,
    ww: float | None = None,
) -> RenderedSlice:
    """8-bit PNG (grey ``L`` or ``RGB``) of slice ``z``.

    ``image``: a canonical image, a volume ``(Z, C, H, W)`` or a slice ``(C, H, W)`` (then z
    must be 0). ``wc``/``ww``: window center/width in data units (e.g. HU); each defaults to the
    default window's value (see :func:`default_window`).
    """
    data = image.data if isinstance(image, CanonicalImage) else np.asarray(image)
    if data.ndim == 3:
        data = data[None]
    if data.ndim != 4 or data.shape[1] not in (1, 3):
        raise ImagingError(f"expected (Z, C, H, W) or (C, H, W) with C 1 or 3, got {data.shape}")
    if not 0 <= z < data.shape[0]:
        raise SliceOutOfRangeError(f"slice {z} is outside 0..{data.shape[0] - 1}")
    sl = np.asarray(data[z])
    if wc is None or ww is None:
        dc, dw = default_window(image, sl)
        wc = dc if wc is None else wc
        ww = dw if ww is None else ww
    pixels = window_to_uint8(sl, float(wc), float(ww))
    pil = (
        Image.fromarray(pixels[0], "L")
        if pixels.shape[0] == 1
        else Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)), "RGB")
    )
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)  # speed over size: rendered on every request
    return RenderedSlice(buf.getvalue(), float(wc), float(ww))
