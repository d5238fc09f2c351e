"""How big an image GrabCut needs (``models.fitting.FIT_SIDE``): the ellipse method's drawings
and the drawings fitted at several sides, on Kvasir training images that no service run hints
(``train[100:300]`` of the seeded split; the service runs hint ``train[:100]``).

    python benchmarks/fit_side.py --sides 128,256,384
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.annotator import item_rng
from benchmarks.kvasir import SERVICE_HINTED, annotator_for, list_images, read_pair, split
from benchmarks.paths import DATA_ROOT
from benchmarks.service_runs import hint_payload


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    import models.fitting as fitting
    from models.metrics import dice
    from models.regions import drawn_mask

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", default="128,256,384")
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    args = p.parse_args(argv)
    root = args.data_dir / "kvasir_seg"
    train, _ = split(list_images(root), 0)
    items = []
    for stem in train[SERVICE_HINTED : SERVICE_HINTED + args.count]:
        image, mask = read_pair(root, stem)
        hint = hint_payload(annotator_for(mask.shape), mask == 1, item_rng(0, "ellipse", stem))
        if hint.get("present", True) is not False:
            items.append((image, mask, hint))
    out = {
        "drawn": float(
            np.mean([dice(drawn_mask(h, m.shape).astype(np.uint8), m, 2)[1] for _, m, h in items])
        )
    }
    print(f"{len(items)} images; drawn: Dice {out['drawn']:.3f}")
    for side in (int(s) for s in args.sides.split(",")):
        fitting.FIT_SIDE = side
        t0 = time.monotonic()
        scores = []
        for image, mask, hint in items:
            fitted = fitting.fitted_shapes(image, [[], [hint]]).get(1)
            shape = drawn_mask(hint, mask.shape) if fitted is None else fitted
            scores.append(dice(shape.astype(np.uint8), mask, 2)[1])
        per_image = (time.monotonic() - t0) / len(items)
        out[f"fitted@{side}"] = float(np.mean(scores))
        print(f"fitted at {side} px: Dice {np.mean(scores):.3f}, {per_image:.2f} s per image")
    return out


if __name__ == "__main__":
    main()
