"""Averaging networks, offline: trained checkpoints of one service project and every
combination of them (the softmax averaged over the members), scored as a user gets them on the
hinted items (the hints' vote, as ``benchmarks/service_runs.py``) and on the held-out training
items of ``benchmarks/held_out.py`` (benchmarks/results/ablations-budget.md, section 7).

    python benchmarks/ensemble.py --data acdc --hinted-from 5 --members CK0 CK1 CK2

Project arguments (``--hinted-from``, ``--limit``, ``--seed``) as the service run's that
trained the checkpoints; ``--val-limit`` is always 0; ``--vote-weights`` also scores the hints'
vote at those weights; ``--max-members 1`` scores the members alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import acdc, held_out, kvasir
from benchmarks.command_line import add_common_args, add_service_args
from benchmarks.service_runs import delivered_scores
from models.infer import Predictor, load_predictor


@dataclass
class Averaged:
    """The mean softmax of ``members`` (same classes and channels)."""

    members: Sequence[Predictor]

    def predict_proba(self, slices: np.ndarray) -> np.ndarray:
        """``(N, K, H, W)`` float32, the members' mean, for slices ``(N, C, H, W)``."""
        return np.mean([m.predict_proba(slices) for m in self.members], axis=0)

    def predict_volume(self, volume: np.ndarray) -> np.ndarray:
        """Label volume ``(Z, H, W)`` uint8 for ``(Z, C, H, W)``."""
        return self.predict_proba(np.asarray(volume)).argmax(1).astype(np.uint8)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", nargs="+", type=Path, required=True, help="checkpoints")
    ap.add_argument("--data", choices=("acdc", "kvasir"), required=True)
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    ap.add_argument(
        "--max-members", type=int, default=None, help="score combinations up to this size"
    )
    args, rest = ap.parse_known_args(argv)
    module = acdc if args.data == "acdc" else kvasir
    bp = argparse.ArgumentParser()
    add_common_args(bp, module.PRESETS, module.ALL_METHODS, default=module.METHODS)
    add_service_args(bp)
    bench_args = bp.parse_args(["--methods", "default", *rest, "--val-limit", "0"])
    bench = module.service_bench(bench_args)
    if args.data == "acdc":
        items, classes = list(held_out.acdc_items(bench_args.data_dir, 10)), 4
    else:
        items, classes = list(held_out.kvasir_items(bench_args.data_dir, 100)), 2
    members = [load_predictor(ck, "cpu") for ck in args.members]
    config = (members[0].info or {}).get("config") or {}
    fits: dict[int, Any] = {}
    rows: dict[str, Any] = {}
    for size in range(1, min(len(members), args.max_members or len(members)) + 1):
        for combo in itertools.combinations(range(len(members)), size):
            predictor = Averaged([members[i] for i in combo])
            res = delivered_scores(
                bench,
                predictor,
                float(config["hint_weight"]),
                bool(config["fit_hints"]),
                bench_args.vote_weights,
                fits,
            )
            held = held_out.score_predictor(predictor, items, classes)
            name = "+".join(str(i) for i in combo)
            rows[name] = {
                "delivered": res["dice"],
                "model_alone": res["model_alone"]["dice"],
                "votes": {w: v["dice"] for w, v in res["votes"].items()},
                "held_out": held,
            }
            print(
                f"members {name}: delivered {res['dice']['mean']:.4f}, model alone "
                f"{res['model_alone']['dice']['mean']:.4f}, held out {held['mean']:.4f}"
                + "".join(f", vote {w} {v['dice']['mean']:.4f}" for w, v in res["votes"].items()),
                flush=True,
            )
    if args.out is not None:
        args.out.write_text(
            json.dumps({"checkpoints": [str(c) for c in args.members], "rows": rows}, indent=1)
        )
    return rows


if __name__ == "__main__":
    main()
