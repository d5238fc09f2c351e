"""End to end through the demo's own code path: a throwaway server (uvicorn + embedded Celery
worker on the filesystem queue, SQLite), a synthetic project annotated over REST with hints
derived from the known shapes, a real training, downloaded masks that beat a trivial baseline."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import dice
from models.synthetic import make_dataset
from shapehint.demo import run_demo

# Small enough for the test budget on 2 CPU cores; the `shapehint demo` defaults are larger.
# 24 images cost no more than 8 (the step count is what costs) and learn much better.
E2E = {"images": 24, "size": 48, "seed": 0, "num_classes": 1}
# default_config(24 slices, cpu) at a 48 px grid: 80 epochs x 3 steps, t reaching t_max at 70 %.
E2E_CONFIG = {"grid": 48, "epochs": 80, "mu": 50 ** (1 / 56), "val_every": 10}


@pytest.mark.timeout(420)
def test_demo_trains_from_hints_and_beats_a_trivial_baseline(capsys: pytest.CaptureFixture) -> None:
    result = run_demo(**E2E, config=E2E_CONFIG, show_progress=False)
    assert result.job["status"] == "succeeded"
    assert result.job["result"]["predictions"] == E2E["images"] == len(result.image_ids)
    # Trivial baseline: a mask that is all background scores 0, one that is all LV scores
    # 2|LV| / (|LV| + H W), far below 0.5 for these images.
    masks = [m for _, m in make_dataset(E2E["images"], size=48, num_classes=1, seed=0)]
    everything = np.mean([dice(np.ones_like(m), m, 2)[1] for m in masks])
    assert everything < 0.35
    assert result.dice["LV"] > 0.5, result.dice
    out = capsys.readouterr().out
    assert "LV" in out and "mean" in out and "total time" in out
