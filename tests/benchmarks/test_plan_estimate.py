"""``benchmarks/plan_estimate.py``: an earlier run's pace times a later run's estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import plan_estimate
from models.budget import PLAN_MAX_EPOCHS, ProjectFacts, resolve_config


def _result(facts: ProjectFacts, budget: str, seconds: float | None = None) -> dict:
    """A service run's result file as far as the script reads it: its plan trained at
    ``seconds`` per px (None: not run yet)."""
    cfg, _ = resolve_config({"budget": budget}, facts, "cpu")
    steps = 100
    step_px = cfg.batch_size * cfg.grid**2 * (cfg.network_kwargs["width"] / 16) ** 2
    row = {"train_seconds": 0.0, "epochs": 0, "train_metrics": {}}
    if seconds is not None:
        row["train_metrics"] = {"seconds": seconds * step_px * steps, "steps": steps}
    return {
        "budget": budget,
        "overrides": {},
        "project_facts": facts.__dict__,
        "methods": {"default": row},
    }


def test_a_faster_pace_than_the_cost_models_estimates_the_ceiling_sooner(tmp_path: Path) -> None:
    small = ProjectFacts(num_slices=40, max_side=256, smallest_structure=30.0)
    big = ProjectFacts(num_slices=400, max_side=256, smallest_structure=30.0)
    cost = 0.27 / (8 * 96 * 96)
    first, second = _result(small, "quick", cost / 10), _result(big, "standard")
    out = plan_estimate.compare(first, second)
    assert out["pace_s_per_px"] == pytest.approx(cost / 10)
    assert out["cost_model_seconds"] == pytest.approx(600, rel=0.1)
    # Ten times the cost model's pace: the ceiling in a fraction of the budget.
    assert out["cost_model_epochs"] < out["timed_epochs"] == PLAN_MAX_EPOCHS
    assert out["timed_seconds"] < 0.8 * out["cost_model_seconds"]
    (tmp_path / "a.json").write_text(json.dumps(first))
    (tmp_path / "b.json").write_text(json.dumps(second))
    assert plan_estimate.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == out
    with pytest.raises(ValueError, match="no training seconds"):
        plan_estimate.compare(second, first)  # the second was never trained
