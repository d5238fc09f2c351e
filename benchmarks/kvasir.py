"""Kvasir-SEG benchmark (colonoscopy polyps, RGB, binary): full masks vs simulated ellipse hints.

A seeded 80/20 split of the 1000 images of ``../shared/data/kvasir_seg``; the same network,
preprocessing, budget and seed for both methods; Dice and HD95 (px: the images carry no
spacing) per validation image on its original grid, averaged over images.

- ``full``: cross-entropy on the full masks;
- ``ellipse``: one simulated ellipse per image (``annotator.Annotator``: the mask's moment
  ellipse, centre off by up to 1 % of the image's shorter side, semi-axes +-20 %, angle +-15
  degrees) through ``from_ellipse(..., tolerance)``; images without a polyp marked absent;
- ``ellipse+sure`` (not run by default): what the product learns from the same ellipses: their
  bounds plus the sure map of each drawing fitted to its image (``models.fitting``, partial
  cross-entropy at ``models.budget.SURE_WEIGHT``) and the product's augmentation (no flips or
  transposes), as ``models.budget.default_for`` trains.

    python benchmarks/kvasir.py --preset cpu
    python benchmarks/kvasir.py --preset paper --device cuda
    python benchmarks/kvasir.py --preset cpu --limit 200 --val-limit 50

Training images are resized to the training grid once while loading (``models.transforms``,
the resize ``models.train`` would apply), and their bounds with them, so 800 full-size RGB
images never sit in memory; evaluation predicts every validation image at its own size.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.annotator import Annotator, bounds_hold, item_rng, unconstrained
from benchmarks.command_line import add_common_args, add_service_args, selected_methods
from benchmarks.driver import TIMING_NOTE, Benchmark, run
from benchmarks.presets import (
    PAPER_TRAIN,
    PRODUCT_RECIPE,
    SMOKE_TRAIN,
    Preset,
    cpu_train,
    method_train,
    parse_overrides,
)
from benchmarks.reporting import Scores
from benchmarks.service_runs import (
    HintedItem,
    ServiceBench,
    hint_payload,
    is_service_run,
    run_service,
)
from models.bounds import stack

CLASSES: tuple[str, ...] = ("polyp",)
NUM_CLASSES = 2
METHODS: tuple[str, ...] = ("full", "ellipse")
ALL_METHODS: tuple[str, ...] = (
    *METHODS,
    "ellipse+sure",
    "hints-as-masks",
    "fitted-hints-as-masks",
    "default",
)
SERVICE_HINTED = 100
"""Service runs: hinted training-split images (the first of the seeded split) unless --limit."""
TRAIN_FRACTION = 0.8
JITTER_FRACTION = 0.01
"""Centroid error of the drawn ellipse, as a fraction of the image's shorter side: ACDC's 3 mm
(2 px of a 216-256 px slice) is about 1 % of its shorter side too."""


def annotator_for(shape: tuple[int, int]) -> Annotator:
    r = JITTER_FRACTION * min(shape)
    return Annotator(jitter_px=(r, r), axis_error=0.2, angle_error_deg=15.0, tolerance=0.2)


PRESETS: dict[str, Preset] = {
    "cpu": Preset(
        "cpu",
        cpu_train(epochs=40, grid=96),
        note=(
            "UNet (width 16, depth 3) at 96x96 on all 800 training images, 40 epochs "
            "(4000 steps of 8), one thread per training: about 15 min per method on an idle "
            "core, both methods at once with --jobs 2."
        ),
    ),
    "cpu-short": Preset(
        "cpu-short",
        cpu_train(epochs=10, grid=64),
        train_limit=400,
        note=(
            "Reduced bounded run: 400 of the 800 training images, all 200 validation images, "
            "64x64, 10 epochs (500 steps of 8)."
        ),
    ),
    "paper": Preset(
        "paper",
        PAPER_TRAIN,
        device="cuda",
        note="The paper's ACDC setting applied to polyps: ENet 256x256, 200 epochs; for a GPU.",
    ),
    "smoke": Preset(
        "smoke",
        SMOKE_TRAIN,
        train_limit=6,
        val_limit=2,
        device="cpu",
        note="Tests only: a few images, one epoch, a tiny network.",
    ),
}


def list_images(root: Path) -> list[str]:
    """Stems with both an image and a mask (names come from the folder, never from input)."""
    names = []
    for p in sorted((root / "images").iterdir()):
        ok_name = p.suffix.lower() == ".jpg" and re.fullmatch(r"[A-Za-z0-9_-]+", p.stem)
        if ok_name and (root / "masks" / p.name).exists():
            names.append(p.stem)
    return names


def split(names: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """Seeded 80/20 split of the sorted names."""
    order = np.random.default_rng(seed).permutation(len(names))
    cut = round(TRAIN_FRACTION * len(names))
    return [names[i] for i in order[:cut]], [names[i] for i in order[cut:]]


def read_pair(root: Path, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """``image (3, H, W)`` float32 in [0, 255] and ``mask (H, W)`` uint8 in {0, 1} (> 127)."""
    from PIL import Image

    with Image.open(root / "images" / f"{stem}.jpg") as im:
        image = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
    with Image.open(root / "masks" / f"{stem}.jpg") as im:
        mask = (np.asarray(im.convert("L")) > 127).astype(np.uint8)
    if mask.shape != image.shape[1:]:
        raise ValueError(f"{stem}: mask {mask.shape} does not match image {image.shape[1:]}")
    return image, mask


class Kvasir:
    def __init__(self, data_dir: Path, preset: Preset, seed: int) -> None:
        self.root = data_dir / "kvasir_seg"
        if not (self.root / "images").is_dir():
            raise SystemExit(f"Kvasir-SEG not found under {self.root}")
        self.seed = seed
        from models.train import TrainConfig

        self.grid = TrainConfig.from_dict(preset.train).grid
        train, val = split(list_images(self.root), seed)
        self.train_names = train[: preset.train_limit]
        self.val_names = val[: preset.val_limit]
        self._train: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._facts: dict[str, dict[str, Any]] = {}

    def _load_train(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per training image: ``(image (3, G, G), mask (G, G), native mask (H, W))``."""
        if self._train is None:
            import torch

            from models.transforms import resize_image, resize_mask

            g = (self.grid, self.grid)
            out = []
            for stem in self.train_names:
                image, mask = read_pair(self.root, stem)
                img = resize_image(torch.from_numpy(image)[None], g)[0].numpy()
                small = resize_mask(torch.from_numpy(mask.astype(np.int64))[None], g)[0]
                out.append((img, small.numpy().astype(np.uint8), mask))
            self._train = out
        return self._train

    def build_samples(self, method: str) -> list[Any]:
        import torch

        from models.bounds import parse_hint
        from models.fitting import slice_sure_map
        from models.train import TrainSample
        from models.transforms import resize_bounds, resize_mask

        samples = []
        absent = held = 0
        for stem, (image, mask, native) in zip(self.train_names, self._load_train(), strict=True):
            if method == "full":
                lo, hi = unconstrained(NUM_CLASSES)
                samples.append(TrainSample(image, lo, hi, mask))
                continue
            rng = item_rng(self.seed, "ellipse", stem)
            sure = None
            if method == "ellipse+sure":  # the same draws as hint_bounds, as hint JSON
                payload = hint_payload(annotator_for(native.shape), native == 1, rng)
                hint = parse_hint(CLASSES[0], payload, shape=native.shape)
                native_image = read_pair(self.root, stem)[0]  # fitted on the image as drawn
                fit = PRODUCT_RECIPE["fit_targets"]
                native_sure = torch.from_numpy(
                    slice_sure_map(native_image, [[], [payload]], fit, stack([None, hint]))
                )
                sure = resize_mask(native_sure.long(), (self.grid, self.grid)).numpy()
            else:
                hint = annotator_for(native.shape).hint_bounds(native == 1, rng)
            absent += hint.present is False
            held += bounds_hold(hint, native == 1)
            lo, hi = stack([None, hint])
            lo_t, hi_t = resize_bounds(
                torch.from_numpy(lo), torch.from_numpy(hi), native.shape, (self.grid, self.grid)
            )
            samples.append(TrainSample(image, lo_t.numpy(), hi_t.numpy(), None, sure))
        if method != "full":
            self._facts[method] = {
                "images_marked_absent": absent,
                "bounds_hold_truth": {"polyp": round(held / max(1, len(samples)), 3)},
            }
        return samples

    def method_facts(self, method: str) -> dict[str, Any]:
        return dict(self._facts.get(method, {}))

    def evaluate(self, checkpoint: Path, show_progress: bool) -> Scores:
        from tqdm import tqdm

        from models.infer import load_predictor
        from models.metrics import dice, hd95

        predictor = load_predictor(checkpoint)
        scores = Scores()
        for stem in tqdm(
            self.val_names, desc="evaluate", unit="image", disable=not show_progress, leave=False
        ):
            image, mask = read_pair(self.root, stem)
            pred = predictor.predict_image(image)
            scores.add(
                {"polyp": dice(pred, mask, NUM_CLASSES)[1]},
                {"polyp": hd95(pred, mask, NUM_CLASSES)[1]},
            )
        return scores


