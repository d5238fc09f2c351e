"""Seeded synthetic cardiac-like images with known masks (numpy only; tests and the demo).

Classes (1-based labels, in this order): LV = bright disk, Myo = dark ring around it,
RV = mid-grey crescent beside the ring. Images are blurred and noisy, intensities in [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("LV", "Myo", "RV")
"""Names of the foreground classes; label k (1-based) is ``CLASS_NAMES[k - 1]``."""

_INTENSITY = {0: 0.25, 1: 0.85, 2: 0.45, 3: 0.65}


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a ``(H, W)`` array with edge padding."""
    if sigma <= 0:
        return img
    r = max(1, math.ceil(3 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    p = np.pad(img, r, mode="edge")
    p = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 0, p)
    p = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), 1, p)
    return p


def make_sample(
    rng: np.random.Generator, size: int = 64, num_classes: int = 3, noise: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """One image ``(1, size, size)`` float32 in [0, 1] and its label map ``(size, size)`` uint8.

    ``num_classes``: foreground classes drawn (1 = LV, 2 = LV + Myo, 3 = LV + Myo + RV).
    """
    if not 1 <= num_classes <= len(CLASS_NAMES):
        raise ValueError(f"num_classes must be 1..{len(CLASS_NAMES)}, got {num_classes}")
    s = float(size)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    r_lv = s * rng.uniform(0.09, 0.14)
    ring = s * rng.uniform(0.06, 0.09)
    r_myo = r_lv + ring
    margin = r_myo + (s * 0.22 if num_classes >= 3 else s * 0.05)
    cx = rng.uniform(margin, s - 1 - margin) if margin < s / 2 else s / 2
    cy = rng.uniform(margin, s - 1 - margin) if margin < s / 2 else s / 2
    # Slight ellipticity makes orientation meaningful.
    stretch = rng.uniform(0.85, 1.15)
    theta = rng.uniform(0, math.pi)
    u = (xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)
    v = -(xs - cx) * math.sin(theta) + (ys - cy) * math.cos(theta)
    rad = np.sqrt((u * stretch) ** 2 + (v / stretch) ** 2)
    mask = np.zeros((size, size), dtype=np.uint8)
    if num_classes >= 3:
        phi = rng.uniform(0, 2 * math.pi)
        off = r_myo + s * rng.uniform(0.02, 0.05)
        rcx, rcy = cx + off * math.cos(phi), cy + off * math.sin(phi)
        r_rv = r_myo * rng.uniform(1.0, 1.3)
        rv = ((xs - rcx) ** 2 + (ys - rcy) ** 2 <= r_rv**2) & (rad > r_myo + 1.5)
        mask[rv] = 3
    if num_classes >= 2:
        mask[rad <= r_myo] = 2
    mask[rad <= r_lv] = 1
    img = np.vectorize(_INTENSITY.get)(mask).astype(np.float64)
    img += 0.05 * np.sin(xs / s * rng.uniform(2, 6) + rng.uniform(0, 6)) * np.cos(ys / s * 3)
    img = _blur(img, rng.uniform(0.6, 1.2))
    img += rng.normal(0.0, noise, img.shape)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    return img[None], mask


def make_dataset(
    n: int, size: int = 64, num_classes: int = 3, seed: int = 0, noise: float = 0.05
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` seeded samples ``(image (1, size, size) float32, mask (size, size) uint8)``.

    ``num_classes`` counts foreground classes (1..3); masks hold labels 0..num_classes.
    """
    rng = np.random.default_rng(seed)
    return [make_sample(rng, size, num_classes, noise) for _ in range(n)]


def make_hints(
    mask: np.ndarray,
    num_classes: int,
    *,
    seed: int = 0,
    rel: tuple[float, float] = (0.1, 0.2),
    class_names: tuple[str, ...] = CLASS_NAMES,
) -> dict[str, dict[str, Any]]:
    """Hint JSON (docs/interfaces.md) an annotator might give for a known label map.

    Size in ``[S (1 - u1), S (1 + u2)]`` and centroid within ``u * D`` px per axis (D = the
    diameter of a disk of area S), with ``u1, u2, u ~ U(rel)`` so the truth is not centred;
    absent classes get ``{"present": false}``. ``num_classes`` counts foreground classes.
    """
    rng = np.random.default_rng(seed)
    hints: dict[str, dict[str, Any]] = {}
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    for k in range(1, num_classes + 1):
        m = mask == k
        area = float(m.sum())
        if area == 0:
            hints[class_names[k - 1]] = {"present": False}
            continue
        cx, cy = float(xs[m].mean()), float(ys[m].mean())
        d = 2.0 * math.sqrt(area / math.pi)
        lo_u, hi_u = rng.uniform(*rel, size=2)
        box = []
        for c in (cx, cy):
            a, b = rng.uniform(*rel, size=2) * d
            box.append([round(float(c - max(a, 1.0)), 2), round(float(c + max(b, 1.0)), 2)])
        hints[class_names[k - 1]] = {
            "present": True,
            "unit": "px",
            "size": [round(float(area * (1 - lo_u)), 1), round(float(area * (1 + hi_u)), 1)],
            "centroid": {"x": box[0], "y": box[1]},
        }
    return hints
