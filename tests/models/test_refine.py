"""Hinted slices predicted with the hints' vote (models.refine)."""

from __future__ import annotations

import numpy as np
import pytest

from models.refine import DRAWN, VOTED, hint_bounds, hint_vote, refine_labels
from models.regions import drawn_mask, ellipse_mask

SHAPE = (40, 40)
ELLIPSE = {"cx": 20.0, "cy": 20.0, "a": 10.0, "b": 8.0, "angle": 0.0}


def _labels(proba: np.ndarray, hints: list, weight: float) -> np.ndarray:
    out = refine_labels(proba, hints, weight)
    assert out is not None and out[1] == VOTED
    return out[0]


def _proba(fg: np.ndarray) -> np.ndarray:
    """Two classes: background and ``fg`` probability ``(H, W)``."""
    return np.stack([1.0 - fg, fg]).astype(np.float32)


def test_an_unsure_model_keeps_the_drawn_shape_and_a_sure_one_corrects_it() -> None:
    inside = ellipse_mask(SHAPE, (20.0, 20.0, 10.0, 8.0, 0.0))
    hints = [[], [{"ellipse": ELLIPSE}]]
    unsure = _proba(np.full(SHAPE, 0.5))
    assert np.array_equal(_labels(unsure, hints, 1 / 3), inside.astype(np.uint8))
    fg = np.full(SHAPE, 0.5)
    fg[20, 20] = 0.2  # sure it is background (4:1) inside the drawing
    fg[20, 29] = 0.3  # less sure than 3:1: the drawing stands
    fg[20, 33] = 0.8  # sure it is the class outside the drawing
    fg[20, 34] = 0.7  # less sure than 3:1: outside stays background
    labels = _labels(_proba(fg), hints, 1 / 3)
    assert labels[20, 20] == 0 and labels[20, 29] == 1
    assert labels[20, 33] == 1 and labels[20, 34] == 0
    # The two ends: the model alone, the hints alone.
    assert refine_labels(_proba(fg), hints, 0.0) is None  # the model's argmax stands
    assert np.array_equal(_labels(_proba(fg), hints, 1.0), inside.astype(np.uint8))
    with pytest.raises(ValueError, match="hint weight"):
        refine_labels(_proba(fg), hints, 1.5)


def test_classes_not_hinted_keep_the_model_and_absent_ones_are_voted_out() -> None:
    # Three classes: 1 hinted with an ellipse, 2 not hinted on this slice.
    p = np.zeros((3, *SHAPE), np.float32)
    p[0], p[1], p[2] = 0.3, 0.3, 0.4  # the model leans to class 2 everywhere
    labels = _labels(p, [[], [{"ellipse": ELLIPSE}], []], 1 / 3)
    inside = drawn_mask({"ellipse": ELLIPSE}, SHAPE)
    assert (labels[inside] == 1).all() and (labels[~inside] == 2).all()
    q = hint_vote(p, [[], [{"ellipse": ELLIPSE}], []])
    assert q is not None and np.allclose(q.sum(0), 1.0)
    # Class 2 marked absent: the vote goes to the background where nothing is drawn.
    labels = _labels(p, [[], [{"ellipse": ELLIPSE}], [{"present": False}]], 1 / 3)
    assert (labels[~inside] == 0).all()
    # Hints without a drawn shape (intervals only) do not vote.
    assert hint_vote(p, [[], [{"size": [10, 20]}], []]) is None
    assert refine_labels(p, [[], [{"size": [10, 20]}], []], 1 / 3) is None


def test_several_authors_vote_where_they_agree_and_rings_and_instances_draw() -> None:
    moved = {**ELLIPSE, "cx": 24.0}
    q = hint_vote(_proba(np.full(SHAPE, 0.5)), [[], [{"ellipse": ELLIPSE}, {"ellipse": moved}]])
    both = drawn_mask({"ellipse": ELLIPSE}, SHAPE) & drawn_mask({"ellipse": moved}, SHAPE)
    assert q is not None and np.array_equal(q[1] == 1.0, both)
    ring = {"ellipse": ELLIPSE, "hole": {**ELLIPSE, "a": 5.0, "b": 4.0}}
    assert not drawn_mask(ring, SHAPE)[20, 20] and drawn_mask(ring, SHAPE)[20, 28]
    two = {
        "instances": [
            {"ellipse": {**ELLIPSE, "a": 4.0, "b": 4.0}},
            {"ellipse": {**moved, "cx": 34.0, "a": 3.0, "b": 3.0}},
        ]
    }
    m = drawn_mask(two, SHAPE)
    assert m[20, 20] and m[20, 34] and not m[20, 27]


def test_voted_labels_that_break_the_hints_bounds_give_way_to_the_drawing() -> None:
    hints = [[], [{"ellipse": ELLIPSE, "tolerance": 0.2}]]
    bounds = hint_bounds(hints, ["LV"], SHAPE)
    inside = drawn_mask(hints[1][0], SHAPE)
    # A model sure of a blob far bigger than the drawing: voting keeps its extra pixels (it is
    # sure), but that mask breaks the size bound, so the slice gets the drawing.
    fg = np.where(ellipse_mask(SHAPE, (20.0, 20.0, 18.0, 16.0, 0.0)), 0.95, 0.05)
    voted = refine_labels(_proba(fg), hints, 1 / 3)
    assert voted is not None and voted[1] == VOTED and voted[0].sum() > 1.5 * inside.sum()
    drawn = refine_labels(_proba(fg), hints, 1 / 3, bounds)
    assert drawn is not None and drawn[1] == DRAWN
    assert np.array_equal(drawn[0], inside.astype(np.uint8))
    # A model close to the drawing keeps its voted mask.
    near = np.where(ellipse_mask(SHAPE, (20.5, 20.0, 10.5, 8.0, 0.0)), 0.95, 0.05)
    kept = refine_labels(_proba(near), hints, 1 / 3, bounds)
    assert kept is not None and kept[1] == VOTED and not np.array_equal(kept[0], drawn[0])
    # Hints that cannot be combined leave their class unchecked rather than failing.
    lo, hi = hint_bounds([[], [{"size": [10, 20]}, {"size": [30, 40]}]], ["LV"], SHAPE)
    assert np.isinf(lo[1]).all() and np.isinf(hi[1]).all()
