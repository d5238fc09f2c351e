"""Predicting a hinted slice: the drawn hints vote beside the model (numpy only, no torch).

A user who drew an ellipse on a slice knows roughly where the structure is; a model trained for a
few minutes on CPU is often less sure than that. On the slices the user hinted, the label of a
pixel is the argmax of ``(1 - w) * p + w * q``: ``p`` the model's class probabilities, ``q`` the
hints' (one-hot of the class whose drawn shape covers the pixel; where no hinted class does, the
model's distribution over the background and the classes not hinted on the slice) and ``w`` the
config's ``hint_weight``. So the drawn shape stands where the model is unsure and the model
corrects it where it is sure: with ``w = 1/3`` the model overrides a hint only where its
probability of another class exceeds the hinted class's by more than 0.5 (3:1 between two
classes).

The hint's bounds are the contract: when the voted labels of a slice break the bounds of a class
hinted on it, the slice gets the drawing (``q``'s argmax) instead. Slices nobody hinted keep the
model's argmax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.bounds import BoundsError, ClassBounds, combine_hints, stack
from models.quality import slice_tallies
from models.regions import drawn_mask
from models.units import Spacing

VOTED = "voted"
DRAWN = "drawn"


def hint_vote(
    proba: np.ndarray,
    hints: Sequence[Sequence[Mapping[str, Any]]],
    fitted: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray | None:
    """The hints' class distribution ``q`` ``(K, H, W)`` float32 of one slice, or None when no
    hint on it draws a shape or marks a class absent.

    ``proba``: the model's ``(K, H, W)`` probabilities; ``hints[k]``: the hints of class ``k``
    on the slice (index 0, the background, is never hinted); several authors' shapes count
    where they all agree. ``fitted``: per class the drawn shape fitted to the image
    (``models.fitting``, ``(H, W)`` bool), voting in place of the drawing.
    """
    k, h, w = proba.shape
    drawn: dict[int, np.ndarray] = {}
    for c in range(1, min(k, len(hints))):
        masks = [m for m in (drawn_mask(hint, (h, w)) for hint in hints[c]) if m is not None]
        if masks:
            drawn[c] = np.logical_and.reduce(masks)
            if fitted is not None and c in fitted:
                drawn[c] = fitted[c]
    if not drawn:
        return None
    q = np.array(proba, dtype=np.float32, copy=True)
    hinted = sorted(drawn)
    q[hinted] = 0.0
    covered = np.zeros((h, w), bool)
    for c in hinted:  # overlapping shapes: the later class is drawn on top, as on screen
        q[:, drawn[c]] = 0.0
        q[c, drawn[c]] = 1.0
        covered |= drawn[c]
    rest = ~covered
    total = q[:, rest].sum(0)
    left = np.where(total > 0, total, 1.0)
    q[:, rest] = q[:, rest] / left
    q[0, rest] = np.where(total > 0, q[0, rest], 1.0)  # nothing else left: background
    return q


def hint_bounds(
    hints: Sequence[Sequence[Mapping[str, Any]]],
    names: Sequence[str],
    shape: tuple[int, int],
    spacing: Spacing | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The bounds ``(K, M)`` (px) the hints of one slice set, several authors' intersected;
    ``names[k - 1]`` names class ``k``. A class whose hints cannot be combined is left
    unconstrained (the training job reports those)."""
    per_class: list[ClassBounds | None] = [None]
    for c, name in enumerate(names, start=1):
        try:
            cb = combine_hints(
                name, hints[c] if c < len(hints) else (), spacing=spacing, shape=shape
            )
        except BoundsError:
            cb = None
        per_class.append(cb)
    return stack(per_class)


def refine_labels(
    proba: np.ndarray,
    hints: Sequence[Sequence[Mapping[str, Any]]],
    weight: float,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    fitted: Mapping[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, str] | None:
    """``(labels (H, W) uint8, how)`` of one hinted slice: the argmax of ``(1 - weight) * proba
    + weight * hint_vote(proba, hints)`` (``how`` = ``VOTED``), or the drawing when those labels
    break ``bounds`` ``(lo, hi)`` ``(K, M)`` (px) for a class hinted on the slice (``DRAWN``).
    None when ``weight`` is 0 or no hint votes (the model's argmax stands). ``fitted``: as in
    :func:`hint_vote`."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"hint weight must be in [0, 1], got {weight:g}")
    q = hint_vote(proba, hints, fitted) if weight > 0 else None
    if q is None:
        return None
    labels = np.asarray(((1.0 - weight) * proba + weight * q).argmax(0), dtype=np.uint8)
    if bounds is not None:
        lo, hi = bounds
        tallies = slice_tallies(labels, lo, hi)
        if any(t.hinted_slices and not t.meeting_bounds for t in tallies):
            return np.asarray(q.argmax(0), dtype=np.uint8), DRAWN
    return labels, VOTED
