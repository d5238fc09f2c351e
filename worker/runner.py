"""The work behind the Celery tasks, as plain functions (testable without a broker).

``run_job(job_id, worker, kind)`` claims a queued job, keeps a heartbeat going in a background
thread, runs the train or predict pipeline, and finishes the job row:

- train: hints + priors -> bounds per slice (``worker.training_data``) -> ``models.train.train``
  (progress written to the job row, cancel flag polled every step) -> checkpoint blob and a new
  immutable model version -> prediction of every image of the project;
- predict: the chosen (or latest) model version -> prediction of every image of the project.

Predicted label maps are stored as ``(Z, H, W)`` uint8 ``.npy`` blobs with a ``predictions`` row.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from models.regions import sure_map
from store.blobs import BlobStore, open_blob_store
from store.db import get_engine, session_scope
from store.hints import hints_by_slice
from store.jobs_tables import Job, ModelVersion, Prediction
from store.reviews import refresh_review_status
from store.settings import Settings, get_settings
from store.tables import Image, ReferenceMask
from worker import job_state, scratch
from worker.training_data import SliceBounds, project_bounds, project_facts, resolve_job_config

log = logging.getLogger(__name__)

# How often the job row is updated with progress (s); a heartbeat is written at least this often.
PROGRESS_INTERVAL_S = 0.5
# How often the cancel flag is read from the database while training (s).
CANCEL_POLL_S = 0.5


class JobCancelled(Exception):
    """The job's cancel flag was set (or the job stopped being ours)."""


class WorkerShuttingDown(Exception):
    """This worker was asked to stop; the job goes back to the queue."""


class JobError(Exception):
    """A failure whose message is meant for the user as it is."""


def _worker_shutting_down() -> bool:
    from worker.tasks import SHUTTING_DOWN

    return SHUTTING_DOWN.is_set()


class _Heartbeat(threading.Thread):
    """Writes ``heartbeat_at`` every ``interval`` s while the job runs (a dead process stops it)."""

    def __init__(self, engine: Engine, job_id: int, interval: float) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.engine, self.job_id, self.interval = engine, job_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                job_state.heartbeat(self.engine, self.job_id)
            except Exception:  # a transient database error; the next beat may succeed
                log.exception("heartbeat of job %s failed", self.job_id)


class _JobContext:
    """What a running job needs: its engine, blobs, settings, throttled progress and stop checks."""

    def __init__(self, engine: Engine, job_id: int, settings: Settings) -> None:
        self.engine, self.job_id, self.settings = engine, job_id, settings
        self.blobs = open_blob_store(settings)
        self._last_write = 0.0
        self._last_poll = 0.0
        self.stop_reason: Exception | None = None
        self.progress: dict[str, Any] = {}
        # Set once a train job has stored its model version: a worker shutdown then lets the
        # job finish its (short) predictions instead of requeueing it to train a second version.
        self.keep_on_shutdown = False

    def report(self, progress: dict[str, Any], *, force: bool = False) -> None:
        self.progress = progress
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_INTERVAL_S:
            self._last_write = now
            job_state.write_progress(self.engine, self.job_id, progress)

    def should_stop(self) -> bool:
        """True when the job must stop now; ``stop_reason`` says why. Cheap to call every step."""
        if self.stop_reason is not None:
            return True
        if _worker_shutting_down() and not self.keep_on_shutdown:
            self.stop_reason = WorkerShuttingDown()
            return True
        now = time.monotonic()
        if now - self._last_poll < CANCEL_POLL_S:
            return False
        self._last_poll = now
        status, cancel = job_state.status_and_cancel(self.engine, self.job_id)
        if cancel or status != "running":
            self.stop_reason = JobCancelled(
                "cancelled by request" if cancel else f"job is {status} elsewhere"
            )
            return True
        return False

    def check_stop(self) -> None:
        if self.should_stop():
            assert self.stop_reason is not None
            raise self.stop_reason


