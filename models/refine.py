"""Predicting a hinted slice: the drawn hints vote beside the model (numpy only, no torch).

A user who drew an ellipse on a slice knows roughly where the structure is; a model trained for a
few minutes on CPU is often less sure than that. On the slices the user hinted, the label of a
pixel is the argmax of ``(1 - w) * p + w * q``: ``p`` the model's class probabilities, ``q`` the
hints' (one-hot of the class whose drawn shape covers the pixel; where no hinted class does, the
model's distribution over the background and the classes not hinted on the slice) and ``w`` the
config's ``hint_weight``. So the drawn shape stands where the model is unsure and the model
corrects it where it is sure: with ``w = 1/3`` the model overrides a hint only where its
probability of another class exceeds the hinted class's by more than 0.5 (3:1 between two
classes). Slices nobody hinted keep the model's argmax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.regions import drawn_mask


def hint_vote(proba: np.ndarray, hints: Sequence[Sequence[Mapping[str, Any]]]) -> np.ndarray | None:
    """The hints' class distribution ``q`` ``(K, H, W)`` float32 of one slice, or None when no
    hint on it draws a shape or marks a class absent.

    ``proba``: the model's ``(K, H, W)`` probabilities; ``hints[k]``: the hints of class ``k``
    on the slice (index 0, the background, is never hinted); several authors' shapes count
    where they all agree.
    """
    k, h, w = proba.shape
    drawn: dict[int, np.ndarray] = {}
    for c in range(1, min(k, len(hints))):
        masks = [m for m in (drawn_mask(hint, (h, w)) for hint in hints[c]) if m is not None]
        if masks:
            drawn[c] = np.logical_and.reduce(masks)
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


def refine_labels(
    proba: np.ndarray, hints: Sequence[Sequence[Mapping[str, Any]]], weight: float
) -> np.ndarray | None:
    """Labels ``(H, W)`` uint8 of one hinted slice: argmax of ``(1 - weight) * proba + weight *
    hint_vote(proba, hints)``; None when ``weight`` is 0 or no hint votes (the model's argmax
    stands)."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"hint weight must be in [0, 1], got {weight:g}")
    q = hint_vote(proba, hints) if weight > 0 else None
    if q is None:
        return None
    return np.asarray(((1.0 - weight) * proba + weight * q).argmax(0), dtype=np.uint8)
