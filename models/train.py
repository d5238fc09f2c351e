"""Trainer: descriptor-constrained (and optionally mask-supervised) segmentation training.

Device-agnostic (CUDA with autocast when available, CPU otherwise), seeded. Every sample is
min-max normalised and resized to a square ``grid``; its bounds are transformed with it
(``models.transforms``). Checkpoints are single files (``models.checkpoints``) from which
``models.infer.load_predictor`` rebuilds everything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel

from models.averaging import averaged_network
from models.budget import MIN_EPOCHS, barrier_mu, budget_seconds, epoch_ceiling, plan_epochs
from models.checkpoints import CHECKPOINT_NAME, LAST_NAME, load_init, save_checkpoint, save_last
from models.config import TrainConfig
from models.device import resolve_device
from models.losses import (
    constraint_loss,
    masked_cross_entropy,
    pairwise_loss,
    scheduled_weights,
    sure_region_loss,
    violation_share,
)
from models.networks import build_network
from models.pseudo import pseudo_masks, round_epochs
from models.samples import (
    Prepared,
    TrainSample,
    batch,
    class_prior,
    one_hot_maps,
    open_labelled_bounds,
    prepare,
    with_unions,
)
from models.transforms import AugmentConfig, resolve_normalisation
from models.validation import validate

__all__ = [
    "CHECKPOINT_NAME",
    "LAST_NAME",
    "Progress",
    "TrainConfig",
    "TrainResult",
    "TrainSample",
    "TrainingStopped",
    "prepare",
    "train",
]

clock: Callable[[], float] = time.monotonic
"""Seconds (monotonic) for budgets and time estimates; tests replace it with a fake timer."""
WARMUP_STEPS = 4
"""Steps timed (after the first) before a budgeted run re-plans its epochs."""
LENGTHEN_SHARE = 0.25
"""The share of its epochs during which a budgeted run may still lengthen: its warm-up steps
time slower than the rest (a 120 s budget re-planned from them used to end after ~100 s)."""
LENGTHEN_MARGIN = 0.05
"""The share of its time a lengthened run keeps spare (and twice that the pace must leave
before it lengthens), so that the pace's noise neither shortens it again nor lengthens it by
the epoch."""


class TrainingStopped(Exception):
    """Raised inside ``train`` when ``should_stop()`` returned true."""


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
class _Run:
    """What changes over a run: its length (re-planned by a budget), the barrier ``t``, the best
    validation Dice so far and the latest metrics."""

    steps_per_epoch: int
    total_steps: int
    t: float
    start_epoch: int = 0
    best: float | None = None
    best_epoch: int = -1
    metrics: dict[str, Any] = field(default_factory=dict)
    rounds_done: int = 0  # self-training rounds (models.pseudo) so far


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

    if samples:  # in place, as the budget's re-plan: the config as trained, never "auto"
        cfg.normalisation = resolve_normalisation(cfg.normalisation, samples[0].image.shape[0])
    data = prepare(
        samples, num_classes, cfg.grid, len(unions), cfg.normalisation, cfg.remeasure_bounds
    )
    if not cfg.ring_unions:  # an ablation: the classes' own bounds only
        data.lo, data.hi, unions = data.lo[:, :num_classes], data.hi[:, :num_classes], unions[:0]
    unions = unions.to(dev)
    batch_unions = unions.cpu()  # augmentation measures union rows on the CPU
    n, channels = data.images.shape[0], data.images.shape[1]
    net = build_network(cfg.network, channels, num_classes, **cfg.network_kwargs).to(dev)
    opt = torch.optim.Adam(
        net.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = cfg.steps_per_epoch or math.ceil(n / cfg.batch_size)
    run = _Run(steps_per_epoch, steps_per_epoch * cfg.epochs, cfg.t0)
    averaged = averaged_network(net, cfg.ema_decay)
    # what validates, predicts pseudo-masks and is saved: the averaged weights where averaging
    predictor = net if averaged is None else averaged.module
    if init_checkpoint is not None:
        resumed_rng = _restore(init_checkpoint, net, opt, cfg, num_classes, channels, run, averaged)
        if resumed_rng is not None:
            rng = resumed_rng
    else:
        _init_output_bias(net, data, num_classes)
    if not cfg.labelled_bounds:  # after the bias: its class prior reads the size bounds
        data.lo, data.hi = open_labelled_bounds(data, unions)
    if run.start_epoch and _rounds_due(cfg, run, run.start_epoch):  # resumed after a round
        _self_training_round(predictor, data, unions, dev, cfg, run)
    sched = _lr_schedule(opt, cfg, run)

    use_amp = cfg.amp and dev.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    aug_cfg = AugmentConfig(
        p_flip=cfg.p_flip,
        p_transpose=cfg.p_transpose,
        p_zoom=cfg.p_zoom,
        zoom_range=(cfg.zoom_min, cfg.zoom_max),
        p_intensity=cfg.p_intensity,
        p_blur=cfg.p_blur,
        p_rotate=cfg.p_rotate,
        rotate_max=cfg.rotate_max,
    )
    ce_on = cfg.ce_weight > 0 and bool(data.has_mask.any())
    best_path, last_path = out_dir / CHECKPOINT_NAME, out_dir / LAST_NAME
    step = run.start_epoch * steps_per_epoch
    order = np.array([], dtype=np.int64)
    loss_val, term_vals = float("nan"), {}
    net.train()
    epoch = run.start_epoch
    first_step = step

    def timed(ep: int, st: int, lv: float, tv: dict[str, float]) -> Progress:
        elapsed = clock() - started
        done = max(1, st - first_step)
        eta = elapsed / done * max(0, run.total_steps - st)
        return Progress(ep + 1, cfg.epochs, st, run.total_steps, lv, tv, run.metrics, elapsed, eta)

    replan_at = step + WARMUP_STEPS if cfg.budget is not None and run.start_epoch == 0 else -1
    warm_started = paced_from = 0.0
    while epoch < cfg.epochs:
        for _ in range(steps_per_epoch):
            if step == replan_at - WARMUP_STEPS + 1:
                warm_started = clock()  # the first step (allocations) is not typical
            if step == replan_at:
                _replan(cfg, run, dev, step, started, warm_started)
                paced_from = clock()  # the first steps time slower than the rest
            if should_stop is not None and should_stop():
                raise TrainingStopped(f"stopped at epoch {epoch}, step {step}")
            if len(order) < cfg.batch_size:
                order = np.concatenate([order, rng.permutation(n)])
            idx, order = order[: cfg.batch_size], order[cfg.batch_size :]
            aug = aug_cfg if cfg.augment else None
            imgs, masks, sure, los, his = batch(data, idx, rng, aug, batch_unions)
            imgs, masks, los, his = imgs.to(dev), masks.to(dev), los.to(dev), his.to(dev)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                logits = net(imgs)
            logits = logits.float()
            loss, terms, constrained = _loss(
                cfg, run, step, logits, imgs, los, his, sure, masks, data, idx, ce_on, unions
            )
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if averaged is not None:
                averaged.update_parameters(net)
            if sched is not None:
                sched.step()
            step += 1
            if progress is not None and (step % cfg.progress_every == 0 or step == run.total_steps):
                loss_val = float(loss.detach())
                term_vals = {k: float(v) for k, v in terms.items()}
                run.metrics = {**run.metrics, "violation": violation_share(constrained, los, his)}
                progress(timed(epoch, step, loss_val, term_vals))
        loss_val = float(loss.detach())
        term_vals = {k: float(v) for k, v in terms.items()}
        run.t = min(run.t * cfg.mu, cfg.t_max)
        if replan_at >= 0 and step > replan_at:  # budgeted: still within the budget?
            settled = step - replan_at >= WARMUP_STEPS  # the pace since the re-plan is known
            if settled:
                per_step = (clock() - paced_from) / (step - replan_at)
            else:
                per_step = (clock() - warm_started) / (step - (replan_at - WARMUP_STEPS + 1))
            left = budget_seconds(cfg.budget, dev.type) - (clock() - started)
            epochs_left = left / max(per_step * steps_per_epoch, 1e-9)
            _fit_to_budget(cfg, run, epoch, epochs_left, may_lengthen=settled)
        if _rounds_due(cfg, run, epoch + 1):
            _self_training_round(predictor, data, unions, dev, cfg, run)
        last_epoch = epoch + 1 == cfg.epochs
        if (epoch + 1) % cfg.val_every == 0 or last_epoch:
            val = validate(predictor, data, num_classes, dev, cfg.batch_size)
            # the last step's share of broken bounds, the latest round's pseudo-masks
            kept = {k: run.metrics[k] for k in ("violation", "pseudo_masks") if k in run.metrics}
            run.metrics = {**val, "train_loss": loss_val, "t": run.t, **kept}
            improved = "val_dice" in val and (run.best is None or val["val_dice"] > run.best)
            if improved:
                run.best, run.best_epoch = val["val_dice"], epoch + 1
                save_checkpoint(
                    best_path, predictor, cfg, num_classes, channels, {"epoch": epoch + 1}
                )
            elif "val_dice" not in val and last_epoch:
                save_checkpoint(
                    best_path, predictor, cfg, num_classes, channels, {"epoch": epoch + 1}
                )
            save_last(
                last_path,
                predictor,
                cfg,
                num_classes,
                channels,
                opt,
                epoch=epoch + 1,
                t=run.t,
                best=run.best,
                best_epoch=run.best_epoch,
                train_net=None if averaged is None else net,
            )
            if progress is not None:
                progress(timed(epoch, step, loss_val, term_vals))
        epoch += 1
    if not best_path.exists():  # resumed past the end or never validated
        save_checkpoint(best_path, predictor, cfg, num_classes, channels, {"epoch": cfg.epochs})
    final = dict(run.metrics)
    if run.best is not None:
        final["best_val_dice"] = run.best
        final["best_epoch"] = run.best_epoch
    final["seconds"] = clock() - started
    final["steps"] = step
    if first_step:  # a resumed run timed only the steps since: models.budget.px_seconds
        final["resumed_at_step"] = first_step
    return TrainResult(checkpoint=best_path, metrics=final, epochs=cfg.epochs)


def _restore(
    init_checkpoint: Path | str,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    num_classes: int,
    channels: int,
    run: _Run,
    averaged: AveragedModel | None,
) -> np.random.Generator | None:
    """Warm start, or resume: continue at the stopped epoch with its ``t``, best score, the
    length a budgeted run re-planned to, the weight average so far, and a sampler seeded for
    that epoch (returned)."""
    resumed = load_init(init_checkpoint, net, opt, cfg, num_classes, channels)
    if resumed is None:
        return None
    # a run saved without averaging starts its average at its first update (a copy)
    if averaged is not None and resumed.averaged is not None:
        averaged.module.load_state_dict(resumed.averaged)
        averaged.n_averaged.fill_(resumed.epoch * run.steps_per_epoch)
    run.start_epoch, run.t = resumed.epoch, resumed.t
    run.best, run.best_epoch = resumed.best, resumed.best_epoch
    if cfg.budget is not None:  # the length the interrupted run re-planned to
        for name in ("epochs", "mu", "val_every"):
            setattr(cfg, name, resumed.config[name])
        run.total_steps = run.steps_per_epoch * cfg.epochs
    return np.random.default_rng([cfg.seed, run.start_epoch])


def _init_output_bias(net: torch.nn.Module, data: Prepared, num_classes: int) -> None:
    """Start from the class proportions the bounds imply: the constraints are then nearly met
    at step 0 and training spends its steps on where things are, not how much."""
    bias = getattr(net.output_layer, "bias", None)
    if bias is not None:
        with torch.no_grad():
            bias.copy_(torch.log(class_prior(data, num_classes)).to(bias.device))


def _lr_schedule(
    opt: torch.optim.Optimizer, cfg: TrainConfig, run: _Run
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Cosine decay to 5 % over the run's steps (a resumed run continues the same curve; a
    re-planned run's new length applies from the next step)."""
    if cfg.lr_schedule != "cosine":
        return None
    offset = run.start_epoch * run.steps_per_epoch

    def cosine(s: int) -> float:
        done = min(s + offset, run.total_steps) / run.total_steps
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done))

    return torch.optim.lr_scheduler.LambdaLR(opt, cosine)


