"""Dice and 95th-percentile Hausdorff distance per class, for 2D slices and 3D volumes.

Hand-written on scipy's exact Euclidean distance transform rather than MONAI: importing MONAI
takes several seconds, and these two metrics are a few lines (same definitions: HD95 is the
maximum of the two directed 95th percentiles of surface-to-surface distances, in mm).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def dice(pred: np.ndarray, ref: np.ndarray, num_classes: int) -> dict[int, float]:
    """Dice per foreground class ``1..K-1`` of label maps ``(H, W)`` or ``(Z, H, W)``.

    ``num_classes`` includes the background. A class absent from both maps scores 1.0.
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs ref {ref.shape}")
    out: dict[int, float] = {}
    for k in range(1, num_classes):
        p, r = pred == k, ref == k
        denom = int(p.sum()) + int(r.sum())
        out[k] = 1.0 if denom == 0 else 2.0 * int(np.logical_and(p, r).sum()) / denom
    return out


def _surface(m: np.ndarray) -> np.ndarray:
    return m & ~ndimage.binary_erosion(m, border_value=0)


def hd95(
    pred: np.ndarray,
    ref: np.ndarray,
    num_classes: int,
    spacing: Sequence[float] | None = None,
) -> dict[int, float]:
    """95th-percentile symmetric Hausdorff distance per foreground class, in mm.

    ``spacing``: ``(row_mm, col_mm)`` or ``(z_mm, row_mm, col_mm)`` (default 1 = px). A class
    absent from both maps scores 0.0; present in only one, NaN (undefined).
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"shape mismatch: pred {pred.shape} vs ref {ref.shape}")
    sp = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * pred.ndim
    if len(sp) != pred.ndim:
        raise ValueError(f"spacing {sp} does not match {pred.ndim}D maps")
    out: dict[int, float] = {}
    for k in range(1, num_classes):
        p, r = pred == k, ref == k
        if not p.any() and not r.any():
            out[k] = 0.0
            continue
        if not p.any() or not r.any():
            out[k] = math.nan
            continue
        sp_surf, sr_surf = _surface(p), _surface(r)
        d_to_r = ndimage.distance_transform_edt(~sr_surf, sampling=sp)
        d_to_p = ndimage.distance_transform_edt(~sp_surf, sampling=sp)
        out[k] = float(max(np.percentile(d_to_r[sp_surf], 95), np.percentile(d_to_p[sr_surf], 95)))
    return out
