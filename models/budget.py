"""The default training run: a time budget turned into grid, network and steps (numpy, no torch).

A job config may name a ``budget`` (``quick``, ``standard``, ``thorough`` or seconds). From it,
the device, the number of training slices and the smallest hinted structure,
:func:`resolve_config` derives the whole :class:`~models.config.TrainConfig`; fields the user
gave explicitly replace the derived ones one by one. Before the run, the step time is a cost
model's estimate (:func:`estimate_step_seconds`), or the pace earlier runs on the same kind of
device measured (:func:`px_seconds`, :func:`estimate_run`); the trainer times its first steps
and re-plans the number of epochs so the run fits the budget (:func:`plan_epochs`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.config import MAX_EPOCHS, PRESETS, TrainConfig, check_budget
from models.fitting import FIT_SECONDS_PER_SLICE
from models.units import COMPONENT_INDEX

BUDGET_SECONDS: dict[str, dict[str, float]] = {
    # Wall-clock seconds of training (prediction comes on top), per device type.
    "cpu": {"quick": 120.0, "standard": 600.0, "thorough": 1800.0},
    "cuda": {"quick": 60.0, "standard": 300.0, "thorough": 900.0},
}
DEFAULT_BUDGET = "standard"

# Seconds per (image x px^2) of a training step of the UNet below at width 16, measured on one
# thread of the 2-core reference CPU (96 px, batch 8: 0.27 s by benchmarks/step_time.py on the
# AMD EPYC of the benchmarks since session 16; the 0.15 s first measured elsewhere made a plan
# at its epoch ceiling promise half its time and `quick` keep a grid it could take ~400 steps
# on, benchmarks/results/ablations-budget.md) and on an H100-class GPU (throughput benchmark
# order of magnitude). Only the first guess: the trainer re-plans after timing its warm-up, and
# once a server has trained, its plans' estimates take the pace its runs measured (px_seconds).
_SECONDS_PER_PX = {"cpu": 0.27 / (8 * 96 * 96), "cuda": 0.004 / (8 * 128 * 128)}
MIN_STRUCTURE_PX = 10.0
"""Smallest hinted structure's equivalent diameter (px) the training grid must keep."""
# No 160 px grid on CPU: it lost to 128 in every CPU run measured (Kvasir at 240 s, ACDC at 240
# and 600 s; benchmarks/results/ablations-grid.md). An explicit ``grid`` still sets any size.
GRIDS: dict[str, tuple[int, ...]] = {"cpu": (64, 96, 128), "cuda": (128, 192, 256)}
MIN_EPOCHS = 4
MIN_STEPS = 800
"""Fewest training steps (by the cost model) the budget should afford on the chosen grid."""
PLAN_MAX_EPOCHS = 300
"""Most passes over the training slices a budget plans (never fewer than MIN_STEPS steps): the
network learns from the drawings fitted to the image, and more passes teach it their errors.
On ACDC's tuning project (5 volumes, 42 slices) the delivered Dice fell from 0.862 at 240
epochs to 0.848 / 0.849 at 480 / 720, and on ten volumes nobody hinted from 0.589 to 0.509 /
0.585; the ``thorough`` budget (650 epochs) had delivered 0.840 against ``standard``'s 0.858
(240) on the scored project, and Kvasir held level (0.897 at 987 epochs, 0.898 at 289;
benchmarks/results/ablations-budget.md). 300 keeps both standard plans measured on the 2-core
CPU (240, 289); a budget the ceiling leaves unspent ends the job early. 240 was tried too (over
three seeds ACDC gained 0.0047, Kvasir held level; not kept), and so was averaging networks in
the unspent time (+0.001 on the hinted items; not kept). 150 lifted ACDC (+0.006 hinted, +0.007
held out) but cost Kvasir's held-out images 0.029: a 100-image project needs the passes (not
kept; ablations-budget.md, section 13)."""
SURE_WEIGHT = 100.0
"""The partial cross-entropy on the drawings' (fitted) sure pixels against the descriptor
bounds and the entropy term (weight 1 each). At 1, the bounds' barrier, steep outside its
interval while the network's soft map is unsure, held the network far below the fitted
drawings it learns from (tuning projects disjoint from the scored ones, equal steps, model
alone: Kvasir 0.756 vs 0.896 for the fitted drawings). At 100: Kvasir 0.857, ACDC 0.848
(from 0.765), delivered 0.896 / 0.850 from 0.830 / 0.805; bounds x0.1, x0.01 or off, and
bounds only where the drawing was not fitted, did less on one set or both
(benchmarks/results/ablations-weights.md). Slices without drawings keep the balance of
bounds and entropy they had."""


