"""Dice against training seconds from the result files of service runs (``--budget``).

    python benchmarks/dice_vs_time.py benchmarks/results/kvasir-service-budget=240.json \\
        benchmarks/results/kvasir-runs/kvasir-service-budget=*.json \\
        --out benchmarks/results/kvasir-dice-vs-time.png

Every method row (``[val]`` rows left out) of runs without config overrides becomes a point at
its training seconds; ``hints-as-masks`` and ``fitted-hints-as-masks`` (no training) are drawn
as horizontal lines.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.service_runs import UNTRAINED


def points(paths: list[Path]) -> tuple[dict[str, list[tuple[float, float]]], dict[str, float]]:
    """Per method ``[(train seconds, mean Dice), ...]`` sorted by seconds, and the Dice of the
    rows without training (the drawings as masks, as drawn and fitted; the last file's)."""
    out: dict[str, list[tuple[float, float]]] = {}
    lines: dict[str, float] = {}
    for path in paths:
        data = json.loads(path.read_text())
        if data.get("overrides"):
            continue  # ablations are not points of the default's curve
        methods = data["methods"]
        for method, r in methods.items():
            if method.endswith("[val]"):
                continue
            if method in UNTRAINED:
                lines[method] = r["dice"]["mean"]
                continue
            # "<m> (model alone)" rows: the same training as <m>
            trained = methods.get(method.removesuffix(" (model alone)"), {})
            seconds = r.get("train_seconds", trained.get("train_seconds"))
            if seconds is not None:
                out.setdefault(method, []).append((seconds, r["dice"]["mean"]))
    return {m: sorted(set(v)) for m, v in out.items()}, lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="service-run .json result files")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default="Dice on the hinted images vs training time")
    args = p.parse_args(argv)
    curves, lines = points(args.results)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for method, pts in curves.items():
        ax.plot([s for s, _ in pts], [d for _, d in pts], "o-", label=method)
    for (method, dice), style in zip(sorted(lines.items()), ("--", ":"), strict=False):
        ax.axhline(dice, color="grey", ls=style, label=method)
    ax.set_xlabel("training seconds (1 CPU thread)")
    ax.set_ylabel("mean Dice")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(args.title, fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    for method, pts in curves.items():
        print(method, ", ".join(f"{s:.0f} s: {d:.3f}" for s, d in pts))
    for method, dice in sorted(lines.items()):
        print(method, f"{dice:.3f}")


if __name__ == "__main__":
    main()