def service_bench(args: argparse.Namespace) -> ServiceBench:
    """``--limit`` (100) images of the training split from ``--hinted-from`` (0), each with one
    simulated ellipse (the ``ellipse`` method's, same seed), at their own size; validation:
    ``--val-limit``."""
    from models.metrics import dice, hd95

    root = args.data_dir / "kvasir_seg"
    train, val = split(list_images(root), args.seed)
    items = []
    first = args.hinted_from
    for stem in train[first : first + (args.limit or SERVICE_HINTED)]:
        image, mask = read_pair(root, stem)
        hint = hint_payload(
            annotator_for(mask.shape), mask == 1, item_rng(args.seed, "ellipse", stem)
        )
        items.append(HintedItem(stem, image, mask, [hint]))
    val = val[: args.val_limit]

    def score(pred: np.ndarray, mask: np.ndarray, scores: Scores) -> None:
        scores.add(
            {"polyp": dice(pred, mask, NUM_CLASSES)[1]}, {"polyp": hd95(pred, mask, NUM_CLASSES)[1]}
        )

    def score_hinted(predict: Any) -> Scores:
        scores = Scores()
        for i, it in enumerate(items):
            score(predict(i), it.mask, scores)
        return scores

    def score_val(predictor: Any) -> Scores:
        scores = Scores()
        for stem in val:
            image, mask = read_pair(root, stem)
            score(predictor.predict_image(image), mask, scores)
        return scores

    return ServiceBench(
        key="kvasir",
        title="Kvasir-SEG: what a user gets (hints as masks, full masks, the service default)",
        classes=CLASSES,
        items=items,
        score_hinted=score_hinted,
        score_val=score_val if val else None,
        facts={
            "hinted images": f"images {first}..{first + len(items) - 1} of the seeded training "
            f"split (seed {args.seed}); rows without [val] are scored on these",
            "validation": f"[val] rows: the first {len(val)} images of the validation split",
            "evaluation": "2D Dice / HD95 per image on its original grid, mean over images",
        },
        notes=[
            "hints-as-masks: the simulated ellipse (the ellipse method's) rasterised with "
            "models.regions.ellipse_mask, no training.",
            "default / full: jobs.training_data.resolve_job_config with the budget (full: "
            "cross-entropy on the masks, no bounds, no sure map, no entropy term), trained on "
            "the hinted images at their own size (the trainer resizes), last epoch evaluated.",
        ],
        hd95_unit="px",
        dice_kind="2D Dice per image, mean over images",
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(p, PRESETS, ALL_METHODS, default=METHODS)
    add_service_args(p)
    args = p.parse_args(argv)
    methods = selected_methods(args.methods, ALL_METHODS)
    overrides = parse_overrides(args.overrides)
    if is_service_run(methods, args.hinted_from):
        bench = service_bench(args)
        return run_service(bench, methods, args.budget, overrides, args, argv, Path(__file__))
    preset = PRESETS[args.preset].with_overrides(overrides, args.limit, args.val_limit)
    label = preset.label(overrides, (args.limit, args.val_limit) != (None, None))
    data = Kvasir(args.data_dir, preset, args.seed)
    bench = Benchmark(
        key="kvasir",
        title="Kvasir-SEG: full masks vs simulated ellipse hints",
        classes=CLASSES,
        num_classes=NUM_CLASSES,
        build_samples=data.build_samples,
        evaluate=data.evaluate,
        method_facts=data.method_facts,
        method_train=method_train,
        facts={
            "split": f"seeded {TRAIN_FRACTION:.0%}/{1 - TRAIN_FRACTION:.0%} (seed {args.seed}); "
            f"{len(data.train_names)} training / {len(data.val_names)} validation images used",
            "evaluation": "2D Dice / HD95 per validation image on its original grid, "
            "mean over images",
            "annotator": (
                f"moment ellipse of the polyp mask, centre off by up to {JITTER_FRACTION:.0%} of "
                "the shorter side, semi-axes x U(1 +- 0.2), angle +- 15 deg, declared tolerance 0.2"
            ),
            "checkpoint evaluated": "last epoch (no model selection)",
        },
        notes=[
            "HD95 in px of the original image (no physical spacing); undefined (left out, counted) "
            "where the prediction is empty.",
            TIMING_NOTE,
        ],
        hd95_unit="px",
        dice_kind="2D Dice per image, mean over images",
    )
    return run(
        bench,
        methods,
        preset,
        label,
        args,
        argv,
        Path(__file__),
    )


if __name__ == "__main__":
    main()
