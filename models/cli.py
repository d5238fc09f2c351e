"""``shapehint train`` / ``shapehint evaluate``: the models core from the command line.

Hints file (JSON)::

    {"classes": ["LV", "Myo"],                 # project classes, label k = classes[k-1]
     "spacing": [row_mm, col_mm],              # optional, needed for values in mm
     "priors": {"LV": {"presence": "always", "unit": "mm", "size": [300, 3000]}},  # optional
     "images": {"img001.png": {"LV": {...hint...}, "Myo": {"present": false}}}}

Image files (PNG / JPEG / TIFF / .npy ``(H, W)`` or ``(C, H, W)``) are looked up by their names
in the folder listing; names in the JSON are never turned into paths.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from models.channels import drop_equal_channels

app = typer.Typer(help="Train and evaluate descriptor-supervised models.")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"}
MAX_SIDE = 4096


def read_image(path: Path) -> np.ndarray:
    """An image file -> ``(C, H, W)`` float32 with C in {1, 3} (alpha dropped; three equal
    channels are one, :func:`models.channels.drop_equal_channels`)."""
    if path.suffix.lower() == ".npy":
        a = np.load(path, allow_pickle=False).astype(np.float32)
        a = a[None] if a.ndim == 2 else a
    else:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB") if im.mode in ("RGB", "RGBA", "P", "CMYK") else im.convert("F")
            a = np.asarray(im, dtype=np.float32)
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise typer.BadParameter(f"{path.name}: expected a grey or RGB image, got shape {a.shape}")
    if max(a.shape[1:]) > MAX_SIDE:
        raise typer.BadParameter(f"{path.name}: larger than {MAX_SIDE} px")
    return drop_equal_channels(a)


def read_labels(path: Path) -> np.ndarray:
    """A label-map file (PNG / TIFF / .npy) -> ``(H, W)`` uint8."""
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False).astype(np.uint8)
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def _listing(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder")
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def load_hinted_samples(
    images: Path, hints_file: Path, masks: Path | None = None, fit_targets: str | None = None
) -> tuple[list[Any], list[str], list[str]]:
    """Folder + hints JSON -> (TrainSample list, class names, image names); ``fit_targets``:
    the sure maps' band labelled by the drawings fitted to the images (``models.fitting``)."""
    from models import bounds as B
    from models.fitting import slice_sure_map
    from models.train import TrainSample

    spec = json.loads(hints_file.read_text())
    classes = spec.get("classes")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise typer.BadParameter("hints file needs a non-empty 'classes' list of names")
    spacing = tuple(spec["spacing"]) if spec.get("spacing") else None
    priors = {
        name: B.parse_prior(name, p, spacing=spacing) for name, p in spec.get("priors", {}).items()
    }
    unknown = set(priors) - set(classes)
    if unknown:
        raise typer.BadParameter(f"priors for unknown classes {sorted(unknown)}")
    files = _listing(images)
    mask_files = _listing(masks) if masks is not None else {}
    per_image = spec.get("images", {})
    missing = sorted(set(per_image) - set(files))
    if missing:
        raise typer.BadParameter(f"hinted images not in {images}: {missing[:5]}")
    samples, names = [], []
    for name, path in files.items():
        if name not in per_image:
            continue
        img = read_image(path)
        hint = per_image[name]
        per_class: list[Any] = [None]
        for cname in classes:
            cb = None
            if cname in hint:
                cb = B.parse_hint(cname, hint[cname], spacing=spacing, shape=img.shape[1:])
            if cname in priors:
                cb = priors[cname] if cb is None else B.intersect(cb, priors[cname], cname)
            per_class.append(cb)
        lo, hi = B.stack(per_class)
        mask = None
        stem_matches = [p for n, p in mask_files.items() if Path(n).stem == Path(name).stem]
        if stem_matches:
            mask = read_labels(stem_matches[0])
        sure = slice_sure_map(img, _slice_hints(hint, classes), fit_targets, (lo, hi))
        samples.append(TrainSample(img, lo, hi, mask, sure))
        names.append(name)
    if not samples:
        raise typer.BadParameter("no image in the folder has hints")
    return samples, list(classes), names


def _slice_hints(hint: Mapping[str, Any], classes: Sequence[str]) -> list[list[Any]]:
    """One image's hints JSON -> per class (background first, never hinted) its hint list."""
    return [[], *([hint[c]] if c in hint else [] for c in classes)]


def fit_sure_maps(
    samples: list[Any], names: Sequence[str], hints_file: Path, classes: Sequence[str], targets: str
) -> list[Any]:
    """``samples`` (from :func:`load_hinted_samples`, same ``names``) with their sure maps'
    band labelled by the drawings fitted to the images; the pixels are not read again."""
    from models.fitting import slice_sure_map

    per_image = json.loads(hints_file.read_text())["images"]
    return [
        dataclasses.replace(
            s,
            sure=slice_sure_map(
                s.image, _slice_hints(per_image[n], classes), targets, (s.lo, s.hi)
            ),
        )
        for s, n in zip(samples, names, strict=True)
    ]


