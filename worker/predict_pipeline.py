"""A predict job, and the prediction of every image of a project with one model version (also the
end of a train job): ``(Z, H, W)`` uint8 ``.npy`` blobs with a ``predictions`` row each, metrics
against reference masks, the per-class quality check against the training bounds, and the
classes missed on images nobody hinted."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from jobs.training_data import SliceBounds
from store.db import session_scope
from store.hints import hints_by_slice
from store.jobs_tables import Job, ModelVersion, Prediction
from store.model_versions import latest_version
from store.reviews import refresh_review_status
from store.tables import Image, ReferenceMask
from worker.arrays import load_labels, load_volume, save_npy
from worker.context import JobContext, JobError, resolved_device

log = logging.getLogger(__name__)


def predict_job(ctx: JobContext) -> dict[str, Any]:
    """Predict every image of the project with the job's model version (default: the latest)."""
    with session_scope(ctx.engine) as session:
        job = session.get(Job, ctx.job_id)
        assert job is not None
        project_id = job.project_id
        version = latest_version(session, project_id, job.model_version_id)
        if version is None:
            raise JobError(
                "no model version to predict with: train the project first"
                if job.model_version_id is None
                else f"model version {job.model_version_id} no longer exists"
            )
        session.expunge(version)
    predicted = predict_images(ctx, project_id, version)
    return {
        "model_version_id": version.id,
        "version": version.version,
        "predictions": predicted["count"],
        "hint_refined_slices": predicted["hint_refined_slices"],
        "hint_drawn_slices": predicted["hint_drawn_slices"],
        "reference_metrics": predicted["reference_metrics"],
        "missing_without_hints": predicted["missing_without_hints"],
        "warnings": predicted["warnings"],
    }


def predict_images(
    ctx: JobContext,
    project_id: int,
    version: ModelVersion,
    check: Mapping[int, Sequence[SliceBounds]] | None = None,
) -> dict[str, Any]:
    """Predict every image of the project with ``version``; store masks; evaluate references.

    Hinted slices are predicted with the hints' vote (``models.refine``) when the version's
    config has a ``hint_weight``. The result's ``warnings`` name the classes hinted present in
    every hinted image that the model predicts nowhere in an image without hints
    (``missing_without_hints``, ``models.quality.missing_where_expected``). ``check``: per
    image the training slices whose predictions are measured against their bounds
    (``models.quality``); the result then has ``quality`` and warns about those too.
    """
    from models.fitting import fitted_shapes
    from models.infer import load_predictor
    from models.metrics import dice, hd95
    from models.quality import ClassTally, missing_where_expected, report, slice_tallies
    from models.refine import DRAWN, VOTED, hint_bounds, refine_labels

    with session_scope(ctx.engine) as session:
        images = [
            (im.id, im.volume_key, [float(s) for s in im.spacing])
            for im in session.scalars(
                select(Image).where(Image.project_id == project_id).order_by(Image.id)
            )
        ]
        refs = {
            r.image_id: (r.mask_key, r.slices)
            for r in session.scalars(
                select(ReferenceMask).where(ReferenceMask.image_id.in_([i[0] for i in images]))
            )
        }
        hint_weight = float((version.config or {}).get("hint_weight", 0.0))
        fit_hints = bool((version.config or {}).get("fit_hints", False))
        hinted: dict[int, dict[int, dict[str, list[Any]]]] = {}  # image -> z -> class -> hints
        for (image_id, z), by_class in hints_by_slice(session, [i[0] for i in images]).items():
            hinted.setdefault(image_id, {})[z] = by_class
    hinted_present = {
        image_id: {
            name
            for by_class in slices.values()
            for name, payloads in by_class.items()
            if any(p.get("present", True) is not False for p in payloads)
        }
        for image_id, slices in hinted.items()
    }
    if hint_weight <= 0:
        hinted = {}  # nothing to vote with
    device = resolved_device(ctx.settings)
    num_classes = len(version.class_names) + 1
    with tempfile.TemporaryDirectory(prefix=f"shapehint-job{ctx.job_id}-") as tmp:
        ckpt = Path(tmp) / "model.pt"
        ctx.blobs.download(version.checkpoint_key, ckpt)
        predictor = load_predictor(ckpt, device=device)
    per_class: dict[str, dict[str, list[float]]] = {"dice": {}, "hd95": {}}
    tallies: dict[int, list[ClassTally]] = {}
    image_dice: dict[int, dict[str, float | None]] = {}
    refined = {VOTED: 0, DRAWN: 0}
    predicted_present: dict[int, set[str]] = {}
    for n, (image_id, volume_key, spacing) in enumerate(images):
        ctx.check_stop()
        ctx.report({"phase": "predicting", "images_done": n, "images": len(images)}, force=n == 0)
        volume = load_volume(ctx.blobs, volume_key, mmap=True)  # read chunk by chunk
        labels = np.asarray(predictor.predict_volume(volume), dtype=np.uint8)
        if labels.shape != (volume.shape[0], volume.shape[2], volume.shape[3]):
            raise JobError(f"prediction of image {image_id} has shape {labels.shape}")
        # The quality check judges the model alone: on hinted slices the hints' vote would
        # hide a model that learned nothing.
        for sb in (check or {}).get(image_id, []):
            per_slice = slice_tallies(labels[sb.z], sb.lo, sb.hi)
            summed = tallies.setdefault(image_id, [ClassTally() for _ in per_slice])
            for total, t in zip(summed, per_slice, strict=True):
                total.add(t)
        for z, by_class in sorted(hinted.get(image_id, {}).items()):
            if not 0 <= z < labels.shape[0]:
                continue
            proba = predictor.predict_proba(np.asarray(volume[z : z + 1]))[0]
            votes = [[], *[by_class.get(name, []) for name in version.class_names]]
            rows_cols = (float(spacing[1]), float(spacing[2]))
            bounds = hint_bounds(votes, version.class_names, labels.shape[1:], rows_cols)
            fitted = fitted_shapes(np.asarray(volume[z]), votes, bounds) if fit_hints else None
            voted = refine_labels(proba, votes, hint_weight, bounds, fitted)
            if voted is not None:
                labels[z], how = voted
                refined[how] += 1
        metrics = None
        if image_id in refs:
            ref = load_labels(ctx.blobs, refs[image_id][0])
            zs = slice(None) if refs[image_id][1] is None else sorted(refs[image_id][1])
            metrics = _reference_metrics(  # only the labelled slices of a partial reference
                labels[zs], ref[zs], num_classes, version.class_names, spacing, dice, hd95
            )
            for name in ("dice", "hd95"):
                for cls, value in metrics[name].items():
                    if value is not None:
                        per_class[name].setdefault(cls, []).append(value)
            image_dice[image_id] = metrics["dice"]
        store_prediction(ctx, image_id, version.id, labels, metrics)
        counts = np.bincount(labels.ravel(), minlength=num_classes)
        predicted_present[image_id] = {
            name for k, name in enumerate(version.class_names, start=1) if counts[k]
        }
    ctx.report(
        {"phase": "predicting", "images_done": len(images), "images": len(images)}, force=True
    )
    summary = {
        name: {cls: float(np.mean(v)) for cls, v in values.items()}
        for name, values in per_class.items()
    }
    summary["images"] = len(refs)  # type: ignore[assignment]
    missing, missed = missing_where_expected(hinted_present, predicted_present, version.class_names)
    out: dict[str, Any] = {
        "count": len(images),
        "reference_metrics": summary if refs else None,
        "hint_refined_slices": refined[VOTED] + refined[DRAWN],
        "hint_drawn_slices": refined[DRAWN],
        "missing_without_hints": missing,
    }
    warnings: list[str] = []
    if check is not None:
        quality, warnings = report(tallies, version.class_names)
        for image_id, per_cls in quality["images"].items():
            for cls, d in per_cls.items():
                d["dice"] = image_dice.get(int(image_id), {}).get(cls)
        if refined[DRAWN]:
            warnings.append(
                f"on {refined[DRAWN]} of {refined[VOTED] + refined[DRAWN]} hinted slices the "
                "model's mask broke the hints' bounds: those slices got the drawn hints instead"
            )
        out["quality"] = quality
    out["warnings"] = warnings + missed
    for w in out["warnings"]:
        log.warning("job %s: %s", ctx.job_id, w)
    return out


