"""Training configuration: presets plus validated overrides (no torch here).

The API validates job configs with this module without importing torch; the trainer
(``models.train``) consumes the resulting :class:`TrainConfig`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.units import DESCRIPTORS

BUDGET_NAMES: tuple[str, ...] = ("quick", "standard", "thorough")
MIN_BUDGET_S, MAX_BUDGET_S = 10.0, 7 * 24 * 3600.0
MAX_EPOCHS = 5000
MAX_STEPS = 2_000_000
MAX_BATCH = 256
MAX_WIDTH = 128
NETWORK_KWARGS: dict[str, dict[str, tuple[int, int]]] = {
    # Allowed keyword arguments of each network and their ranges (bounded compute and memory).
    "unet": {"width": (1, MAX_WIDTH), "depth": (1, 6)},
    "enet": {"width": (1, MAX_WIDTH)},
    "enet-light": {"width": (1, MAX_WIDTH)},
}
_INTS: dict[str, tuple[int, int]] = {
    "grid": (16, 1024),
    "epochs": (1, MAX_EPOCHS),
    "batch_size": (1, MAX_BATCH),
    "seed": (0, 2**31 - 1),
    "val_every": (1, MAX_EPOCHS),
    "progress_every": (1, 1_000_000),
    "pseudo_rounds": (0, 10),
}
_OPTIONAL_INTS: dict[str, tuple[int, int]] = {
    "steps_per_epoch": (1, 1_000_000),
    "num_threads": (1, 256),
}
_FLOATS: dict[str, tuple[float, float]] = {
    "lr": (1e-8, 10.0),
    "weight_decay": (0.0, 10.0),
    "t0": (1e-6, 1e6),
    "mu": (1.0, 100.0),
    "t_max": (1e-6, 1e9),
    "ce_weight": (0.0, 1e6),
    "entropy_weight": (0.0, 1e6),
    "sure_weight": (0.0, 1e6),
    "pairwise_weight": (0.0, 1e6),
    "pairwise_sigma": (1e-4, 10.0),
    "p_flip": (0.0, 1.0),
    "p_transpose": (0.0, 1.0),
    "p_zoom": (0.0, 1.0),
    "zoom_min": (0.1, 1.0),
    "zoom_max": (1.0, 4.0),
    "p_intensity": (0.0, 1.0),
    "p_blur": (0.0, 1.0),
    "p_rotate": (0.0, 1.0),
    "rotate_max": (0.0, 180.0),
    "hint_weight": (0.0, 1.0),
    "pseudo_weight": (0.0, 1e6),
    "ema_decay": (0.0, 0.9999),
}
NORMALISATIONS = ("minmax", "percentile")
"""How images are scaled (``models.transforms.normalise_image``); a checkpoint records the one
its network saw. ``TrainConfig.normalisation`` also takes ``"auto"``
(``models.transforms.resolve_normalisation``)."""
_BOOLS = (
    "augment",
    "hard_length",
    "narrow_t",
    "amp",
    "resume",
    "tta",
    "ring_unions",
    "fit_hints",
    "labelled_bounds",
    "remeasure_bounds",
)
_CHOICES: dict[str, tuple[str, ...]] = {
    "network": ("unet", "enet", "enet-light"),
    "loss": ("log_barrier", "quadratic"),
    "loss_units": ("paper", "length"),
    "fit_targets": ("cut", "agree", "none"),
    "lr_schedule": ("constant", "cosine"),
    "normalisation": (*NORMALISATIONS, "auto"),
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_range(name: str, v: Any, lo: float, hi: float, *, integer: bool) -> None:
    ok = _is_int(v) if integer else _is_number(v)
    if not ok:
        raise ValueError(f"{name} must be {'an integer' if integer else 'a finite number'}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in {lo:g}..{hi:g}, got {v:g}")


def check_budget(budget: Any) -> None:
    """``None``, a budget name or seconds in range; ValueError naming the problem otherwise."""
    if budget is None or (isinstance(budget, str) and budget in BUDGET_NAMES):
        return
    if isinstance(budget, str):
        raise ValueError(f"budget must be one of {', '.join(BUDGET_NAMES)} or seconds")
    _check_range("budget", budget, MIN_BUDGET_S, MAX_BUDGET_S, integer=False)


@dataclass
class TrainConfig:
    """Everything that shapes a training run. Build with ``from_dict`` or ``default_config``."""

    preset: str = "cpu-fast"
    network: str = "unet"
    network_kwargs: dict[str, Any] = field(default_factory=lambda: {"width": 8, "depth": 3})
    grid: int = 64
    epochs: int = 60
    steps_per_epoch: int | None = None  # None: ceil(num_samples / batch_size)
    batch_size: int = 8
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"  # "constant" | "cosine"
    loss: str = "log_barrier"  # "log_barrier" | "quadratic"
    t0: float = 1.0
    mu: float = 1.1  # t *= mu after every epoch
    t_max: float = 50.0
    weights: dict[str, float] = field(default_factory=dict)  # per descriptor term, default 1
    # Per descriptor term, the weight reached after 70 % of the steps (as t reaches t_max),
    # moved there linearly from ``weights`` (default 1): a term weighed lightly while shapes
    # form and fully once they have (models.losses.scheduled_weights). Empty: constant.
    weights_end: dict[str, float] = field(default_factory=dict)
    loss_units: str = "paper"  # "paper" | "length" (models.losses.constraint_loss ``units``)
    # Descriptors whose lower bounds the loss leaves out (only their upper bounds pull); the
    # quality check (models.quality) still tests both ends. Empty: both ends, as the paper.
    # A committed map (entropy term) meets a contour length's lower bound only by a ragged
    # contour, which this avoids; without the entropy term the lower bound helps. Ablation
    # only (benchmarks/results/ablations-paper-loss.md, section 7).
    upper_only: tuple[str, ...] = ()
    # Contour length measured on the argmax, straight-through (models.losses.constraint_loss
    # ``hard``): a soft map moves its length by contrast or texture that its argmax lacks.
    # Ablation only, not kept (same section: the straight-through gradient makes edges ragged).
    hard_length: bool = False
    # The log-barrier's t raised on each interval narrower than 2 / t^2 to sqrt(2 / width)
    # (models.losses.narrow_interval_t), so that its two ends do not cancel. Ablation only, not
    # kept (benchmarks/results/ablations-paper-loss.md, section 11).
    narrow_t: bool = False
    # Predict with an exponential moving average of the weights (and BatchNorm statistics)
    # over the steps, ``models.averaging``; 0: the last step's weights. Its decay is warmed up
    # as (1 + n) / (10 + n) over the first n updates, so a short run is not its first steps.
    # Not kept for any preset or the product: on the `cpu` preset's `paper` it predicted like
    # the last step's weights (benchmarks/results/ablations-paper-loss.md, section 12).
    ema_decay: float = 0.0
    ce_weight: float = 0.0  # > 0: cross-entropy on samples that have a mask (mixed supervision)
    # Mean pixel entropy of the softmax, ramped in linearly over the first half of training:
    # size and centroid bounds alone are also met by diffuse, low-confidence maps whose argmax
    # is background; the entropy term makes the network commit to hard regions.
    entropy_weight: float = 0.0
    # Partial cross-entropy on the pixels a drawn hint is sure about (models.regions).
    sure_weight: float = 0.0
    # Image-aware pairwise term (neighbours of similar intensity share a label); sigma in [0, 1]
    # image units.
    pairwise_weight: float = 0.0
    pairwise_sigma: float = 0.1
    # How each image's intensities are scaled to [0, 1] (models.transforms.normalise_image).
    normalisation: str = "minmax"
    augment: bool = True
    p_flip: float = 0.5
    p_transpose: float = 0.5
    p_zoom: float = 0.3
    zoom_min: float = 0.8
    # Zoom in up to this scale, each sample only as far as its sure maps keep every foreground
    # class inside the grid (models.transforms.zoom_in_limit); 1: zoom out only.
    zoom_max: float = 1.0
    p_intensity: float = 0.5
    p_blur: float = 0.0
    # Turns by up to +-rotate_max degrees about the centre (models.transforms.rotate_bounds),
    # 0.5 in the default plan; bounds stay exact for shapes inside the grid's inscribed disc.
    p_rotate: float = 0.0
    rotate_max: float = 30.0
    seed: int = 0
    amp: bool = True  # used on CUDA only
    val_every: int = 5  # epochs
    progress_every: int = 5  # steps
    resume: bool = False  # init_checkpoint continues its run (epoch, optimizer, t) if true
    num_threads: int | None = None  # CPU threads; None: torch default
    # Test-time augmentation: predictions average each slice with the views of it the network
    # trained on (models.infer.tta_views: flips if p_flip > 0, turns if p_rotate > 0).
    tta: bool = False
    # Bound a ring and the class that fills its hole together (``train(unions=...)``); false:
    # the union rows the worker adds are ignored.
    ring_unions: bool = True
    # Samples whose bounds were measured around a reference mask (``TrainSample.reference``,
    # the benchmarks' ``paper``): augmentation re-measures the transformed mask, as the paper
    # does, instead of transforming the bounds (models.transforms.remeasure_bounds).
    remeasure_bounds: bool = False
    # Predicting a hinted slice: the drawn hints' vote against the model's probabilities
    # (models.refine); 0 = the model alone, 1 = the hints alone.
    hint_weight: float = 0.0
    # Drawn shapes fitted to their image (models.fitting): the fitted shapes take the drawings'
    # place in the hints' vote and, by ``fit_targets``, in training: "cut" labels the sure
    # maps' whole unknown band by the fitted shape, "agree" only where fitted shape and drawing
    # agree, "none" leaves training as without fitting.
    fit_hints: bool = False
    fit_targets: str = "cut"
    # Descriptor bounds also on the classes a slice's sure map labels on every pixel (a fitted
    # drawing); false: there the sure map alone teaches (models.samples.open_labelled_bounds;
    # an ablation, not kept: benchmarks/results/ablations-weights.md).
    labelled_bounds: bool = True
    # Self-training (models.pseudo): rounds over the second half of training that take the
    # network's own masks meeting every bound of their slice as cross-entropy targets
    # (weight ``pseudo_weight``); 0 rounds: off.
    pseudo_rounds: int = 0
    pseudo_weight: float = 1.0
    # Time budget (a name of models.budget or seconds): the trainer re-plans ``epochs`` after
    # timing its first steps so that training fits it; None: exactly ``epochs``.
    budget: str | float | None = None

    @property
    def training_fit(self) -> str | None:
        """``models.fitting.slice_sure_map``'s ``targets``: None when no fitted shape reaches
        training (no fitting, or ``fit_targets`` "none")."""
        return self.fit_targets if self.fit_hints and self.fit_targets != "none" else None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """``{"preset": "cpu-fast" | "paper", ...overrides}``; unknown fields raise ValueError."""
        d = dict(d)
        preset = d.pop("preset", "cpu-fast")
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training config field(s): {', '.join(unknown)}")
        base = dataclasses.asdict(PRESETS[preset])
        base.update(d)
        if isinstance(base.get("betas"), list):
            base["betas"] = tuple(base["betas"])
        if isinstance(base.get("network_kwargs"), Mapping):
            base["network_kwargs"] = dict(base["network_kwargs"])
        cfg = cls(**base)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Every field's type and range (ValueError naming the field), so no config that would
        fail or run without end in the worker is ever accepted."""
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}"
                )
        for name, (lo, hi) in _INTS.items():
            _check_range(name, getattr(self, name), lo, hi, integer=True)
        for name, (lo, hi) in _OPTIONAL_INTS.items():
            if getattr(self, name) is not None:
                _check_range(name, getattr(self, name), lo, hi, integer=True)
        for name, (lo, hi) in _FLOATS.items():
            _check_range(name, getattr(self, name), lo, hi, integer=False)
        for name in _BOOLS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false")
        if self.t_max < self.t0:
            raise ValueError("t_max must be >= t0")
        if not (
            isinstance(self.betas, tuple | list)
            and len(self.betas) == 2
            and all(_is_number(b) and 0 <= b < 1 for b in self.betas)
        ):
            raise ValueError("betas must be two numbers in [0, 1)")
        for field_name in ("weights", "weights_end"):
            weights = getattr(self, field_name)
            if not isinstance(weights, Mapping):
                raise ValueError(f"{field_name} must be an object {{descriptor: number}}")
            unknown = set(weights) - set(DESCRIPTORS)
            if unknown:
                raise ValueError(f"unknown loss weight(s) in {field_name}: {sorted(unknown)}")
            for name, v in weights.items():
                _check_range(f"{field_name}.{name}", v, 0.0, 1e6, integer=False)
        if not (
            isinstance(self.upper_only, tuple | list)
            and all(isinstance(n, str) for n in self.upper_only)
        ):
            raise ValueError("upper_only must be a list of descriptor names")
        unknown = set(self.upper_only) - set(DESCRIPTORS)
        if unknown:
            raise ValueError(f"unknown descriptor(s) in upper_only: {sorted(unknown)}")
        if not isinstance(self.network_kwargs, Mapping):
            raise ValueError("network_kwargs must be an object")
        allowed = NETWORK_KWARGS[self.network]
        extra = sorted(set(self.network_kwargs) - set(allowed))
        if extra:
            raise ValueError(
                f"network_kwargs for {self.network} take only {', '.join(allowed)}; got {extra}"
            )
        for name, v in self.network_kwargs.items():
            lo, hi = allowed[name]
            _check_range(f"network_kwargs.{name}", v, lo, hi, integer=True)
        steps = self.epochs * (self.steps_per_epoch or 1)
        if steps > MAX_STEPS:
            raise ValueError(f"epochs x steps_per_epoch must be at most {MAX_STEPS}")
        if not isinstance(self.preset, str) or self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}")
        check_budget(self.budget)