@dataclass(frozen=True)
class ProjectFacts:
    """What the default depends on: ``num_slices`` training slices, their largest side
    ``max_side`` (px), the equivalent diameter ``smallest_structure`` (px, native grid) of the
    smallest structure hinted present (None: no size known) and ``small_fraction``: the 5th
    percentile of the hinted structures' diameters, each as a fraction of its own slice's larger
    side (None: not known; then ``smallest_structure / max_side``). The trainer resizes every
    slice to the grid on its own, so the fraction is what the grid must resolve; a percentile,
    because one tiny outlier should not cost every other slice its training steps.
    ``channels``: the most channels of the images hinted (1: MRI, CT, grey; 3: colour)."""

    num_slices: int
    max_side: int = 256
    smallest_structure: float | None = None
    small_fraction: float | None = None
    channels: int = 1


def facts_from_bounds(
    bounds: Sequence[tuple[np.ndarray, np.ndarray]],
    shapes: Sequence[tuple[int, int]],
    channels: int = 1,
) -> ProjectFacts:
    """Facts of a set of training slices: their ``(lo, hi)`` bounds ``(K, M)`` (px; row 0 the
    background), ``(H, W)`` shapes and their images' most ``channels``. The smallest structure
    is the equivalent diameter of the geometric middle of the smallest size interval hinted
    present (finite, above 0)."""
    size = COMPONENT_INDEX["size"]
    diameters: list[float] = []
    fractions: list[float] = []
    for (lo, hi), shape in zip(bounds, shapes, strict=True):
        a, b = np.asarray(lo)[1:, size], np.asarray(hi)[1:, size]
        known = np.isfinite(b) & (a > 0)
        d = np.sqrt(4.0 * np.sqrt(a[known] * b[known]) / np.pi)
        diameters.extend(float(x) for x in d)
        fractions.extend(float(x) / max(1, max(shape)) for x in d)
    max_side = max((max(s) for s in shapes), default=256)
    smallest = min(diameters) if diameters else None
    small = float(np.percentile(fractions, 5)) if fractions else None
    return ProjectFacts(len(bounds), int(max_side), smallest, small, int(channels))


def device_type(device: str) -> str:
    """``"cuda"`` for any CUDA device (``"cuda:1"``), else ``"cpu"``: what the cost model and
    the budgets are kept per."""
    return "cuda" if device.startswith("cuda") else "cpu"


def budget_seconds(budget: str | float | int, device: str) -> float:
    """Training seconds of a budget name or a number of seconds. ValueError if neither."""
    check_budget(budget)
    if not isinstance(budget, str):
        return float(budget)
    return BUDGET_SECONDS[device_type(device)][budget]


def choose_grid(facts: ProjectFacts, device: str) -> int:
    """The smallest grid (of the device's choices) on which the small hinted structures (the
    5th percentile, ``ProjectFacts.small_fraction``) still span ``MIN_STRUCTURE_PX`` (each slice
    is resized to the grid on its own: its size relative to its own slice counts); the largest
    choice when none does; never above the images' own side (rounded up to a choice)."""
    grids = GRIDS[device_type(device)]
    cap = next((g for g in grids if g >= facts.max_side), grids[-1])
    fraction = facts.small_fraction
    if fraction is None and facts.smallest_structure is not None:
        fraction = facts.smallest_structure / max(1, facts.max_side)
    if fraction is None or fraction <= 0:
        return min(grids[1] if len(grids) > 1 else grids[0], cap)
    for g in grids:
        if fraction * g >= MIN_STRUCTURE_PX:
            return min(g, cap)
    return cap


def estimate_step_seconds(cfg: TrainConfig, device: str, px_s: float | None = None) -> float:
    """Seconds of one training step: ``px_s`` (else the cost model's constant for the device
    type) x batch x grid^2 x :func:`width_factor`."""
    per_px = _SECONDS_PER_PX[device_type(device)] if px_s is None else px_s
    return per_px * _step_px(cfg.batch_size, cfg.grid, cfg.network_kwargs)