@app.command("train")
def train_cmd(
    images: Path = typer.Argument(..., help="Folder of images (PNG/JPEG/TIFF/.npy)"),
    hints: Path = typer.Argument(..., help="Hints JSON (see `models/cli.py` docstring)"),
    out: Path = typer.Option(Path("shapehint-model"), help="Output folder for model.pt"),
    preset: str = typer.Option("", help="cpu-fast | paper (default: sized by the budget)"),
    budget: str = typer.Option(
        "standard", help="quick | standard | thorough | seconds (without a preset)"
    ),
    config: str = typer.Option("{}", help="JSON overrides of TrainConfig fields"),
    masks: Path | None = typer.Option(
        None, help="Optional folder of reference label maps (validation)"
    ),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
) -> None:
    """Train a segmentation model from hints only."""
    from models.bounds import BoundsError
    from models.budget import facts_from_bounds, resolve_config
    from models.device import resolve_device
    from models.train import Progress, train

    try:
        samples, classes, names = load_hinted_samples(images, hints, masks)
        overrides = json.loads(config)
        if preset:
            overrides = {"preset": preset, **overrides}
        elif "budget" not in overrides:
            overrides["budget"] = float(budget) if budget.replace(".", "", 1).isdigit() else budget
        facts = facts_from_bounds(
            [(s.lo, s.hi) for s in samples],
            [s.image.shape[1:] for s in samples],
            max((s.image.shape[0] for s in samples), default=1),
        )
        cfg, seconds = resolve_config(overrides, facts, str(resolve_device(device)))
        if cfg.training_fit is not None:  # the sure maps again, from the fitted drawings
            typer.echo("fitting the drawn hints to the images (GrabCut)")
            samples = fit_sure_maps(samples, names, hints, classes, cfg.training_fit)
    except (BoundsError, ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(f"training about {seconds / 60:.1f} min: {json.dumps(cfg.to_dict())}")

    def report(p: Progress) -> None:
        if p.metrics or p.step == p.steps:
            extra = f" val_dice={p.metrics['val_dice']:.3f}" if "val_dice" in p.metrics else ""
            typer.echo(
                f"epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} loss={p.loss:.4f}{extra}"
                + ("" if p.eta_s is None else f" about {p.eta_s:.0f} s left")
            )

    result = train(samples, len(classes) + 1, cfg, device=device, progress=report, out_dir=out)
    typer.echo(f"model: {result.checkpoint}")
    typer.echo(json.dumps({k: v for k, v in result.metrics.items()}, default=str))


@app.command("evaluate")
def evaluate_cmd(
    checkpoint: Path = typer.Argument(..., help="model.pt from `shapehint train`"),
    images: Path = typer.Argument(..., help="Folder of images"),
    masks: Path = typer.Argument(..., help="Folder of reference label maps (same file stems)"),
    spacing: str = typer.Option("1,1", help="row_mm,col_mm for HD95"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
) -> None:
    """Dice and HD95 (mm) per class of a model against reference masks; prints JSON."""
    from models.infer import load_predictor
    from models.metrics import dice, hd95

    pred = load_predictor(checkpoint, device=device)
    try:
        sp = tuple(float(v) for v in spacing.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"spacing must be 'row_mm,col_mm', got {spacing!r}") from exc
    refs = {Path(n).stem: p for n, p in _listing(masks).items()}
    per_class: dict[int, dict[str, list[float]]] = {}
    count = 0
    for name, path in _listing(images).items():
        if Path(name).stem not in refs:
            continue
        labels = pred.predict_image(read_image(path))
        ref = read_labels(refs[Path(name).stem])
        if ref.shape != labels.shape:
            raise typer.BadParameter(f"{name}: mask shape {ref.shape} != image {labels.shape}")
        for k, v in dice(labels, ref, pred.num_classes).items():
            per_class.setdefault(k, {"dice": [], "hd95": []})["dice"].append(v)
        for k, v in hd95(labels, ref, pred.num_classes, sp).items():
            per_class[k]["hd95"].append(v)
        count += 1
    if count == 0:
        raise typer.BadParameter("no image has a matching mask")
    summary = {
        str(k): {
            "dice": float(np.mean(v["dice"])),
            "hd95_mm": float(np.nanmean(v["hd95"])) if not all(np.isnan(v["hd95"])) else None,
        }
        for k, v in per_class.items()
    }
    typer.echo(json.dumps({"images": count, "classes": summary}))
