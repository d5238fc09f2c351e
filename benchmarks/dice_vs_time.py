"""Dice against training seconds from the result files of service runs (``--budget``).

    python benchmarks/dice_vs_time.py benchmarks/results/kvasir-service-budget=240.json \\
        benchmarks/results/kvasir-runs/kvasir-service-budget=*.json \\
        --out benchmarks/results/kvasir-dice-vs-time.png

Every method row (``[val]`` rows left out) of runs without config overrides becomes a point at
its training seconds; ``hints-as-masks`` (no training) is drawn as a horizontal line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def points(paths: list[Path]) -> tuple[dict[str, list[tuple[float, float]]], float | None]:
    """Per method ``[(train seconds, mean Dice), ...]`` sorted by seconds, and the hints' Dice."""
    out: dict[str, list[tuple[float, float]]] = {}
    hints = None
    for path in paths:
        data = json.loads(path.read_text())
        if data.get("overrides"):
            continue  # ablations are not points of the default's curve
        methods = data["methods"]
        for method, r in methods.items():
            if method.endswith("[val]"):
                continue
            if method == "hints-as-masks":
                hints = r["dice"]["mean"]
                continue
            # "<m> (model alone)" rows: the same training as <m>
            trained = methods.get(method.removesuffix(" (model alone)"), {})
            seconds = r.get("train_seconds", trained.get("train_seconds"))
            if seconds is not None:
                out.setdefault(method, []).append((seconds, r["dice"]["mean"]))
    return {m: sorted(set(v)) for m, v in out.items()}, hints


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", type=Path, help="service-run .json result files")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default="Dice on the hinted images vs training time")
    args = p.parse_args(argv)
    curves, hints = points(args.results)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for method, pts in curves.items():
        ax.plot([s for s, _ in pts], [d for _, d in pts], "o-", label=method)
    if hints is not None:
        ax.axhline(hints, color="grey", ls="--", label="hints-as-masks")
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
    print("hints-as-masks", hints)


if __name__ == "__main__":
    main()
