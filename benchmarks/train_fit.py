"""How well a trained checkpoint's argmax fits its own ACDC *training* slices: the data a
recipe may be chosen on without reading ``val.list``.

A mask-derived method (``paper`` and its ablations) trains on bounds measured around these
slices' masks, so the masks are training data: how closely the argmax recovers them says
whether a recipe change helps, before any validation volume is scored. ``--count`` (200) seeded
slices of ``train_slices.list`` (``acdc.choose``), cut to the training crop (``acdc.CROP``) and
predicted one by one. Per checkpoint: Dice per class pooled over the slices, the confusion of
each true class (fraction of its pixels predicted as each class), the argmax's contour length
against the true one (mean px over slices where the class is present, calibrated length), and
how often the argmax meets the ``paper`` method's bounds around the true mask (per class and per
descriptor): an argmax that meets its bounds yet misses the mask shows what the bounds leave
open, one that breaks them what the training did not reach.

    python benchmarks/train_fit.py benchmarks/cache/acdc/paper-*/last.pt --out fit.json

A run trained with weight averaging (``ema_decay``) predicts with the average; ``--live`` also
scores the same runs' live (last-step) weights, which are what the run would have given
without averaging: averaging does not change training, so the two are a paired comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.paths import DATA_ROOT

Slice = tuple[str, np.ndarray, np.ndarray]
"""``(name, image (1, 1, H, W), labels (1, H, W))``: one training slice as a one-slice volume."""


def training_slices(data_dir: Path, count: int, seed: int = 0) -> list[Slice]:
    """``count`` seeded slices of ``train_slices.list``, cropped as the benchmark trains on them."""
    from benchmarks import acdc

    root = data_dir / "acdc"
    names = acdc.choose(acdc.read_list(root / "train_slices.list"), count, seed)
    out = []
    for n in names:
        image, label = acdc.read_cropped(root / "data" / f"{n}.h5")
        out.append((n, image[None, None], label[None]))
    return out


BOUND_GROUPS: dict[str, tuple[str, ...]] = {
    "size": ("size",),
    "centroid": ("centroid_x", "centroid_y"),
    "spread": ("spread_x", "spread_y"),
    "length": ("length",),
}
"""The ``paper`` bounds' descriptors (``models.bounds.PAPER_MARGINS``) and their components."""