def _replan(
    cfg: TrainConfig, run: _Run, dev: torch.device, step: int, started: float, warm: float
) -> None:
    """A budgeted run, after timing its warm-up steps: the epochs that fit the time left."""
    per_step = (clock() - warm) / (WARMUP_STEPS - 1)
    left = budget_seconds(cfg.budget, dev.type) - (clock() - started)
    cfg.epochs = plan_epochs(left + step * per_step, per_step, run.steps_per_epoch)
    cfg.mu = barrier_mu(cfg)
    cfg.val_every = max(1, cfg.epochs // 10)
    run.total_steps = run.steps_per_epoch * cfg.epochs


def _fit_to_budget(
    cfg: TrainConfig, run: _Run, epoch: int, epochs_left: float, *, may_lengthen: bool
) -> None:
    """After epoch ``epoch`` (0-based) of a budgeted run, with time for ``epochs_left`` more
    epochs at its timed pace: when the planned epochs no longer fit (a machine that got busy),
    end earlier; with ``may_lengthen`` (the pace timed since the re-plan, not the warm-up's),
    while the run is in its first ``LENGTHEN_SHARE`` and more than twice
    ``LENGTHEN_MARGIN`` beyond the plan would fit (its first steps timed slower than the rest),
    run longer, to all but that margin of the time, never beyond the plan's ceiling. The
    barrier's growth and the validation rhythm follow the new length; never below
    ``MIN_EPOCHS``."""
    fit = epoch + 1 + int(max(0.0, epochs_left))
    early = may_lengthen and epoch + 1 <= LENGTHEN_SHARE * cfg.epochs
    if fit < cfg.epochs:
        epochs = max(fit, MIN_EPOCHS, epoch + 1)
    elif early and fit > (1.0 + 2.0 * LENGTHEN_MARGIN) * cfg.epochs:
        epochs = min(int(fit / (1.0 + LENGTHEN_MARGIN)), epoch_ceiling(run.steps_per_epoch))
    else:
        return
    if epochs == cfg.epochs:
        return
    cfg.epochs = epochs
    if run.t < cfg.t_max:  # t still reaches t_max after 70 % of the new length
        cfg.mu = float(cfg.t_max / run.t) ** (1.0 / max(1, int(cfg.epochs * 0.7) - (epoch + 1)))
    cfg.val_every = max(1, cfg.epochs // 10)
    run.total_steps = run.steps_per_epoch * cfg.epochs


def _rounds_due(cfg: TrainConfig, run: _Run, done: int) -> bool:
    """After ``done`` epochs: is a self-training round due? Counts the rounds passed (a run
    shortened or resumed past several gets one round for them)."""
    passed = sum(1 for e in round_epochs(cfg.epochs, cfg.pseudo_rounds) if e <= done)
    due = passed > run.rounds_done
    run.rounds_done = max(run.rounds_done, passed)
    return due


def _self_training_round(
    net: torch.nn.Module,
    data: Prepared,
    unions: torch.Tensor,
    dev: torch.device,
    cfg: TrainConfig,
    run: _Run,
) -> None:
    """Refresh the pseudo-masks (``models.pseudo``) of the slices without a reference mask."""
    pred, ok = pseudo_masks(net, data, unions, dev, cfg.batch_size)
    keep = ok & ~data.has_mask
    data.masks[keep] = pred[keep]
    data.has_pseudo = keep if bool(keep.any()) else None
    run.metrics = {**run.metrics, "pseudo_masks": int(keep.sum())}


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


def _loss(
    cfg: TrainConfig,
    run: _Run,
    step: int,
    logits: torch.Tensor,
    imgs: torch.Tensor,
    los: torch.Tensor,
    his: torch.Tensor,
    sure: torch.Tensor | None,
    masks: torch.Tensor,
    data: Prepared,
    idx: np.ndarray,
    ce_on: bool,
    unions: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """The step's loss: the descriptor constraints plus the weighted optional terms (entropy
    ramped in over the first half, cross-entropy on masks and on pseudo-masks, sure regions,
    pairwise smoothness).
    Also returns the constrained probabilities ``(B, K + U, H, W)``: the classes', then the
    ``unions`` ``(U, K)`` summed."""
    probs = torch.softmax(logits, 1)
    constrained = with_unions(probs, unions)
    hard = None
    if cfg.hard_length:
        hard = with_unions(one_hot_maps(logits.argmax(1), logits.shape[1]), unions)
    weights = scheduled_weights(cfg.weights, cfg.weights_end, step, run.total_steps)
    loss, terms = constraint_loss(
        constrained,
        los,
        his,
        t=run.t,
        kind=cfg.loss,
        weights=weights,
        units=cfg.loss_units,
        upper_only=cfg.upper_only,
        hard=hard,
        narrow_t=cfg.narrow_t,
    )
    if cfg.entropy_weight > 0:
        ramp = min(1.0, step / max(1.0, 0.5 * run.total_steps))
        ent = -(probs * torch.log(probs.clamp_min(1e-8))).sum(1).mean()
        loss = loss + cfg.entropy_weight * ramp * ent
        terms["entropy"] = ent.detach()
    if ce_on:
        ce = masked_cross_entropy(logits, masks, data.has_mask[idx].to(logits.device))
        loss = loss + cfg.ce_weight * ce
        terms["ce"] = ce.detach()
    if data.has_pseudo is not None and cfg.pseudo_weight > 0:
        ps = masked_cross_entropy(logits, masks, data.has_pseudo[idx].to(logits.device))
        loss = loss + cfg.pseudo_weight * ps
        terms["pseudo"] = ps.detach()
    if sure is not None and cfg.sure_weight > 0:
        sr = sure_region_loss(probs, sure.to(logits.device))
        loss = loss + cfg.sure_weight * sr
        terms["sure"] = sr.detach()
    if cfg.pairwise_weight > 0:
        pw = pairwise_loss(probs, imgs, cfg.pairwise_sigma)
        loss = loss + cfg.pairwise_weight * pw
        terms["pairwise"] = pw.detach()
    return loss, terms, constrained
