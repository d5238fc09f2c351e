"""Trainer: descriptor-constrained (and optionally mask-supervised) segmentation training.

Device-agnostic (CUDA with autocast when available, CPU otherwise), seeded. Every sample is
min-max normalised and resized to a square ``grid``; its bounds are transformed with it
(``models.transforms``). Checkpoints are single files (see ``save_checkpoint``) from which
``models.infer.load_predictor`` rebuilds everything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.budget import MIN_EPOCHS, barrier_mu, budget_seconds, plan_epochs
from models.config import TrainConfig
from models.device import resolve_device
from models.losses import (
    constraint_loss,
    masked_cross_entropy,
    pairwise_loss,
    sure_region_loss,
    violation_share,
)
from models.networks import build_network
from models.transforms import (
    AugmentConfig,
    augment,
    normalise_image,
    resize_bounds,
    resize_image,
    resize_mask,
)
from models.units import COMPONENTS

clock: Callable[[], float] = time.monotonic
"""Seconds (monotonic) for budgets and time estimates; tests replace it with a fake timer."""
CHECKPOINT_NAME = "model.pt"
WARMUP_STEPS = 4
"""Steps timed (after the first) before a budgeted run re-plans its epochs."""
LAST_NAME = "last.pt"
M = len(COMPONENTS)


class TrainingStopped(Exception):
    """Raised inside ``train`` when ``should_stop()`` returned true."""


@dataclass
class TrainSample:
    """One training slice in its own pixel grid.

    ``image (C, H, W)`` float32 (C in {1, 3}); ``lo``, ``hi`` ``(K, M)`` bounds in px of this
    image (``models.bounds.stack``); ``mask (H, W)`` uint8 reference labels or None; ``sure``
    ``(K, H, W)`` int8 pixels the hints are sure about (``models.regions.sure_map``) or None.
    """

    image: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    mask: np.ndarray | None = None
    sure: np.ndarray | None = None


@dataclass
class Progress:
    """Reported to the ``progress`` callback: position, current loss and its terms, metrics."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    terms: dict[str, float]
    metrics: dict[str, Any]
    elapsed_s: float = 0.0  # seconds since training started
    eta_s: float | None = None  # estimated seconds left (mean time per step so far x steps left)


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]
    epochs: int


@dataclass
class _Prepared:
    images: torch.Tensor  # (N, C, G, G) in [0, 1]
    lo: torch.Tensor  # (N, K, M)
    hi: torch.Tensor
    masks: torch.Tensor  # (N, G, G) int64, zeros where no mask
    has_mask: torch.Tensor  # (N,) bool
    sure: torch.Tensor | None = None  # (N, K, G, G) int8, zeros where no hint is sure; None: none


def prepare(
    samples: Sequence[TrainSample], num_classes: int, grid: int, num_unions: int = 0
) -> _Prepared:
    """Validate samples and bring them onto the ``grid x grid`` training grid (bounds ``(K + U,
    M)``: the classes', then ``num_unions`` unions of classes, see :func:`train`)."""
    if not samples:
        raise ValueError("no training samples")
    channels = samples[0].image.shape[0]
    imgs, los, his, masks, has, sures = [], [], [], [], [], []
    any_sure = any(s.sure is not None for s in samples)
    for i, s in enumerate(samples):
        if s.image.ndim != 3 or s.image.shape[0] not in (1, 3):
            raise ValueError(f"sample {i}: image must be (C, H, W) with C in 1 or 3")
        if s.image.shape[0] != channels:
            raise ValueError(f"sample {i}: {s.image.shape[0]} channels, others have {channels}")
        rows = num_classes + num_unions
        if s.lo.shape != (rows, M) or s.hi.shape != (rows, M):
            raise ValueError(f"sample {i}: bounds must be ({rows}, {M})")
        h, w = s.image.shape[1:]
        img = torch.from_numpy(np.array(s.image, dtype=np.float32, copy=True))[None]
        imgs.append(resize_image(normalise_image(img), (grid, grid))[0])
        lo, hi = resize_bounds(
            torch.from_numpy(np.asarray(s.lo, np.float32)),
            torch.from_numpy(np.asarray(s.hi, np.float32)),
            (h, w),
            (grid, grid),
        )
        los.append(lo)
        his.append(hi)
        if s.mask is not None:
            if s.mask.shape != (h, w):
                raise ValueError(f"sample {i}: mask shape {s.mask.shape} != image {(h, w)}")
            if int(s.mask.max()) >= num_classes:
                raise ValueError(f"sample {i}: mask label {int(s.mask.max())} >= {num_classes}")
            m = torch.from_numpy(np.asarray(s.mask, dtype=np.int64))[None]
            masks.append(resize_mask(m, (grid, grid))[0])
            has.append(True)
        else:
            masks.append(torch.zeros(grid, grid, dtype=torch.int64))
            has.append(False)
        if s.sure is not None:
            if s.sure.shape != (num_classes, h, w):
                raise ValueError(f"sample {i}: sure map must be ({num_classes}, {h}, {w})")
            sure = torch.from_numpy(np.asarray(s.sure, dtype=np.int64))
            sures.append(resize_mask(sure, (grid, grid)).to(torch.int8))
        elif any_sure:
            sures.append(torch.zeros(num_classes, grid, grid, dtype=torch.int8))
    return _Prepared(
        torch.stack(imgs),
        torch.stack(los),
        torch.stack(his),
        torch.stack(masks),
        torch.tensor(has),
        torch.stack(sures) if any_sure else None,
    )


