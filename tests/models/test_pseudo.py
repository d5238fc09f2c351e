"""Self-training rounds (models.pseudo): when they run, which masks they accept, and that the
trainer learns from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import bounds as B
from models.pseudo import meets_bounds, round_epochs
from models.synthetic import CLASS_NAMES, make_dataset, make_hints
from models.train import Progress, TrainConfig, TrainSample, train


@pytest.mark.parametrize(
    ("epochs", "rounds", "expected"),
    [
        (10, 0, []),
        (10, 1, [5]),
        (10, 2, [5, 8]),
        (3, 3, [2]),
        (1, 2, []),
        (40, 4, [20, 25, 30, 35]),
    ],
)
def test_rounds_spread_over_the_second_half(epochs: int, rounds: int, expected: list[int]) -> None:
    assert round_epochs(epochs, rounds) == expected


def _disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_a_mask_is_accepted_only_where_every_bound_holds() -> None:
    shape = (40, 40)
    inner = _disc(shape, 20, 20, 5)
    outer = _disc(shape, 20, 20, 10)
    labels = np.where(inner, 2, np.where(outer, 1, 0)).astype(np.uint8)  # ring 1 around 2

    def around(mask: np.ndarray, scale: float = 0.1) -> B.ClassBounds:
        cb = B.ClassBounds(present=True)
        area = float(mask.sum())
        return cb.with_interval("size", area * (1 - scale), area * (1 + scale))

    ring, hole, filled = around(labels == 1), around(labels == 2), around(labels > 0)
    no_unions = np.zeros((0, 3))
    lo, hi = B.stack([None, ring, hole])
    assert meets_bounds(labels, lo, hi, no_unions)
    # The ring predicted as its hole's class: class 1 breaks its size bound.
    assert not meets_bounds(np.where(outer, 2, 0).astype(np.uint8), lo, hi, no_unions)
    # A class hinted present but predicted empty is never accepted.
    assert not meets_bounds(np.where(inner, 2, 0).astype(np.uint8), lo, hi, no_unions)
    # A union row is checked on the classes' union.
    union = np.array([[0, 1, 1]])
    lo_u, hi_u = B.stack([None, ring, hole, filled])
    assert meets_bounds(labels, lo_u, hi_u, union)
    too_small = around(labels == 2)  # the union bounded to the hole's size: broken
    lo_s, hi_s = B.stack([None, ring, hole, too_small])
    assert not meets_bounds(labels, lo_s, hi_s, union)
    # Nothing bounded on the slice: no evidence, no pseudo-mask.
    free = B.ClassBounds(present=None)
    lo_f, hi_f = B.stack([None, free, free])
    assert not meets_bounds(labels, lo_f, hi_f, no_unions)


def _samples(n: int, with_masks: int) -> list[TrainSample]:
    out = []
    for i, (img, m) in enumerate(make_dataset(n, 40, 1, seed=3)):
        h = make_hints(m, 1, seed=3000 + i)
        lo, hi = B.stack([None, B.parse_hint(CLASS_NAMES[0], h[CLASS_NAMES[0]], shape=m.shape)])
        out.append(TrainSample(img, lo, hi, m if i < with_masks else None))
    return out


def test_training_takes_its_own_masks_as_targets_from_the_rounds_on(tmp_path: Path) -> None:
    samples = _samples(12, with_masks=4)
    cfg = TrainConfig.from_dict(
        {
            "grid": 32,
            "epochs": 60,
            "batch_size": 4,
            "val_every": 1,
            "progress_every": 1,
            "pseudo_rounds": 2,
        }
    )
    seen: list[Progress] = []
    res = train(samples, 2, cfg, device="cpu", progress=seen.append, out_dir=tmp_path / "a")
    # Rounds after epochs 30 and 45; the term appears from the first step after a round that
    # accepted a mask (early on, argmax masks are often too small for their size bounds).
    first = min(p.epoch for p in seen if "pseudo" in p.terms)
    assert first in (31, 46), first
    assert all("pseudo" not in p.terms for p in seen if p.epoch < 31)
    # Slices with a reference mask keep it: at most the 8 others get a pseudo-mask.
    accepted = res.metrics["pseudo_masks"]
    assert 1 <= accepted <= 8, res.metrics
    # Off by default: no round, no term.
    off = TrainConfig.from_dict({**cfg.to_dict(), "pseudo_rounds": 0})
    seen_off: list[Progress] = []
    res_off = train(samples, 2, off, device="cpu", progress=seen_off.append, out_dir=tmp_path / "b")
    assert "pseudo_masks" not in res_off.metrics
    assert all("pseudo" not in p.terms for p in seen_off)
    # A run resumed after a round takes its pseudo-masks again before the first step.
    stopped_at = {"n": 0}

    def stop() -> bool:
        stopped_at["n"] += 1
        return stopped_at["n"] > 3 * 47 + 1  # during epoch 48 (3 steps per epoch)

    with pytest.raises(Exception, match="stopped"):
        train(samples, 2, cfg, device="cpu", should_stop=stop, out_dir=tmp_path / "c")
    resumed: list[Progress] = []
    more = TrainConfig.from_dict({**cfg.to_dict(), "resume": True})
    train(
        samples,
        2,
        more,
        device="cpu",
        progress=resumed.append,
        init_checkpoint=tmp_path / "c" / "last.pt",
        out_dir=tmp_path / "d",
    )
    assert resumed[0].epoch == 48 and "pseudo" in resumed[0].terms
