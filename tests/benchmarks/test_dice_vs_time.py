"""benchmarks/dice_vs_time.py: which rows become points."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.dice_vs_time import points


def _run(path: Path, seconds: float, dice: float, overrides: dict | None = None) -> Path:
    methods = {
        "hints-as-masks": {"dice": {"mean": 0.8}, "train_seconds": 0.0},
        "fitted-hints-as-masks": {"dice": {"mean": 0.82}, "train_seconds": 0.0},
        "default": {"dice": {"mean": dice}, "train_seconds": seconds},
        "default (model alone)": {"dice": {"mean": dice - 0.01}},
        "default [val]": {"dice": {"mean": 0.5}, "train_seconds": seconds},
    }
    path.write_text(json.dumps({"methods": methods, "overrides": overrides or {}}))
    return path


def test_model_alone_rows_take_their_training_time_and_ablations_are_left_out(
    tmp_path: Path,
) -> None:
    files = [
        _run(tmp_path / "a.json", 240.0, 0.85),
        _run(tmp_path / "b.json", 600.0, 0.87),
        _run(tmp_path / "c.json", 300.0, 0.10, {"pairwise_weight": 0.05}),
    ]
    curves, lines = points(files)
    assert lines == {"hints-as-masks": 0.8, "fitted-hints-as-masks": 0.82}
    assert curves["default"] == [(240.0, 0.85), (600.0, 0.87)]
    assert [round(d, 3) for _, d in curves["default (model alone)"]] == [0.84, 0.86]
    assert [s for s, _ in curves["default (model alone)"]] == [240.0, 600.0]
    assert not any(m.endswith("[val]") for m in curves)
    assert not set(lines) & set(curves)  # no training: lines, never points at 0 s
