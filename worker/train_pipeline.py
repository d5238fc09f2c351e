"""A train job: hints + priors -> bounds per slice (``jobs.training_data``) ->
``models.train.train`` (progress written to the job row, cancel flag polled every step, checkpoints
in the job's scratch directory) -> checkpoint blob and a new immutable model version ->
prediction of every image of the project (``worker.predict_pipeline``) with a quality check."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from jobs.training_data import (
    NotTrainable,
    ProjectBounds,
    check_trainable,
    check_warm_start,
    job_options,
    project_bounds,
    project_facts,
    resolve_job_config,
)
from models.budget import device_type
from models.fitting import slice_sure_map
from store.db import session_scope
from store.jobs_tables import Job, ModelVersion
from store.tables import ReferenceMask
from worker import scratch
from worker.arrays import load_labels, load_volume
from worker.context import JobContext, JobError, resolved_device
from worker.payloads import config_dict, jsonable, progress_dict
from worker.predict_pipeline import predict_images


def train_job(ctx: JobContext) -> dict[str, Any]:
    """Train from hints, save a model version, predict every image; returns the job result."""
    from models.train import TrainSample, train

    with session_scope(ctx.engine) as session:
        job = session.get(Job, ctx.job_id)
        assert job is not None
        project_id, config = job.project_id, dict(job.config or {})
        warm_id = job.model_version_id
        options = job_options(config)
        use_refs = options["use_reference_masks"]
        pb = project_bounds(session, project_id, use_reference_masks=use_refs)
        warm: tuple[str, list[str]] | None = None
        warm_config: dict[str, Any] | None = None
        if warm_id is not None:
            mv = session.get(ModelVersion, warm_id)
            if mv is None or mv.project_id != project_id:
                raise JobError(f"model version {warm_id} of the warm start no longer exists")
            warm, warm_config = (mv.checkpoint_key, list(mv.class_names)), dict(mv.config or {})
        ref_keys = {
            r.image_id: r.mask_key
            for r in session.scalars(
                select(ReferenceMask).where(ReferenceMask.image_id.in_([im.id for im in pb.images]))
            )
        }
    try:
        check_trainable(pb)
        if warm is not None:
            check_warm_start(warm[1], pb.classes)
    except NotTrainable as exc:
        raise JobError(_not_trainable_message(exc, pb)) from None
    device = resolved_device(ctx.settings)
    try:
        cfg, _ = resolve_job_config(config, project_facts(pb), device, warm_config)
    except (ValueError, TypeError) as exc:
        raise JobError(f"invalid training config: {exc}") from None

    # Pixels: only the slices that carry bounds are read (memory-mapped, copied per slice).
    by_image: dict[int, list[Any]] = {}
    for sb in pb.slices:
        by_image.setdefault(sb.image_id, []).append(sb)
    samples: list[Any] = []
    key_of = {im.id: im.volume_key for im in pb.images}
    targets = cfg.training_fit
    if targets is not None:  # GrabCut takes a fraction of a second per class and slice
        ctx.report(
            {"phase": "fitting hints", "slices_done": 0, "slices": len(pb.slices)}, force=True
        )
    for image_id, sbs in by_image.items():
        ctx.check_stop()
        volume = load_volume(ctx.blobs, key_of[image_id], mmap=True)
        ref = None
        if use_refs and image_id in ref_keys:
            ref = load_labels(ctx.blobs, ref_keys[image_id], mmap=True)
        for sb in sbs:
            mask = np.array(ref[sb.z]) if ref is not None and sb.has_reference else None
            image = np.array(volume[sb.z])
            sure = slice_sure_map(image, [[], *sb.hints], targets, (sb.lo, sb.hi))
            samples.append(TrainSample(image, *sb.rows(), mask, sure))
            if targets is not None:  # a cancel is honoured between slices, not only images
                done = {"slices_done": len(samples), "slices": len(pb.slices)}
                ctx.report({"phase": "fitting hints", **done})
                ctx.check_stop()

    def on_progress(p: Any) -> None:
        d = progress_dict(p)
        d["phase"] = "training"
        ctx.report(d, force=_epoch_end(d))

    ctx.report({"phase": "training", "slices": len(samples)}, force=True)
    # A durable scratch directory (worker.scratch), not a temporary one: a requeued job, or one
    # submitted again after its worker was killed, resumes from the last.pt left there when its
    # inputs are unchanged; dead jobs' directories are swept.
    scratch.sweep(ctx.engine, ctx.settings)
    fingerprint = scratch.inputs_fingerprint(
        {
            "project": project_id,
            "classes": pb.classes,
            "unions": pb.unions,
            "config": {k: v for k, v in config_dict(cfg).items() if k != "resume"},
            "warm": warm[0] if warm is not None else None,
            "slices": [(sb.image_id, key_of[sb.image_id], sb.z, sb.lo, sb.hi) for sb in pb.slices],
            "references": {i: ref_keys[i] for i in by_image if use_refs and i in ref_keys},
        }
    )
    tmp, resume_from = scratch.prepare_job_dir(ctx.engine, ctx.settings, ctx.job_id, fingerprint)
    init, train_cfg = None, cfg
    if resume_from is not None:  # last.pt holds weights, optimiser state, epoch and t
        init, train_cfg = resume_from, dataclasses.replace(cfg, resume=True)
    elif warm is not None:
        init = tmp / "init.pt"
        ctx.blobs.download(warm[0], init)
    result = train(
        samples,
        len(pb.classes) + 1,
        train_cfg,
        device=device,
        progress=on_progress,
        should_stop=ctx.should_stop,
        init_checkpoint=init,
        out_dir=tmp / "out",
        unions=pb.unions,
    )
    ctx.check_stop()
    checkpoint_key = ctx.blobs.put_file(Path(result.checkpoint), ".pt")
    # The device type with the run's pace (seconds over steps) times later plans' estimates.
    metrics = jsonable(dict(result.metrics or {})) | {"device": device_type(device)}
    try:
        version = _create_version(
            ctx,
            project_id=project_id,
            checkpoint_key=checkpoint_key,
            config=jsonable(config_dict(cfg)) | {"job_options": options},
            metrics=metrics,
            class_names=pb.classes,
            epochs=int(result.epochs),
            parent_id=warm_id,
        )
    except BaseException:
        ctx.blobs.delete(checkpoint_key)  # no version row points at it
        raise
    ctx.keep_on_shutdown = True
    predicted = predict_images(ctx, project_id, version, check=by_image)
    return {
        "model_version_id": version.id,
        "version": version.version,
        "slices": len(samples),
        # classes bounded together (a ring and what fills its hole, e.g. "Myo+LV")
        "unions": [f"{pb.classes[r - 1]}+{pb.classes[c - 1]}" for r, c in pb.unions],
        "warnings": predicted["warnings"],
        "quality": predicted["quality"],
        # per class, the images without hints where it is predicted nowhere
        "missing_without_hints": predicted["missing_without_hints"],
        # slices supervised by a reference mask (uploaded, or corrected in Review)
        "reference_slices": sum(s.mask is not None for s in samples),
        "predictions": predicted["count"],
        # hinted slices predicted with the hints' vote (models.refine); of those, the slices
        # whose voted labels broke the hint's bounds and got the drawing instead
        "hint_refined_slices": predicted["hint_refined_slices"],
        "hint_drawn_slices": predicted["hint_drawn_slices"],
        "metrics": metrics,
        "reference_metrics": predicted["reference_metrics"],
    }


def _epoch_end(d: dict[str, Any]) -> bool:
    step, steps = d.get("step"), d.get("steps")
    return step is not None and steps is not None and step == steps


def _not_trainable_message(exc: NotTrainable, pb: ProjectBounds) -> str:
    """The failed job's error for a project that cannot be trained (``jobs.training_data``)."""
    if exc.code == "hint_conflict":
        first = "; ".join(p.message for p in exc.problems[:3])
        return f"{len(exc.problems)} hint/prior problem(s): {first}"
    if exc.code == "no_hints":
        return "nothing to train on: no slice has a hint (and the project has no prior)"
    return f"the warm-start model has classes {exc.warm_classes}, the project now has {pb.classes}"


def _create_version(ctx: JobContext, **fields: Any) -> ModelVersion:
    """A new immutable version numbered after the project's last one (retried on a race)."""
    for _ in range(5):
        try:
            with session_scope(ctx.engine) as session:
                last = session.scalar(
                    select(func.max(ModelVersion.version)).where(
                        ModelVersion.project_id == fields["project_id"]
                    )
                )
                mv = ModelVersion(version=(last or 0) + 1, job_id=ctx.job_id, **fields)
                session.add(mv)
                session.flush()
                session.refresh(mv)
                session.expunge(mv)
                return mv
        except IntegrityError:
            continue
    raise JobError("could not number the new model version (too many concurrent trainings)")