def run_job(
    job_id: int, *, worker: str, kind: str | None = None, settings: Settings | None = None
) -> str:
    """Claim and run one job; returns its final status (``skipped`` if it was not queued)."""
    settings = settings or get_settings()
    engine = get_engine(settings.resolved_database_url)
    if _worker_shutting_down():
        # Received while this worker stops: leave the job queued for the next worker.
        status, _ = job_state.status_and_cancel(engine, job_id)
        if status == "queued":
            from worker.celery_app import enqueue_job

            with session_scope(engine) as session:
                job = session.get(Job, job_id)
                enqueue_job(job_id, job.kind if job else (kind or "train"), settings)
            return "queued"
        return "skipped"
    if not job_state.claim(engine, job_id, worker):
        status, _ = job_state.status_and_cancel(engine, job_id)
        log.info("job %s not claimed (status %s): skipped", job_id, status)
        return "skipped"
    interval = max(0.2, min(10.0, settings.job_heartbeat_timeout_s / 4))
    beat = _Heartbeat(engine, job_id, interval)
    beat.start()
    ctx = _JobContext(engine, job_id, settings)
    try:
        with session_scope(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            job_kind = job.kind
        if kind is not None and kind != job_kind:
            raise JobError(f"job {job_id} is a {job_kind} job, but the {kind} task received it")
        result = train_job(ctx) if job_kind == "train" else predict_job(ctx)
        job_state.finish(engine, job_id, "succeeded", result=result, progress=ctx.progress)
        return "succeeded"
    except JobCancelled as exc:
        log.info("job %s stopped: %s", job_id, exc)
        job_state.finish(engine, job_id, "cancelled", error=None, progress=ctx.progress)
        return "cancelled"
    except WorkerShuttingDown:
        return _requeue(engine, job_id, settings)
    except Exception as exc:
        stopped = _stopped_by_trainer(exc)
        if stopped and isinstance(ctx.stop_reason, WorkerShuttingDown):
            return _requeue(engine, job_id, settings)
        if stopped:
            job_state.finish(engine, job_id, "cancelled", progress=ctx.progress)
            return "cancelled"
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        message = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
        job_state.finish(engine, job_id, "failed", error=message, progress=ctx.progress)
        return "failed"
    finally:
        beat.stopped.set()
        _drop_scratch_unless_queued(engine, job_id, settings)


def _drop_scratch_unless_queued(engine: Engine, job_id: int, settings: Settings) -> None:
    """A job that ended here needs its checkpoints no more; a requeued one resumes from them."""
    try:
        status, _ = job_state.status_and_cancel(engine, job_id)
        if status != "queued":
            scratch.remove_job_dir(settings, job_id)
    except Exception:  # the sweep removes it later
        log.exception("could not clean the scratch directory of job %s", job_id)


def _stopped_by_trainer(exc: Exception) -> bool:
    try:
        from models.train import TrainingStopped
    except ImportError:  # pragma: no cover - models.train is part of the package
        return False
    return isinstance(exc, TrainingStopped)


def _requeue(engine: Engine, job_id: int, settings: Settings) -> str:
    from worker.celery_app import enqueue_job

    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        kind = job.kind if job else "train"
    if job_state.requeue(engine, job_id):
        enqueue_job(job_id, kind, settings)
        job_state.mark_enqueued(engine, job_id)  # a crash before this: the reconciler re-sends
        log.info("job %s put back on the queue: this worker is shutting down", job_id)
        return "queued"
    return "skipped"


def _progress_dict(p: Any) -> dict[str, Any]:
    data = asdict(p) if is_dataclass(p) and not isinstance(p, type) else dict(vars(p))
    return {k: _jsonable(v) for k, v in data.items()}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if hasattr(v, "item") and callable(v.item):  # 0-d tensors
        try:
            return v.item()
        except (TypeError, ValueError, RuntimeError):
            return str(v)
    return v


def load_volume(blobs: BlobStore, key: str, *, mmap: bool = False) -> np.ndarray:
    """A canonical volume blob -> float32 ``(Z, C, H, W)``; with ``mmap`` a read-only memory
    map, so only the slices used are read."""
    arr = np.load(blobs.local_path(key), mmap_mode="r" if mmap else None, allow_pickle=False)
    return arr.astype(np.float32, copy=False)


def load_labels(blobs: BlobStore, key: str, *, mmap: bool = False) -> np.ndarray:
    """A reference-mask blob -> uint8 ``(Z, H, W)`` (read as stored, no float copy)."""
    arr = np.load(blobs.local_path(key), mmap_mode="r" if mmap else None, allow_pickle=False)
    return arr.astype(np.uint8, copy=False)


def _save_npy(blobs: BlobStore, array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return blobs.put_bytes(buf.getvalue(), ".npy")


def _resolved_device(settings: Settings) -> str:
    from models.device import resolve_device

    return str(resolve_device(settings.device))  # "cuda:1" stays that GPU


def train_job(ctx: _JobContext) -> dict[str, Any]:
    """Train from hints, save a model version, predict every image; returns the job result."""
    from models.train import TrainSample, train

    with session_scope(ctx.engine) as session:
        job = session.get(Job, ctx.job_id)
        assert job is not None
        project_id, config = job.project_id, dict(job.config or {})
        warm_id = job.model_version_id
        use_refs = bool(config.get("use_reference_masks", False))
        pb = project_bounds(session, project_id, use_reference_masks=use_refs)
        warm: tuple[str, list[str]] | None = None
        if warm_id is not None:
            mv = session.get(ModelVersion, warm_id)
            if mv is None or mv.project_id != project_id:
                raise JobError(f"model version {warm_id} of the warm start no longer exists")
            warm = (mv.checkpoint_key, list(mv.class_names))
        ref_keys = {
            r.image_id: r.mask_key
            for r in session.scalars(
                select(ReferenceMask).where(ReferenceMask.image_id.in_([im.id for im in pb.images]))
            )
        }
    if pb.problems:
        first = "; ".join(p.message for p in pb.problems[:3])
        raise JobError(f"{len(pb.problems)} hint/prior problem(s): {first}")
    if not pb.slices:
        raise JobError("nothing to train on: no slice has a hint (and the project has no prior)")
    if warm is not None and warm[1] != pb.classes:
        raise JobError(
            f"the warm-start model has classes {warm[1]}, the project now has {pb.classes}"
        )
    device = _resolved_device(ctx.settings)
    try:
        cfg, _ = resolve_job_config(config, project_facts(pb), device)
    except (ValueError, TypeError) as exc:
        raise JobError(f"invalid training config: {exc}") from None

    # Pixels: only the slices that carry bounds are read (memory-mapped, copied per slice).
    by_image: dict[int, list[Any]] = {}
    for sb in pb.slices:
        by_image.setdefault(sb.image_id, []).append(sb)
    samples: list[Any] = []
    key_of = {im.id: im.volume_key for im in pb.images}
    for image_id, sbs in by_image.items():
        ctx.check_stop()
        volume = load_volume(ctx.blobs, key_of[image_id], mmap=True)
        ref = None
        if use_refs and image_id in ref_keys:
            ref = load_labels(ctx.blobs, ref_keys[image_id], mmap=True)
        for sb in sbs:
            mask = np.array(ref[sb.z]) if ref is not None and sb.has_reference else None
            sure = sure_map([[], *sb.hints], sb.shape)
            samples.append(TrainSample(np.array(volume[sb.z]), *sb.rows(), mask, sure))

    def on_progress(p: Any) -> None:
        d = _progress_dict(p)
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
            "config": {k: v for k, v in _config_dict(cfg).items() if k != "resume"},
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
    metrics = _jsonable(dict(result.metrics or {}))
    try:
        version = _create_version(
            ctx,
            project_id=project_id,
            checkpoint_key=checkpoint_key,
            config=_jsonable(_config_dict(cfg))
            | {"job_options": {"use_reference_masks": use_refs}},
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


def _config_dict(cfg: Any) -> dict[str, Any]:
    if hasattr(cfg, "to_dict"):
        return dict(cfg.to_dict())
    if is_dataclass(cfg) and not isinstance(cfg, type):
        return asdict(cfg)
    return dict(vars(cfg))


def _create_version(ctx: _JobContext, **fields: Any) -> ModelVersion:
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


def predict_job(ctx: _JobContext) -> dict[str, Any]:
    """Predict every image of the project with the job's model version (default: the latest)."""
    with session_scope(ctx.engine) as session:
        job = session.get(Job, ctx.job_id)
        assert job is not None
        project_id = job.project_id
        query = select(ModelVersion).where(ModelVersion.project_id == project_id)
        if job.model_version_id is not None:
            query = query.where(ModelVersion.id == job.model_version_id)
        version = session.scalars(query.order_by(ModelVersion.version.desc())).first()
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
    }


def predict_images(
    ctx: _JobContext,
    project_id: int,
    version: ModelVersion,
    check: Mapping[int, Sequence[SliceBounds]] | None = None,
) -> dict[str, Any]:
    """Predict every image of the project with ``version``; store masks; evaluate references.

    Hinted slices are predicted with the hints' vote (``models.refine``) when the version's
    config has a ``hint_weight``. ``check``: per image the training slices whose predictions
    are measured against their bounds (``models.quality``); the result then has ``quality``
    and ``warnings``.
    """
    from models.infer import load_predictor
    from models.metrics import dice, hd95
    from models.quality import ClassTally, report, slice_tallies
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
        hinted: dict[int, dict[int, dict[str, list[Any]]]] = {}  # image -> z -> class -> hints
        if hint_weight > 0:
            for (image_id, z), by_class in hints_by_slice(session, [i[0] for i in images]).items():
                hinted.setdefault(image_id, {})[z] = by_class
    device = _resolved_device(ctx.settings)
    num_classes = len(version.class_names) + 1
    with tempfile.TemporaryDirectory(prefix=f"shapehint-job{ctx.job_id}-") as tmp:
        ckpt = Path(tmp) / "model.pt"
        ctx.blobs.download(version.checkpoint_key, ckpt)
        predictor = load_predictor(ckpt, device=device)
    per_class: dict[str, dict[str, list[float]]] = {"dice": {}, "hd95": {}}
    tallies: dict[int, list[ClassTally]] = {}
    image_dice: dict[int, dict[str, float | None]] = {}
    refined = {VOTED: 0, DRAWN: 0}
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
            voted = refine_labels(proba, votes, hint_weight, bounds)
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
        _store_prediction(ctx, image_id, version.id, labels, metrics)
    ctx.report(
        {"phase": "predicting", "images_done": len(images), "images": len(images)}, force=True
    )
    summary = {
        name: {cls: float(np.mean(v)) for cls, v in values.items()}
        for name, values in per_class.items()
    }
    summary["images"] = len(refs)  # type: ignore[assignment]
    out: dict[str, Any] = {
        "count": len(images),
        "reference_metrics": summary if refs else None,
        "hint_refined_slices": refined[VOTED] + refined[DRAWN],
        "hint_drawn_slices": refined[DRAWN],
    }
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
        for w in warnings:
            log.warning("job %s: %s", ctx.job_id, w)
        out |= {"quality": quality, "warnings": warnings}
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


def _store_prediction(
    ctx: _JobContext,
    image_id: int,
    version_id: int,
    labels: np.ndarray,
    metrics: dict[str, Any] | None,
) -> None:
    key = _save_npy(ctx.blobs, labels)
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