PRESETS: dict[str, TrainConfig] = {
    # A demo-sized project (a few to a few dozen slices) on 2 CPU cores in about a minute.
    # Centroid weighted up: in the (paper's) pixel units a centroid error of a few px weighs
    # ~40x less than a size error, which makes short runs learn "how much" long before "where".
    "cpu-fast": TrainConfig(
        network_kwargs={"width": 8, "depth": 3},
        lr=5e-3,
        weights={"centroid": 20.0},
        entropy_weight=1.0,
        # Small convolutions barely gain from a second thread, and on a shared 2-core machine
        # (API + worker + anything else) two OpenMP threads spin against each other: measured
        # 0.23 s per step with 1 thread vs 2 s with 2 threads under load.
        num_threads=1,
    ),
    # The paper's setting: ENet at 256 x 256, 200 epochs, batch 8, Adam 5e-4 (0.9, 0.99); of its
    # augmentation (each p = 0.5) blur and scale (zoom out only: a zoom in cuts shapes at the
    # border). No flips or transposes, which the paper does not use and which put the RV on the
    # other side of the LV (ACDC cpu preset: paper 0.68 -> 0.74 Dice without them,
    # ablations-flips.md). No turns either: the paper recomputes each turned slice's bounds
    # from its turned mask, where the trainer turns the bounds themselves (wider), and that cost
    # the descriptor-only method 0.739 -> 0.586 Dice in the cpu preset (ablations-rotation.md).
    "paper": TrainConfig(
        preset="paper",
        network="enet",
        network_kwargs={"width": 16},
        grid=256,
        epochs=200,
        batch_size=8,
        lr=5e-4,
        lr_schedule="constant",
        t0=1.0,
        mu=1.1,
        t_max=1e4,
        p_flip=0.0,
        p_transpose=0.0,
        p_zoom=0.5,
        p_blur=0.5,
        val_every=1,
        progress_every=10,
    ),
}
