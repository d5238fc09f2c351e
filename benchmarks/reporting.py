"""Result aggregation and ``benchmarks/results/<name>.md|.json|.png``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.method_training import write_json


@dataclass
class Scores:
    """Per evaluated item (volume or image), per class name: Dice and HD95."""

    dice: dict[str, list[float]] = field(default_factory=dict)
    hd95: dict[str, list[float]] = field(default_factory=dict)

    def add(self, dice: Mapping[str, float], hd95: Mapping[str, float]) -> None:
        for k, v in dice.items():
            self.dice.setdefault(k, []).append(float(v))
        for k, v in hd95.items():
            self.hd95.setdefault(k, []).append(float(v))

    def summary(self, classes: Sequence[str]) -> dict[str, Any]:
        """Means over items per class, then ``mean`` over classes. HD95 is undefined (NaN) where
        a class is predicted but absent from the reference or the other way round; such items are
        left out of its mean and counted in ``hd95_undefined``."""
        dice = {c: float(np.mean(self.dice[c])) for c in classes}
        dice["mean"] = float(np.mean([dice[c] for c in classes]))
        hd: dict[str, float | None] = {}
        undefined: dict[str, int] = {}
        for c in classes:
            vals = np.asarray(self.hd95[c], dtype=np.float64)
            ok = np.isfinite(vals)
            undefined[c] = int((~ok).sum())
            hd[c] = float(vals[ok].mean()) if ok.any() else None
        defined = [v for v in hd.values() if v is not None]
        hd["mean"] = float(np.mean(defined)) if defined else None
        return {
            "dice": dice,
            "hd95": hd,
            "hd95_undefined": undefined,
            "items": len(next(iter(self.dice.values()), [])),
        }


def write_results(
    out_dir: Path, name: str, payload: Mapping[str, Any], classes: Sequence[str]
) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>.png``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / f"{name}.png"]
    write_json(paths[0], payload)
    tmp = paths[1].with_suffix(".md.tmp")
    tmp.write_text(render_markdown(name, payload, classes))
    tmp.replace(paths[1])
    plot_dice(paths[2], name, payload, classes)
    return paths


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def render_markdown(name: str, payload: Mapping[str, Any], classes: Sequence[str]) -> str:
    """A method x class table of Dice and HD95 plus timing and provenance."""
    methods: Mapping[str, Any] = payload["methods"]
    unit = payload.get("hd95_unit", "mm")
    cols = [*classes, "mean"]
    lines = [
        f"# {payload.get('title', name)}",
        "",
        f"- preset: `{payload['preset']}`",
        f"- command: `{payload['command']}`",
        f"- commit: `{payload['commit']}`",
        f"- machine: {payload['machine']}",
        f"- date (UTC): {payload.get('date', '?')}",
    ]
    for k, v in payload.get("facts", {}).items():
        lines.append(f"- {k}: {v}")
    lines += [
        "",
        f"## Dice ({payload.get('dice_kind', 'Dice')}, higher is better)",
        "",
        "| method | " + " | ".join(cols) + " | mean / full |",
        "|---" * (len(cols) + 2) + "|",
    ]
    for m, r in methods.items():
        d = r["dice"]
        ref = methods.get(r.get("ratio_to", "full"), {}).get("dice", {}).get("mean")
        ratio = d["mean"] / ref if ref else None
        cells = [_fmt(d.get(c)) for c in cols] + [_fmt(ratio, 2)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## HD95 ({unit}, lower is better; undefined items left out, their count in brackets)",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for m, r in methods.items():
        h, und = r["hd95"], r.get("hd95_undefined", {})
        cells = [_fmt(h.get(c), 1) + (f" ({und[c]})" if und.get(c) else "") for c in classes] + [
            _fmt(h.get("mean"), 1)
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    full_epoch = methods.get("full", {}).get("seconds_per_epoch")
    lines += [
        "",
        "## Time (seconds)",
        "",
        "| method | total | training | evaluation | per epoch (median step x steps) "
        "| epoch / full |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in methods.items():
        spe = r.get("seconds_per_epoch")
        ratio = spe / full_epoch if spe and full_epoch else None
        lines.append(
            f"| {m} | {_fmt(r.get('seconds'), 0)} | {_fmt(r.get('train_seconds'), 0)} | "
            f"{_fmt(r.get('eval_seconds'), 0)} | {_fmt(spe, 2)} | {_fmt(ratio, 3)} |"
        )
    notes = payload.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def plot_dice(path: Path, name: str, payload: Mapping[str, Any], classes: Sequence[str]) -> None:
    """Grouped bars: Dice per class (and mean), one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(payload["methods"])
    cols = [*classes, "mean"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(cols) + 0.5 * len(methods)), 3.6))
    width = 0.8 / max(1, len(methods))
    xs = np.arange(len(cols))
    for i, m in enumerate(methods):
        vals = [payload["methods"][m]["dice"].get(c) or 0.0 for c in cols]
        ax.bar(xs + (i - (len(methods) - 1) / 2) * width, vals, width, label=m)
    ax.set_xticks(xs, cols)
    ax.set_ylim(0, 1)
    ax.set_ylabel(payload.get("dice_kind", "Dice"))
    ax.set_title(f"{name} ({payload['preset']})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(len(methods), 3), loc="lower right")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