def broken_bounds(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Which ``paper`` bounds around ``truth`` the label map ``pred`` breaks: ``(K, G)`` bool,
    K classes (row 0, background, unconstrained: all False), G = :data:`BOUND_GROUPS` (a group
    breaks when any of its components does, by the product's own test with the argmax's slack,
    ``models.quality.broken_components``; both maps ``(H, W)`` labels of the same slice)."""
    from models.bounds import from_mask, stack
    from models.quality import broken_components
    from models.units import COMPONENTS

    lo, hi = stack(from_mask(truth, num_classes))
    out = np.zeros((num_classes, len(BOUND_GROUPS)), bool)
    for k in range(1, num_classes):
        bad = broken_components(pred == k, lo[k], hi[k])
        for g, comps in enumerate(BOUND_GROUPS.values()):
            out[k, g] = any(bad[COMPONENTS.index(c)] for c in comps)
    return out


def fit_report(checkpoint: Path, items: Sequence[Slice], num_classes: int) -> dict[str, object]:
    """Pooled Dice per foreground class, ``confusion[k][j]`` (fraction of true class k's pixels
    predicted j, background included), ``length_error_px[k]`` (argmax minus true contour
    length, px of the cropped slice, mean over slices where k is present), ``size_ratio[k]``
    (the softmax's summed probability and the argmax's pixel count over the true size, mean
    over the same slices: a soft map that meets its size while the argmax falls short has not
    committed), ``bounds_met[k]`` (fraction of those slices whose argmax meets every ``paper``
    bound of class k) and ``bounds_broken[k][descriptor]`` (fraction breaking that
    descriptor's bounds) for one checkpoint; lists run over the foreground classes."""
    from models.bounds import sobel_length
    from models.infer import load_predictor
    from models.metrics import dice

    predictor = load_predictor(checkpoint, "cpu")
    preds, truths = [], []
    length_errors: list[list[float]] = [[] for _ in range(num_classes)]
    broken: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    sizes: list[list[tuple[float, float]]] = [[] for _ in range(num_classes)]
    for _, image, labels in items:
        # (K, H, W): the probabilities predict_volume takes the argmax of
        proba = predictor.predict_proba(image)[0]
        pred = proba.argmax(0).astype(np.int64)
        truth = labels[0].astype(np.int64)
        preds.append(pred.ravel())
        truths.append(truth.ravel())
        slice_broken = broken_bounds(pred, truth, num_classes)
        for k in range(1, num_classes):
            if (truth == k).any():
                length_errors[k].append(sobel_length(pred == k) - sobel_length(truth == k))
                broken[k].append(slice_broken[k])
                true_size = float((truth == k).sum())
                sizes[k].append(
                    (float(proba[k].sum()) / true_size, float((pred == k).sum()) / true_size)
                )
    # Slices differ in size: pooling their pixels into one flat map pools the Dice too.
    pred_all, truth_all = np.concatenate(preds), np.concatenate(truths)
    foreground = list(dice(pred_all, truth_all, num_classes).values())
    counts = np.bincount(truth_all * num_classes + pred_all, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )
    confusion = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    stacked = [np.array(b, bool).reshape(-1, len(BOUND_GROUPS)) for b in broken[1:]]
    return {
        "dice": [round(d, 4) for d in foreground],
        "mean": round(float(np.mean(foreground)), 4),
        "confusion": [[round(float(v), 4) for v in row] for row in confusion],
        "length_error_px": [round(float(np.mean(e)), 2) if e else None for e in length_errors[1:]],
        "size_ratio": [
            dict(zip(("soft", "argmax"), np.round(np.mean(r, axis=0), 4).tolist(), strict=True))
            if r
            else None
            for r in sizes[1:]
        ],
        "bounds_met": [
            round(float(np.mean(~np.any(b, axis=1))), 4) if len(b) else None for b in stacked
        ],
        "bounds_broken": [
            dict(zip(BOUND_GROUPS, (round(float(v), 4) for v in np.mean(b, axis=0)), strict=True))
            if len(b)
            else None
            for b in stacked
        ],
    }


def live_weights(checkpoint: Path, out: Path) -> Path:
    """Write to ``out`` a checkpoint of the live (last-step) weights of a ``last.pt`` trained
    with ``ema_decay``, whose own weights are the average; ValueError for a file without them."""
    import torch

    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    live = ck.get("resume", {}).get("train_state_dict")
    if live is None:
        raise ValueError(f"{checkpoint}: no live weights (not a last.pt trained with ema_decay)")
    torch.save({**{k: v for k, v in ck.items() if k != "resume"}, "state_dict": live}, out)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--count", type=int, default=200, help="training slices (200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    p.add_argument("--out", type=Path, default=None, help="also write the reports as JSON")
    p.add_argument(
        "--live", action="store_true", help="also score each last.pt's live weights (ema_decay)"
    )
    args = p.parse_args(argv)
    items = training_slices(args.data_dir, args.count, args.seed)
    print(f"{len(items)} training slices: {', '.join(n for n, _, _ in items[:5])}, ...")
    out = {}
    with tempfile.TemporaryDirectory(prefix="train_fit-") as tmp:
        runs = [(str(ck), ck) for ck in args.checkpoints]
        if args.live:
            runs += [
                (f"{ck}#live", live_weights(ck, Path(tmp) / f"live{i}.pt"))
                for i, ck in enumerate(args.checkpoints)
            ]
        for name, ck in runs:
            out[name] = res = fit_report(ck, items, 4)
            print(
                f"{name}: Dice (RV, Myo, LV) {res['dice']} mean {res['mean']}; "
                f"length error px {res['length_error_px']}; confusion {res['confusion']}; "
                f"size / true (soft, argmax) {res['size_ratio']}; "
                f"paper bounds met {res['bounds_met']}, broken {res['bounds_broken']}",
                flush=True,
            )
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