def width_factor(width: float) -> float:
    """A UNet step's cost at ``width`` relative to width 16: ``(width / 16)^2`` from 16 up, where
    the convolutions' work dominates, and ``width / 16`` below, where per-layer costs that do
    not shrink with the channels weigh in. On the 2-core CPU width 8 / 12 / 24 measured 0.49-0.50
    / 0.85-0.89 / 2.27-2.50x width 16's step (grids 64 and 128); the square alone had promised
    width 8 twice the steps it gets (benchmarks/results/ablations-grid.md, section E)."""
    x = float(width) / 16.0
    return max(x, x * x)


def _step_px(batch_size: float, grid: float, network_kwargs: Mapping[str, Any]) -> float:
    """A step's size in the cost model's unit: images x px^2 x :func:`width_factor`."""
    width = float(network_kwargs.get("width", 16))
    return float(batch_size) * float(grid) ** 2 * width_factor(width)


MIN_TIMED_STEPS = 50
"""Fewest steps a run must have timed for its pace to time later plans: a shorter one (a smoke
test, a one-epoch try) is mostly its first slow steps and its validation."""


def px_seconds(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> float | None:
    """A finished run's measured pace in the cost model's unit (s per image x px^2 at width 16):
    its training ``seconds`` over its ``steps`` (``models.train``'s final metrics, warm-up and
    validation included; a resumed run's since ``resumed_at_step``), divided by
    :func:`_step_px` of its ``config``. None where a field is missing or not positive (a version
    trained before the metrics held them) or the run timed fewer than :data:`MIN_TIMED_STEPS`."""
    try:
        seconds = float(metrics["seconds"])
        steps = float(metrics["steps"]) - float(metrics.get("resumed_at_step", 0))
        kwargs = config.get("network_kwargs") or {}
        size = _step_px(config["batch_size"], config["grid"], kwargs)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not (seconds > 0 and steps >= MIN_TIMED_STEPS and size > 0 and math.isfinite(seconds)):
        return None
    return seconds / steps / size


def plan_epochs(train_seconds: float, step_seconds: float, steps_per_epoch: int) -> int:
    """Epochs that fit ``train_seconds`` at ``step_seconds`` per step, at least MIN_EPOCHS and
    at most :func:`epoch_ceiling` (a run that reaches it ends before its budget is spent)."""
    steps = train_seconds / max(step_seconds, 1e-6)
    fit = int(steps // max(1, steps_per_epoch))
    return min(epoch_ceiling(steps_per_epoch), max(MIN_EPOCHS, fit))


def epoch_ceiling(steps_per_epoch: int) -> int:
    """The most epochs a budget plans: PLAN_MAX_EPOCHS, or enough for MIN_STEPS steps where a
    project is so small that an epoch is one or two steps (never above MAX_EPOCHS)."""
    return min(MAX_EPOCHS, max(PLAN_MAX_EPOCHS, math.ceil(MIN_STEPS / max(1, steps_per_epoch))))


def steps_per_epoch(cfg: TrainConfig, num_slices: int) -> int:
    """Steps of one epoch of ``cfg`` over ``num_slices`` training slices."""
    return cfg.steps_per_epoch or math.ceil(max(1, num_slices) / cfg.batch_size)


def planned_ceiling(cfg: TrainConfig, num_slices: int) -> int | None:
    """The most epochs ``cfg``'s plan takes on ``num_slices`` slices (:func:`epoch_ceiling`);
    None for a run of fixed length (a preset, or ``epochs`` given)."""
    return None if cfg.budget is None else epoch_ceiling(steps_per_epoch(cfg, num_slices))


def barrier_growth(epochs: int, t0: float = 1.0, t_max: float = 50.0) -> float:
    """Growth of the log-barrier's t per epoch (``mu``) so it goes from ``t0`` to ``t_max`` in
    70 % of ``epochs`` and holds there for the rest."""
    return float(t_max / t0) ** (1.0 / max(1, int(epochs * 0.7)))


def barrier_mu(cfg: TrainConfig) -> float:
    """:func:`barrier_growth` for ``cfg``'s epochs, ``t0`` and ``t_max``."""
    return barrier_growth(cfg.epochs, cfg.t0, cfg.t_max)


def mu_follows(overrides: Mapping[str, Any]) -> bool:
    """Whether ``overrides`` change the barrier's schedule (``epochs``, ``t0`` or ``t_max``)
    without fixing ``mu``: then ``mu`` is derived again (:func:`barrier_mu`), so t still
    reaches ``t_max`` after 70 % of the run (a job's config here, a benchmark's ``--set``)."""
    return "mu" not in overrides and bool({"epochs", "t0", "t_max"} & overrides.keys())


def default_for(facts: ProjectFacts, device: str, budget: str | float) -> TrainConfig:
    """The product's recipe for ``budget`` on ``device`` (see the module docstring).

    Descriptor bounds in length units, partial cross-entropy on the hints' sure pixels (the
    drawings fitted to the image first), zoom, turn and intensity augmentation (no flips, no
    blur; from the ``standard`` budget up the zoom goes in as well as out and one-channel
    images change intensity on every sample, below it zoom out only and intensity on half),
    hinted slices predicted with the hints' vote, a UNet (width 16 on CPU, 32 on a GPU) on the
    grid of :func:`choose_grid`, cosine schedule, and as many epochs as the budget allows at
    the estimated step time.
    """
    dev = device_type(device)
    cfg = dataclasses.replace(PRESETS["cpu-fast"])
    cfg.budget = budget
    cfg.loss_units = "length"
    cfg.weights = {"length": 0.1}
    cfg.sure_weight = SURE_WEIGHT
    cfg.lr = 2e-3
    # Flips and transposes cost a small network most of its fit to the user's own images
    # (Kvasir, 60 images, CE on masks: training-set Dice 0.90 without augmentation, 0.65 with
    # flips only, 0.87 zoom only, 0.90 intensity only) and gained nothing on held-out images
    # (0.49 / 0.50 / 0.51): the user wants masks for the images they hinted.
    cfg.p_flip = 0.0
    cfg.p_transpose = 0.0
    # Turns of up to +-30 degrees (half the samples) keep the anatomy's sides and carry to
    # images nobody hinted: at equal steps on the tuning projects, held-out Dice 0.498 -> 0.558
    # (Kvasir) and 0.372 -> 0.469 (ACDC), hinted images delivered 0.896 -> 0.894 and 0.850 ->
    # 0.859 (benchmarks/results/ablations-rotation.md; rule fixed before the rows).
    cfg.p_rotate = 0.5
    cfg.rotate_max = 30.0
    # The zoom-out stays the preset's (30 % of samples, 0.8..1): a wider one (half, 0.6..1)
    # lifted ACDC's held-out Dice 0.529 -> 0.563 but cost Kvasir's 0.601 -> 0.597, and on a
    # second ACDC tuning project (volumes no session had used) moved it 0.650 -> 0.648
    # (benchmarks/results/ablations-zoom.md, sections 1 and 3).
    # Gamma and noise on every sample where the images have one channel (MRI and CT grey
    # values carry no unit and differ from scanner to scanner); colour photographs keep them on
    # half. On every sample, over three seeds, the held-out volumes of ACDC's three tuning
    # projects gained 0.0104, 0.0103 and 0.0769 (delivered +0.003, +0.002, +0.000), Kvasir's
    # held-out images lost 0.003 (100 hinted) and 0.011 (two projects of 10) (ablations-zoom.md,
    # 4, 6, 7, 12). Below `standard`'s seconds (`quick`: grid 64, 55-160 epochs by machine)
    # one-channel images keep half: there half gained 0.0195, 0.0114 and 0.0149 held out over
    # every sample on the three projects (delivered -0.0005 over the first two, +0.0005 on the
    # third; ablations-zoom.md, 8, 12).
    seconds = budget_seconds(budget, device)
    long_run = seconds >= budget_seconds(DEFAULT_BUDGET, device)
    cfg.p_intensity = 1.0 if facts.channels == 1 and long_run else 0.5
    # From `standard`'s seconds up the zoom also goes in, to 1.25, on each sample only as far
    # as its sure maps keep every foreground class inside the grid (models.transforms.
    # zoom_in_limit). At 300 epochs ACDC's three tuning projects' held-out volumes gained
    # +0.047 over eight pairs (seeds 0-2 by project; one of the eight lost, 0.038), delivered
    # +0.002, as many classes empty; Kvasir's +0.023 (delivered +0.001) (ablations-zoom.md,
    # 13 and 14).
    # At `quick` the same zoom in gained ACDC's held-out volumes only +0.007 over nine runs
    # (three projects, three seeds) and left six more classes empty (ablations-zoom.md, 14), so
    # below `standard` the zoom goes out only.
    cfg.zoom_max = 1.25 if long_run else 1.0
    # No blur. A 3x3 blur on half the samples of one-channel images (each slice is resized
    # onto the grid from its own matrix, so edge sharpness differs from patient to patient)
    # gained 0.039 and 0.014 held out on two ACDC tuning projects at 300 epochs (ablations-
    # zoom.md, 9) but lost 0.029 on a third (a mean gain of 0.008 over the three, under the
    # 0.01 asked), and at `quick` lost 0.022 over nine runs and left classes empty (11).
    cfg.p_blur = 0.0
    # On the slices the user hinted, the drawn shapes vote beside the model (models.refine):
    # the model overrides a hint where it is 3:1 sure. Fixed by that reasoning, not tuned.
    cfg.hint_weight = 1.0 / 3.0
    # Drawings fitted to the image along its edges (models.fitting, GrabCut) label the sure
    # maps' band and vote in their place: at equal steps +0.014 Dice on Kvasir's hinted images
    # and +0.001 on ACDC's; labelling only where fit and drawing agree lost 0.010 on ACDC, the
    # fit in the vote alone gained less (benchmarks/results/ablations-fitting.md).
    cfg.fit_hints = True
    cfg.fit_targets = "cut"
    cfg.grid = choose_grid(facts, device)
    cfg.network_kwargs = {"width": 16, "depth": 3} if dev == "cpu" else {"width": 32, "depth": 4}
    cfg.num_threads = None if dev == "cuda" else cfg.num_threads
    # Steps before resolution: a grid the budget affords fewer than MIN_STEPS steps on gives way
    # to the next smaller one (benchmarks/results/ablations-grid.md: at 240 s on CPU, grids 96
    # and 128 against 160 lifted the model alone from 0.63 to 0.80 / 0.83 Dice on ACDC, and 64,
    # 96, 128 from 0.48 to 0.84 / 0.77 / 0.54 on Kvasir).
    smaller = [g for g in GRIDS[dev] if g < cfg.grid]
    while smaller and seconds / estimate_step_seconds(cfg, device) < MIN_STEPS:
        cfg.grid = smaller.pop()
    cfg.epochs = plan_epochs(
        seconds, estimate_step_seconds(cfg, device), steps_per_epoch(cfg, facts.num_slices)
    )
    cfg.mu = barrier_mu(cfg)
    cfg.val_every = max(1, cfg.epochs // 10)
    return cfg


def resolve_config(
    config: Mapping[str, Any], facts: ProjectFacts, device: str
) -> tuple[TrainConfig, float]:
    """A job's training config -> ``(TrainConfig, estimated training seconds)`` (with the time
    fitting the drawn hints takes first, when the config fits them for training).

    Without a ``preset``, the budget's default (``budget`` defaults to ``standard``) is the
    base; with one, that preset is. Every other given field replaces the base's one; ``mu``
    follows a changed ``epochs``, ``t0`` or ``t_max`` unless given too (t still reaches
    ``t_max`` after 70 % of the run). Raises ValueError / TypeError on a bad field.
    """
    d = dict(config)
    budget = d.pop("budget", None)
    if "preset" in d:
        if budget is not None:
            raise ValueError("give either a preset or a budget, not both")
        cfg = TrainConfig.from_dict(d)
    else:
        base = default_for(facts, device, DEFAULT_BUDGET if budget is None else budget)
        merged = {**base.to_dict(), **d}
        if "epochs" in d:
            merged["budget"] = None  # a fixed number of epochs: no re-planning
        cfg = TrainConfig.from_dict(merged)
        if mu_follows(d):
            cfg.mu = barrier_mu(cfg)
    return cfg, estimate_run(cfg, facts, device)[0]


def estimate_run(
    cfg: TrainConfig, facts: ProjectFacts, device: str, px_s: float | None = None
) -> tuple[float, int]:
    """``(training seconds, epochs)`` a resolved run is expected to take, with the time fitting
    the drawn hints takes first when it fits them for training.

    ``px_s`` None: the cost model's step time over ``cfg.epochs``. ``px_s`` measured
    (:func:`px_seconds` of earlier runs): steps at that pace, and a budgeted run over the epochs
    the trainer's re-plan will fit at it (:func:`plan_epochs`: the budget, or the ceiling
    first), not over the cost model's plan.
    """
    per_epoch = steps_per_epoch(cfg, facts.num_slices)
    step = estimate_step_seconds(cfg, device, px_s)
    epochs = cfg.epochs
    if px_s is not None and cfg.budget is not None:
        epochs = plan_epochs(budget_seconds(cfg.budget, device), step, per_epoch)
    seconds = epochs * per_epoch * step
    if cfg.training_fit is not None:
        seconds += facts.num_slices * FIT_SECONDS_PER_SLICE
    return seconds, epochs
