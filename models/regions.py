"""Pixels a drawn hint is sure about (numpy only, no torch).

A drawn ellipse says more than its moments: with tolerance ``t`` (the annotator's boundary
uncertainty, relative to each semi-axis, as in ``models.bounds.from_ellipse``) the structure's
boundary lies between the ellipse shrunk by ``1 - t`` and grown by ``1 + t``. So the shrunken
core is almost surely inside the class and everything beyond the grown ellipse almost surely
outside it. A ring (ellipse + hole) is sure inside between the shrunken outer and the grown
hole, and sure outside beyond the grown outer and inside the shrunken hole. A class marked
absent is sure outside everywhere.

The trainer turns these maps into a partial cross-entropy (``models.losses.sure_region_loss``);
pixels no hint is sure about stay unlabelled and are left to the descriptor bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.bounds import DEFAULT_TOLERANCE, Ellipse, hint_shapes

SURE_IN = 1
SURE_OUT = -1
UNKNOWN = 0


def ellipse_mask(shape: tuple[int, int], ell: Ellipse, scale: float = 1.0) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixel centres inside ``ell`` with both semi-axes scaled."""
    cx, cy, a, b, angle = ell
    h, w = shape
    a, b = max(a * scale, 1e-6), max(b * scale, 1e-6)
    y, x = np.ogrid[:h, :w]
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    dx, dy = x - cx, y - cy
    u = (dx * c + dy * s) / a
    v = (-dx * s + dy * c) / b
    return (u * u + v * v) <= 1.0


def hint_regions(
    hint: Mapping[str, Any], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(sure_in, sure_out)`` boolean ``(H, W)`` maps of one class's hint on one slice, or None
    when the hint carries no pixel information (only intervals, a centroid box, ...).

    ``hint``: the hint JSON already accepted by ``models.bounds.parse_hint``.
    """
    if hint.get("present", True) is False:
        return np.zeros(shape, bool), np.ones(shape, bool)
    shapes = hint_shapes("", hint)
    if not shapes:
        return None
    t = float(hint.get("tolerance", DEFAULT_TOLERANCE))
    # Several instances: inside any one's core is sure in, outside all of them is sure out.
    sure_in = np.zeros(shape, bool)
    sure_out = np.ones(shape, bool)
    for outer, hole in shapes:
        core = ellipse_mask(shape, outer, 1.0 - t)
        beyond = ~ellipse_mask(shape, outer, 1.0 + t)
        if hole is not None:
            core &= ~ellipse_mask(shape, hole, 1.0 + t)
            beyond |= ellipse_mask(shape, hole, 1.0 - t)
        sure_in |= core
        sure_out &= beyond
    return sure_in, sure_out


def drawn_mask(hint: Mapping[str, Any], shape: tuple[int, int]) -> np.ndarray | None:
    """Boolean ``(H, W)`` map of the pixels a hint draws as its class (every instance; a ring
    without its hole; nothing for a class marked absent), or None when it draws no shape."""
    if hint.get("present", True) is False:
        return np.zeros(shape, bool)
    shapes = hint_shapes("", hint)
    if not shapes:
        return None
    out = np.zeros(shape, bool)
    for outer, hole in shapes:
        inside = ellipse_mask(shape, outer)
        if hole is not None:
            inside &= ~ellipse_mask(shape, hole)
        out |= inside
    return out


def sure_map(
    per_class: Sequence[Sequence[Mapping[str, Any]]],
    shape: tuple[int, int],
    fitted: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray | None:
    """Per-class sure regions ``(K, H, W)`` int8 (``SURE_IN`` / ``SURE_OUT`` / ``UNKNOWN``) of
    one slice, or None when no hint on it says anything about pixels.

    ``per_class``: for each class including the background (index 0, never hinted) the hints
    given for it on this slice (several authors: a pixel is sure only where all agree).
    ``fitted``: per class a drawn shape fitted to the image (``models.fitting``, ``(H, W)``
    bool, holding the class's sure core and none of its sure outside): its pixels are taken as
    the class and the rest of the band as not the class.
    """
    out = np.zeros((len(per_class), *shape), dtype=np.int8)
    any_info = False
    for k, hints in enumerate(per_class):
        regions = [r for r in (hint_regions(h, shape) for h in hints) if r is not None]
        if not regions:
            continue
        any_info = True
        sure_in = np.logical_and.reduce([r[0] for r in regions])
        sure_out = np.logical_and.reduce([r[1] for r in regions])
        out[k][sure_out] = SURE_OUT
        out[k][sure_in & ~sure_out] = SURE_IN
        if fitted is not None and k in fitted:
            out[k] = np.where(fitted[k], SURE_IN, SURE_OUT)
    # A pixel claimed by two classes' cores is sure of neither.
    claimed = (out == SURE_IN).sum(0) > 1
    out[:, claimed] = np.where(out[:, claimed] == SURE_IN, UNKNOWN, out[:, claimed])
    return out if any_info else None