def class_prior(data: _Prepared, num_classes: int) -> torch.Tensor:
    """Expected area fraction ``(K,)`` of each class from the size bounds (interval midpoints
    where both ends are finite, else an equal share of what is left), summing to 1."""
    n = data.lo.shape[0]
    area = float(data.images.shape[-1] * data.images.shape[-2])
    lo, hi = data.lo[:, :num_classes, 0], data.hi[:, :num_classes, 0]
    known = torch.isfinite(lo) & torch.isfinite(hi)
    mid = torch.where(known, (lo.clamp_min(0) + hi) / 2, torch.zeros_like(lo)) / area
    frac = mid.sum(0) / n  # mean over samples, unknown counted as 0
    unknown = (~known).float().mean(0)  # share of samples where the class size is unknown
    rest = (1.0 - frac.sum()).clamp_min(0.05)
    frac = frac + unknown * rest / unknown.sum().clamp_min(1e-6)
    frac = frac.clamp_min(1e-3)
    return frac / frac.sum()


def save_checkpoint(
    path: Path,
    net: torch.nn.Module,
    cfg: TrainConfig,
    num_classes: int,
    channels: int,
    extra: dict[str, Any] | None = None,
) -> None:
    """One self-contained file: network name + kwargs + weights, classes, channels, grid,
    normalisation and config (plus optional resume state in ``extra``)."""
    state = {
        "format": "shapehint-model-1",
        "network": cfg.network,
        "network_kwargs": dict(cfg.network_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "num_classes": num_classes,
        "channels": channels,
        "grid": cfg.grid,
        "normalisation": "minmax",
        "config": cfg.to_dict(),
    }
    if extra:
        state.update(extra)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: readers never see half a checkpoint


def _dice_on_grid(pred: torch.Tensor, ref: torch.Tensor, k: int) -> dict[int, float]:
    out = {}
    for c in range(1, k):
        p, r = pred == c, ref == c
        denom = int(p.sum() + r.sum())
        out[c] = 1.0 if denom == 0 else float(2 * (p & r).sum()) / denom
    return out


def _validate(
    net: torch.nn.Module, data: _Prepared, k: int, device: torch.device, batch: int
) -> dict[str, Any]:
    idx = torch.nonzero(data.has_mask).flatten()
    if len(idx) == 0:
        return {}
    net.eval()
    per_class: dict[int, list[float]] = {c: [] for c in range(1, k)}
    with torch.no_grad():
        for start in range(0, len(idx), batch):
            sel = idx[start : start + batch]
            pred = net(data.images[sel].to(device)).argmax(1).cpu()
            for j, i in enumerate(sel.tolist()):
                for c, d in _dice_on_grid(pred[j], data.masks[i], k).items():
                    per_class[c].append(d)
    net.train()
    means = {c: float(np.mean(v)) for c, v in per_class.items()}
    return {"val_dice": float(np.mean(list(means.values()))), "val_dice_per_class": means}


def train(
    samples: Sequence[TrainSample],
    num_classes: int,
    config: TrainConfig,
    *,
    device: str | torch.device = "auto",
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_checkpoint: Path | str | None = None,
    out_dir: Path,
    unions: Sequence[Sequence[int]] = (),
) -> TrainResult:
    """Train a network on ``samples`` (K = ``num_classes`` including background).

    ``unions``: groups of class labels whose probabilities are also constrained summed (a ring
    and the class that fills its hole); the samples' bounds then have ``K + len(unions)`` rows,
    the classes' first.

    Writes ``out_dir/model.pt`` (best validation Dice where masks exist, else the last epoch)
    and ``out_dir/last.pt`` (with optimiser state, for ``resume``). ``init_checkpoint``: warm
    start from its weights, or with ``config.resume`` continue its run. ``should_stop`` is
    polled every step; when it returns true, ``TrainingStopped`` is raised (the files written
    so far stay valid).
    """
    cfg = config
    cfg.validate()
    if num_classes < 2:
        raise ValueError("num_classes counts the background too: need >= 2")
    dev = resolve_device(device)
    threads = torch.get_num_threads()
    if cfg.num_threads and dev.type == "cpu":
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train(
            samples,
            num_classes,
            cfg,
            dev,
            progress,
            should_stop,
            init_checkpoint,
            Path(out_dir),
            union_matrix(unions, num_classes),
        )
    finally:
        torch.set_num_threads(threads)  # the setting is process-wide: give it back


def _train(
    samples: Sequence[TrainSample],
    num_classes: int,
    cfg: TrainConfig,
    dev: torch.device,
    progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    init_checkpoint: Path | str | None,
    out_dir: Path,
    unions: torch.Tensor,
) -> TrainResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    started = clock()

    data = prepare(samples, num_classes, cfg.grid, len(unions))
    if not cfg.ring_unions:  # an ablation: the classes' own bounds only
        data.lo, data.hi, unions = data.lo[:, :num_classes], data.hi[:, :num_classes], unions[:0]
    unions = unions.to(dev)
    n, channels = data.images.shape[0], data.images.shape[1]
    net = build_network(cfg.network, channels, num_classes, **cfg.network_kwargs).to(dev)
    opt = torch.optim.Adam(
        net.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = cfg.steps_per_epoch or math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    start_epoch, t = 0, cfg.t0
    best: float | None = None
    best_epoch = -1
    if init_checkpoint is not None:
        ck = torch.load(init_checkpoint, map_location="cpu", weights_only=False)
        if (ck["network"], ck["num_classes"], ck["channels"]) != (
            cfg.network,
            num_classes,
            channels,
        ):
            raise ValueError(
                "init_checkpoint does not match: "
                f"{ck['network']}/{ck['num_classes']} classes/{ck['channels']} channels vs "
                f"{cfg.network}/{num_classes}/{channels}"
            )
        net.load_state_dict(ck["state_dict"])
        if cfg.resume and "resume" in ck:
            r = ck["resume"]
            opt.load_state_dict(r["optimizer"])
            start_epoch, t = int(r["epoch"]), float(r["t"])
            best, best_epoch = r.get("best"), int(r.get("best_epoch", -1))
            rng = np.random.default_rng([cfg.seed, start_epoch])
            if cfg.budget is not None:  # the length the interrupted run re-planned to
                for name in ("epochs", "mu", "val_every"):
                    setattr(cfg, name, ck["config"][name])
                total_steps = steps_per_epoch * cfg.epochs
    else:
        # Start from the class proportions the bounds imply: the constraints are then nearly
        # met at step 0 and training spends its steps on where things are, not how much.
        bias = getattr(net.output_layer, "bias", None)
        if bias is not None:
            with torch.no_grad():
                bias.copy_(torch.log(class_prior(data, num_classes)).to(bias.device))
    sched = None
    if cfg.lr_schedule == "cosine":
        offset = start_epoch * steps_per_epoch  # a resumed run continues the same curve

        def cosine(s: int) -> float:
            done = min(s + offset, total_steps) / total_steps  # total_steps: re-planned below
            return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine)

    use_amp = cfg.amp and dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    aug_cfg = AugmentConfig(
        p_flip=cfg.p_flip,
        p_transpose=cfg.p_transpose,
        p_zoom=cfg.p_zoom,
        zoom_range=(cfg.zoom_min, 1.0),
        p_intensity=cfg.p_intensity,
        p_blur=cfg.p_blur,
    )
    ce_on = cfg.ce_weight > 0 and bool(data.has_mask.any())
    metrics: dict[str, Any] = {}
    best_path, last_path = out_dir / CHECKPOINT_NAME, out_dir / LAST_NAME
    step = start_epoch * steps_per_epoch
    order = np.array([], dtype=np.int64)
    loss_val, term_vals = float("nan"), {}
    net.train()
    epoch = start_epoch
    first_step = step

    def timed(
        ep: int, eps: int, st: int, total: int, lv: float, tv: dict[str, float], m: dict[str, Any]
    ) -> Progress:
        elapsed = clock() - started
        done = max(1, st - first_step)
        eta = elapsed / done * max(0, total - st)
        return Progress(ep + 1, eps, st, total, lv, tv, m, elapsed, eta)

    replan_at = step + WARMUP_STEPS if cfg.budget is not None and start_epoch == 0 else -1
    warm_started = 0.0
    while epoch < cfg.epochs:
        for _ in range(steps_per_epoch):
            if step == replan_at - WARMUP_STEPS + 1:
                warm_started = clock()  # the first step (allocations) is not typical
            if step == replan_at:
                per_step = (clock() - warm_started) / (WARMUP_STEPS - 1)
                left = budget_seconds(cfg.budget, dev.type) - (clock() - started)
                cfg.epochs = plan_epochs(left + step * per_step, per_step, steps_per_epoch)
                cfg.mu = barrier_mu(cfg)
                cfg.val_every = max(1, cfg.epochs // 10)
                total_steps = steps_per_epoch * cfg.epochs
            if should_stop is not None and should_stop():
                raise TrainingStopped(f"stopped at epoch {epoch}, step {step}")
            if len(order) < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(n)])
            idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
            imgs, masks, sure, los, his = _batch(data, idx, rng, aug_cfg if cfg.augment else None)
            imgs, masks, los, his = imgs.to(dev), masks.to(dev), los.to(dev), his.to(dev)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                logits = net(imgs)
            logits = logits.float()
            probs = torch.softmax(logits, 1)
            constrained = probs
            if len(unions):
                constrained = torch.cat([probs, torch.einsum("uk,bkhw->buhw", unions, probs)], 1)
            loss, terms = constraint_loss(
                constrained,
                los,
                his,
                t=t,
                kind=cfg.loss,
                weights=cfg.weights,
                units=cfg.loss_units,
            )
            if cfg.entropy_weight > 0:
                ramp = min(1.0, step / max(1.0, 0.5 * total_steps))
                ent = -(probs * torch.log(probs.clamp_min(1e-8))).sum(1).mean()
                loss = loss + cfg.entropy_weight * ramp * ent
                terms["entropy"] = ent.detach()
            if ce_on:
                ce = masked_cross_entropy(logits, masks, data.has_mask[idx].to(dev))
                loss = loss + cfg.ce_weight * ce
                terms["ce"] = ce.detach()
            if sure is not None and cfg.sure_weight > 0:
                sr = sure_region_loss(probs, sure.to(dev))
                loss = loss + cfg.sure_weight * sr
                terms["sure"] = sr.detach()
            if cfg.pairwise_weight > 0:
                pw = pairwise_loss(probs, imgs, cfg.pairwise_sigma)
                loss = loss + cfg.pairwise_weight * pw
                terms["pairwise"] = pw.detach()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if sched is not None:
                sched.step()
            step += 1
            if progress is not None and (step % cfg.progress_every == 0 or step == total_steps):
                loss_val = float(loss.detach())
                term_vals = {k: float(v) for k, v in terms.items()}
                metrics = {**metrics, "violation": violation_share(constrained, los, his)}
                progress(timed(epoch, cfg.epochs, step, total_steps, loss_val, term_vals, metrics))
        loss_val = float(loss.detach())
        term_vals = {k: float(v) for k, v in terms.items()}
        t = min(t * cfg.mu, cfg.t_max)
        if replan_at >= 0 and step > replan_at:  # budgeted: still within the budget?
            per_step = (clock() - warm_started) / (step - (replan_at - WARMUP_STEPS + 1))
            left = budget_seconds(cfg.budget, dev.type) - (clock() - started)
            _shorten_to_budget(cfg, epoch, t, left / max(per_step * steps_per_epoch, 1e-9))
            total_steps = steps_per_epoch * cfg.epochs
        last_epoch = epoch + 1 == cfg.epochs
        if (epoch + 1) % cfg.val_every == 0 or last_epoch:
            val = _validate(net, data, num_classes, dev, cfg.batch_size)
            kept = {k: metrics[k] for k in ("violation",) if k in metrics}  # latest step's
            metrics = {**val, "train_loss": loss_val, "t": t, **kept}
            improved = "val_dice" in val and (best is None or val["val_dice"] > best)
            if improved:
                best, best_epoch = val["val_dice"], epoch + 1
                save_checkpoint(best_path, net, cfg, num_classes, channels, {"epoch": epoch + 1})
            elif "val_dice" not in val and last_epoch:
                save_checkpoint(best_path, net, cfg, num_classes, channels, {"epoch": epoch + 1})
            save_checkpoint(
                last_path,
                net,
                cfg,
                num_classes,
                channels,
                {
                    "epoch": epoch + 1,
                    "resume": {
                        "optimizer": opt.state_dict(),
                        "epoch": epoch + 1,
                        "t": t,
                        "best": best,
                        "best_epoch": best_epoch,
                    },
                },
            )
            if progress is not None:
                progress(timed(epoch, cfg.epochs, step, total_steps, loss_val, term_vals, metrics))
        epoch += 1
    if not best_path.exists():  # resumed past the end or never validated
        save_checkpoint(best_path, net, cfg, num_classes, channels, {"epoch": cfg.epochs})
    final = dict(metrics)
    if best is not None:
        final["best_val_dice"] = best
        final["best_epoch"] = best_epoch
    final["seconds"] = clock() - started
    final["steps"] = step
    return TrainResult(checkpoint=best_path, metrics=final, epochs=cfg.epochs)