def _reference_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    num_classes: int,
    class_names: list[str],
    spacing: list[float],
    dice: Any,
    hd95: Any,
) -> dict[str, dict[str, float | None]]:
    """Per-class Dice and HD95 (mm) of ``pred`` against ``ref`` (both ``(Z, H, W)``)."""
    d = dice(pred, ref, num_classes)
    h = hd95(pred, ref, num_classes, tuple(spacing))
    return {
        "dice": {class_names[k - 1]: _finite(d.get(k)) for k in range(1, num_classes)},
        "hd95": {class_names[k - 1]: _finite(h.get(k)) for k in range(1, num_classes)},
    }


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if np.isfinite(v) else None


def store_prediction(
    ctx: JobContext,
    image_id: int,
    version_id: int,
    labels: np.ndarray,
    metrics: dict[str, Any] | None,
) -> None:
    key = save_npy(ctx.blobs, labels)
    try:
        with session_scope(ctx.engine) as session:
            old = session.scalars(
                select(Prediction).where(
                    Prediction.image_id == image_id, Prediction.model_version_id == version_id
                )
            ).first()
            if old is not None:  # predicting again with the same version replaces the mask
                old_key = old.mask_key
                old.mask_key, old.job_id, old.metrics = key, ctx.job_id, metrics
            else:
                old_key = None
                session.add(
                    Prediction(
                        image_id=image_id,
                        model_version_id=version_id,
                        job_id=ctx.job_id,
                        mask_key=key,
                        metrics=metrics,
                    )
                )
                session.flush()
                # A newer model's mask starts unreviewed (reviews are per model version).
                refresh_review_status(session, image_id)
    except BaseException:
        ctx.blobs.delete(key)  # e.g. the image was deleted meanwhile (foreign key)
        raise
    if old_key:
        ctx.blobs.delete(old_key)
