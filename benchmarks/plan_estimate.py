"""The plan's estimate before a run, from the cost model and from an earlier run's pace, against
what the run then took: two service-run result files of ``acdc.py`` / ``kvasir.py`` (their
``default`` rows), the first timing the second as ``POST /api/projects/{id}/jobs/plan`` would
once the first had trained on the server (``models.budget.px_seconds``,
``models.budget.estimate_run``; benchmarks/results/ablations-budget.md, section 12).

    python benchmarks/plan_estimate.py kvasir-runs/s24-pace-kvasir-quick.json \\
        acdc-runs/s24-pace-acdc-standard.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.budget import ProjectFacts, estimate_run, px_seconds, resolve_config
from models.config import TrainConfig
from models.fitting import FIT_SECONDS_PER_SLICE


def _plan(result: Mapping[str, Any]) -> tuple[TrainConfig, ProjectFacts, float]:
    """A service run's resolved config (its budget and ``--set`` overrides on its project's
    facts, as the run resolved it), the facts, and the seconds fitting its drawings takes
    before training (timed apart from training, as the results' ``train_seconds`` are)."""
    facts = ProjectFacts(**result["project_facts"])
    cfg, _ = resolve_config({"budget": result["budget"], **result["overrides"]}, facts, "cpu")
    return cfg, facts, facts.num_slices * FIT_SECONDS_PER_SLICE if cfg.training_fit else 0.0


def compare(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, float]:
    """Training seconds and epochs of ``second`` (fitting the drawings left out) estimated by
    the cost model and at ``first``'s measured pace, and what it took."""
    before, after = first["methods"]["default"], second["methods"]["default"]
    pace = px_seconds(_plan(first)[0].to_dict(), before["train_metrics"])
    if pace is None:
        raise ValueError("the first run's result holds no training seconds and steps")
    cfg, facts, fitting = _plan(second)
    model_s, _ = estimate_run(cfg, facts, "cpu")
    timed_s, timed_epochs = estimate_run(cfg, facts, "cpu", pace)
    return {
        "pace_s_per_px": pace,
        "own_pace_s_per_px": px_seconds(cfg.to_dict(), after["train_metrics"]) or 0.0,
        "cost_model_seconds": model_s - fitting,
        "cost_model_epochs": cfg.epochs,
        "timed_seconds": timed_s - fitting,
        "timed_epochs": timed_epochs,
        "trained_seconds": float(after["train_seconds"]),
        "trained_epochs": after["epochs"],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first", type=Path, help="the earlier run's result JSON (times the second)")
    p.add_argument("second", type=Path, help="the run whose estimate is checked")
    args = p.parse_args(argv)
    out = compare(json.loads(args.first.read_text()), json.loads(args.second.read_text()))
    for key, value in out.items():
        print(f"{key}: {value:.4g}")
    return out


if __name__ == "__main__":
    main()