def _shorten_to_budget(cfg: TrainConfig, epoch: int, t: float, epochs_left: float) -> None:
    """After epoch ``epoch`` (0-based) of a budgeted run, with time for ``epochs_left`` more
    epochs at the pace timed since the warm-up: when the planned epochs no longer fit (a machine
    that got busy), end earlier, with the barrier's growth and the validation rhythm fitted to
    the new length. Never lengthens a run, never below ``MIN_EPOCHS``."""
    fit = epoch + 1 + int(max(0.0, epochs_left))
    if fit >= cfg.epochs:
        return
    cfg.epochs = max(fit, MIN_EPOCHS, epoch + 1)
    if t < cfg.t_max:  # t still reaches t_max after 70 % of the new length
        cfg.mu = float(cfg.t_max / t) ** (1.0 / max(1, int(cfg.epochs * 0.7) - (epoch + 1)))
    cfg.val_every = max(1, cfg.epochs // 10)


def union_matrix(unions: Sequence[Sequence[int]], num_classes: int) -> torch.Tensor:
    """Membership ``(U, K)`` float32 of each union of class labels (1..K-1; background 0 is
    never part of one)."""
    out = torch.zeros(len(unions), num_classes)
    for u, labels in enumerate(unions):
        if len(set(labels)) < 2 or not all(0 < int(k) < num_classes for k in labels):
            raise ValueError(
                f"union {list(labels)}: needs two or more class labels in 1..{num_classes - 1}"
            )
        out[u, [int(k) for k in labels]] = 1.0
    return out


def _batch(
    data: _Prepared, idx: np.ndarray, rng: np.random.Generator, aug: AugmentConfig | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Images, masks, sure maps (or None), lo, hi of the samples ``idx``, augmented alike."""
    ti = torch.from_numpy(idx)
    imgs, masks, los, his = data.images[ti], data.masks[ti], data.lo[ti], data.hi[ti]
    sure = None if data.sure is None else data.sure[ti]
    if aug is None:
        return imgs, masks, sure, los, his
    # Mask and sure maps are label maps on the same grid: one stack, one set of transforms.
    labels = masks[:, None] if sure is None else torch.cat([masks[:, None], sure.long()], 1)
    out = [augment(imgs[j], labels[j], los[j], his[j], rng, aug) for j in range(len(idx))]
    imgs, labels, los, his = (torch.stack([o[i] for o in out]) for i in range(4))
    sure = None if sure is None else labels[:, 1:].to(torch.int8)
    return imgs, labels[:, 0], sure, los, his
