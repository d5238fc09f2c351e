"""Trained checkpoints on held-out *training* items: images that neither a scored project
(``--hinted-from 0``) nor a tuning project (``--hinted-from 5`` / ``100``) nor the fit's
tuning images (``benchmarks/fit_side.py``) hint, so that settings can be compared on images
the model never saw without reading ``val.list``.

ACDC: ``--count`` (10) training volumes at positions 20.. of the seeded volume order (the
service runs take 0..4, their tuning projects 5..9), slices stacked into volumes, 3D Dice per
volume and class. Kvasir: ``train[300:300 + count]`` of the seeded split (service runs
``[0:100]``, tuning ``[100:200]``, the fit's tuning ``[100:300]``), 2D Dice per image.
Checkpoints: a service run's ``last.pt`` under ``--cache-dir`` (``benchmarks/cache/<bench>-
service/<method>-<fingerprint>/``).

    python benchmarks/held_out.py --data acdc benchmarks/cache/acdc-service/default-*/last.pt

``--tta`` / ``--no-tta`` average the views each network trained on, or predict the slice
alone, whatever its config says (``benchmarks/results/ablations-rotation.md``, section 7).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.paths import DATA_ROOT

ACDC_FROM = 20
"""Position of the first held-out volume in ``acdc.choose``'s seeded order."""
KVASIR_FROM = 300
"""Index of the first held-out image in the seeded training split."""

Item = tuple[str, np.ndarray, np.ndarray]
"""``(name, image (Z, C, H, W), labels (Z, H, W))``: a volume, or one image as Z = 1."""


def acdc_items(data_dir: Path, count: int, seed: int = 0) -> Iterator[Item]:
    from benchmarks import acdc

    root = data_dir / "acdc"
    names = acdc.read_list(root / "train_slices.list")
    slices: dict[str, list[tuple[int, str]]] = {}
    for n in names:
        volume, index = n.rsplit("_slice_", 1)
        slices.setdefault(volume, []).append((int(index), n))
    for volume in acdc.choose(sorted(slices), count, seed, ACDC_FROM):
        pairs = [acdc.read_h5(root / "data" / f"{n}.h5") for _, n in sorted(slices[volume])]
        yield volume, np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])


def kvasir_items(data_dir: Path, count: int, seed: int = 0) -> Iterator[Item]:
    from benchmarks.kvasir import list_images, read_pair, split

    root = data_dir / "kvasir_seg"
    train, _ = split(list_images(root), seed)
    for stem in train[KVASIR_FROM : KVASIR_FROM + count]:
        image, mask = read_pair(root, stem)
        yield stem, image[None], mask[None]


def score(
    checkpoint: Path, items: Sequence[Item], num_classes: int, tta: bool | None = None
) -> dict[str, object]:
    """:func:`score_predictor` of one checkpoint; ``tta`` True / False averages the views it
    trained on (``models.infer.tta_views``) or not, None as its config says."""
    from models.infer import load_predictor

    predictor = load_predictor(checkpoint, "cpu")
    if tta is not None:
        predictor.tta = tta
    return score_predictor(predictor, items, num_classes)


def score_predictor(predictor: Any, items: Sequence[Item], num_classes: int) -> dict[str, object]:
    """Mean Dice per foreground class over ``items`` and the classes predicted empty where
    present (count of items). ``predictor``: anything with ``predict_volume((Z, C, H, W)) ->
    (Z, H, W)`` labels."""
    from models.metrics import dice

    per_item, empty = [], [0] * (num_classes - 1)
    for _, image, labels in items:
        pred = predictor.predict_volume(image)
        d = dice(pred, labels, num_classes)
        per_item.append([d[k] for k in range(1, num_classes)])
        for k in range(1, num_classes):
            empty[k - 1] += int((labels == k).any() and not (pred == k).any())
    dice_mean = np.mean(per_item, 0)
    return {
        "dice": [round(float(v), 4) for v in dice_mean],
        "mean": round(float(dice_mean.mean()), 4),
        "empty_where_present": empty,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--data", choices=("kvasir", "acdc"), default="acdc")
    p.add_argument("--count", type=int, default=None, help="volumes (10) / images (100)")
    p.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average the views each network trained on (default: as its config says)",
    )
    args = p.parse_args(argv)
    if args.data == "acdc":
        items, classes = list(acdc_items(args.data_dir, args.count or 10)), 4
    else:
        items, classes = list(kvasir_items(args.data_dir, args.count or 100)), 2
    print(f"{len(items)} held-out {args.data} items: {', '.join(n for n, _, _ in items[:10])}")
    out = {}
    for ck in args.checkpoints:
        out[str(ck)] = res = score(ck, items, classes, args.tta)
        print(
            f"{ck}: Dice {res['dice']} mean {res['mean']}, empty where present "
            f"{res['empty_where_present']}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    main()
