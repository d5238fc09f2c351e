"""PNG / JPEG / TIFF (grayscale or RGB) -> a one-slice canonical image (z = 0).

Spacing is 1 mm unless the file states a physical resolution (PNG pHYs, TIFF resolution);
72 and 96 dpi are ignored because editors write them by default, not as a measurement.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from api.imaging.canonical import CanonicalImage, ImportLimits, check_size
from api.imaging.errors import ImageImportError
from models.channels import drop_equal_channels

_DEFAULT_DPI = {72.0, 96.0}


def _spacing_mm(img: Image.Image) -> tuple[float, float]:
    """``(row_mm, col_mm)`` from resolution metadata, else ``(1, 1)``."""
    dpi = img.info.get("dpi")
    if not dpi or len(dpi) != 2:
        return (1.0, 1.0)
    try:
        x_dpi, y_dpi = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError):
        return (1.0, 1.0)
    if x_dpi <= 0 or y_dpi <= 0 or {round(x_dpi), round(y_dpi)} <= _DEFAULT_DPI:
        return (1.0, 1.0)
    return (25.4 / y_dpi, 25.4 / x_dpi)


def _to_array(img: Image.Image) -> np.ndarray:
    """``(C, H, W)`` float32 with C = 1 (grey, or RGB whose channels are equal) or 3 (RGB);
    alpha is dropped."""
    mode = img.mode
    if mode in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img)
        return arr.astype(np.float32)[None]
    if mode == "LA":
        return np.asarray(img.getchannel("L")).astype(np.float32)[None]
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    rgb = np.ascontiguousarray(np.asarray(img).astype(np.float32).transpose(2, 0, 1))
    return drop_equal_channels(rgb)


def load_raster(path: Path, filename: str, limits: ImportLimits) -> CanonicalImage:
    """Canonical ``(1, C, H, W)`` image from a PNG, JPEG or single-page TIFF."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            with img:
                w, h = img.size
                channels = (
                    1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3
                )
                check_size((1, channels, h, w), limits, filename)
                if getattr(img, "n_frames", 1) > 1:
                    raise ImageImportError(
                        f"multi-page image ({img.n_frames} pages) is not supported; upload a "
                        "DICOM series or NIfTI for volumes",
                        filename,
                    )
                spacing = _spacing_mm(img)
                img.load()
                img = ImageOps.exif_transpose(img)
                arr = _to_array(img)
    except ImageImportError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageImportError(f"image too large to decode safely ({exc})", filename) from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError on bad files
        raise ImageImportError(
            f"corrupt or unsupported image ({type(exc).__name__}: {exc})", filename
        ) from exc
    _, h, w = arr.shape
    row_mm, col_mm = spacing
    affine = np.diag([col_mm, row_mm, 1.0, 1.0])
    return CanonicalImage(
        data=arr[None],
        spacing=(1.0, row_mm, col_mm),
        affine=affine,
        modality="OT",
        windows=[],
        source_kind="raster",
        name=filename,
    )
