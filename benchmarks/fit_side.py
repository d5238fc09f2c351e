"""How GrabCut should see the image (``models.fitting.FIT_SIDE``, ``FIT_BLUR``, ``FIT_GROW``,
``FIT_RINGS``, ``FIT_HIGHLIGHTS``): the ellipse method's drawings and the drawings fitted at
several sides, blurs, grows, with rings cut or not and highlights inpainted or not, on images
that no service run hints. Kvasir: ``train[100:300]`` of the seeded split (the service runs
hint ``train[:100]``), 2D Dice per image. ACDC: slices with all three structures from training
volumes outside the service runs' seeded ones, 2D Dice per slice and class (RV, Myo, LV).

    python benchmarks/fit_side.py --sides 128,256,384
    python benchmarks/fit_side.py --data acdc --sides 256 --blurs 0,0.5,1,2
    python benchmarks/fit_side.py --sides 256 --grows 0,0.5,1,1.5,2
    python benchmarks/fit_side.py --data acdc --sides 256 --rings 1,0
    python benchmarks/fit_side.py --sides 256 --highlights 0,1
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.annotator import item_rng
from benchmarks.paths import DATA_ROOT
from benchmarks.service_runs import hint_payload

Item = tuple[np.ndarray, np.ndarray, list[list[Mapping[str, Any]]]]
"""``(image (C, H, W), labels (H, W), hints per class (index 0: none))``."""


def kvasir_items(data_dir: Path, count: int) -> Iterator[Item]:
    from benchmarks.kvasir import SERVICE_HINTED, annotator_for, list_images, read_pair, split

    root = data_dir / "kvasir_seg"
    train, _ = split(list_images(root), 0)
    for stem in train[SERVICE_HINTED : SERVICE_HINTED + count]:
        image, mask = read_pair(root, stem)
        hint = hint_payload(annotator_for(mask.shape), mask == 1, item_rng(0, "ellipse", stem))
        if hint.get("present", True) is not False:
            yield image, mask, [[], [hint]]


def acdc_items(data_dir: Path, count: int) -> Iterator[Item]:
    from benchmarks import acdc

    root = data_dir / "acdc"
    names = acdc.read_list(root / "train_slices.list")
    volumes = sorted({n.rsplit("_slice_", 1)[0] for n in names})
    service = set(acdc.choose(volumes, acdc.SERVICE_VOLUMES, 0))
    found = 0
    for n in names:
        if found == count:
            return
        if n.rsplit("_slice_", 1)[0] in service:
            continue
        image, label = acdc.read_h5(root / "data" / f"{n}.h5")
        if all((label == k).any() for k in range(1, acdc.NUM_CLASSES)):
            found += 1
            yield image[None], label, [[], *([h] for h in acdc.slice_hints(label, n, 0))]


def shapes_dice(shapes: Mapping[int, np.ndarray], labels: np.ndarray, classes: int) -> list[float]:
    """Dice of each class's shape ``(H, W)`` bool against ``labels == k``, k = 1..classes-1."""
    from models.metrics import dice

    return [dice(shapes[k].astype(np.uint8), labels == k, 2)[1] for k in range(1, classes)]


def main(argv: Sequence[str] | None = None) -> dict[str, list[float]]:
    import models.fitting as fitting
    from models.regions import drawn_mask

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("kvasir", "acdc"), default="kvasir")
    p.add_argument("--sides", default="128,256,384")
    p.add_argument("--blurs", default=str(fitting.FIT_BLUR))
    p.add_argument("--grows", default=str(fitting.FIT_GROW), help="px of the GrabCut grid")
    p.add_argument("--rings", default=str(int(fitting.FIT_RINGS)), help="cut rings: 1 / 0")
    p.add_argument(
        "--highlights", default=str(int(fitting.FIT_HIGHLIGHTS)), help="inpaint them: 1 / 0"
    )
    p.add_argument("--count", type=int, default=None, help="images (200) / slices (150)")
    p.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    args = p.parse_args(argv)
    if args.data == "kvasir":
        items = list(kvasir_items(args.data_dir, args.count or 200))
    else:
        items = list(acdc_items(args.data_dir, args.count or 150))
    classes = len(items[0][2])

    def drawn(item: Item) -> dict[int, np.ndarray]:
        return {k: drawn_mask(h[0], item[1].shape) for k, h in enumerate(item[2]) if h}

    out = {"drawn": np.mean([shapes_dice(drawn(it), it[1], classes) for it in items], 0).tolist()}
    print(f"{len(items)} {args.data} items; Dice per class, drawn: {_fmt(out['drawn'])}")
    grid = [
        (int(side), float(blur), float(grow), rings, lights)
        for side in args.sides.split(",")
        for blur in args.blurs.split(",")
        for grow in args.grows.split(",")
        for rings in args.rings.split(",")
        for lights in args.highlights.split(",")
    ]
    for side, blur, grow, rings, lights in grid:
        fitting.FIT_SIDE, fitting.FIT_BLUR, fitting.FIT_GROW = side, blur, grow
        fitting.FIT_RINGS, fitting.FIT_HIGHLIGHTS = rings == "1", lights == "1"
        t0 = time.monotonic()
        scores = []
        for item in items:
            shapes = {**drawn(item), **fitting.fitted_shapes(item[0], item[2])}
            scores.append(shapes_dice(shapes, item[1], classes))
        per_item = (time.monotonic() - t0) / len(items)
        key = f"fitted@{side},blur={blur:g},grow={grow:g},rings={rings},highlights={lights}"
        out[key] = np.mean(scores, 0).tolist()
        print(f"{key}: Dice {_fmt(out[key])}, {per_item:.2f} s per item", flush=True)
    return out


def _fmt(per_class: Sequence[float]) -> str:
    mean = f" (mean {np.mean(per_class):.3f})" if len(per_class) > 1 else ""
    return " / ".join(f"{d:.3f}" for d in per_class) + mean


if __name__ == "__main__":
    main()
