"""The hints' vote on hinted slices, offline: score rules for combining a trained checkpoint's
probabilities with the drawn hints on the hinted Kvasir images (benchmarks/results/
ablations-grid.md, section C).

    python benchmarks/hint_vote.py benchmarks/cache/kvasir-service/default-<key>/last.pt

Prints the mean 2D Dice of each rule over the first 100 hinted images of the seeded training
split (the service benchmark's hinted set).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import kvasir
from benchmarks.command_line import add_common_args, add_service_args
from models.bounds import parse_hint, stack
from models.infer import load_predictor
from models.metrics import dice
from models.quality import slice_tallies
from models.refine import hint_vote, refine_labels

Rule = Callable[[np.ndarray, list, tuple[np.ndarray, np.ndarray]], np.ndarray]


def _voted(proba: np.ndarray, hints: list, w: float) -> np.ndarray:
    out = refine_labels(proba, hints, w) if w > 0 else None
    return proba.argmax(0).astype(np.uint8) if out is None else out[0]


def _meets(labels: np.ndarray, bounds: tuple[np.ndarray, np.ndarray]) -> bool:
    return all(t.meeting_bounds or not t.hinted_slices for t in slice_tallies(labels, *bounds))


def _drawing(proba: np.ndarray, hints: list) -> np.ndarray:
    q = hint_vote(proba, hints)
    assert q is not None
    return q.argmax(0).astype(np.uint8)


RULES: dict[str, Rule] = {
    "model alone (hint_weight 0)": lambda p, h, b: _voted(p, h, 0.0),
    "vote, hint_weight 1/3": lambda p, h, b: _voted(p, h, 1 / 3),
    "vote, hint_weight 0.4": lambda p, h, b: _voted(p, h, 0.4),
    "vote, hint_weight 0.45": lambda p, h, b: _voted(p, h, 0.45),
    "the drawing (hint_weight 0.5)": lambda p, h, b: _voted(p, h, 0.5),
    "vote 1/3, only carving the drawing": lambda p, h, b: np.where(
        _drawing(p, h) == 1, _voted(p, h, 1 / 3), 0
    ).astype(np.uint8),
    "vote 1/3, only adding to the drawing": lambda p, h, b: np.maximum(
        _drawing(p, h), _voted(p, h, 1 / 3)
    ),
    "vote 1/3 where the model alone meets the bounds, else the drawing": lambda p, h, b: (
        _voted(p, h, 1 / 3) if _meets(p.argmax(0).astype(np.uint8), b) else _drawing(p, h)
    ),
    "vote 1/3 where the voted mask meets the bounds, else the drawing (kept)": lambda p, h, b: (
        v if _meets(v := _voted(p, h, 1 / 3), b) else _drawing(p, h)
    ),
}


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=Path)
    args, rest = ap.parse_known_args(argv)
    bp = argparse.ArgumentParser()
    add_common_args(bp, kvasir.PRESETS, kvasir.ALL_METHODS, default=kvasir.METHODS)
    add_service_args(bp)
    bench = kvasir.service_bench(bp.parse_args(["--methods", "default", "--val-limit", "0", *rest]))
    predictor = load_predictor(args.checkpoint, "cpu")
    scores: dict[str, list[float]] = {name: [] for name in RULES}
    for it in bench.items:
        proba = predictor.predict_proba(it.image[None])[0]
        hints = [[], [it.hints[0]]]
        bounds = stack([None, parse_hint("polyp", it.hints[0], shape=it.mask.shape)])
        for name, rule in RULES.items():
            scores[name].append(dice(rule(proba, hints, bounds), it.mask, 2)[1])
    means = {name: float(np.mean(v)) for name, v in scores.items()}
    for name, m in means.items():
        print(f"{m:.3f}  {name}")
    return means


if __name__ == "__main__":
    main()
