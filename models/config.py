"""Training configuration: presets plus validated overrides (no torch here).

The API validates job configs with this module without importing torch; the trainer
(``models.train``) consumes the resulting :class:`TrainConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.units import DESCRIPTORS


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
    loss_units: str = "paper"  # "paper" | "length" (models.losses.constraint_loss ``units``)
    ce_weight: float = 0.0  # > 0: cross-entropy on samples that have a mask (mixed supervision)
    # Mean pixel entropy of the softmax, ramped in linearly over the first half of training:
    # size and centroid bounds alone are also met by diffuse, low-confidence maps whose argmax
    # is background; the entropy term makes the network commit to hard regions.
    entropy_weight: float = 0.0
    augment: bool = True
    p_flip: float = 0.5
    p_transpose: float = 0.5
    p_zoom: float = 0.3
    zoom_min: float = 0.8
    p_intensity: float = 0.5
    p_blur: float = 0.0
    seed: int = 0
    amp: bool = True  # used on CUDA only
    val_every: int = 5  # epochs
    progress_every: int = 5  # steps
    resume: bool = False  # init_checkpoint continues its run (epoch, optimizer, t) if true
    num_threads: int | None = None  # CPU threads; None: torch default

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
        cfg = cls(**base)
        cfg.validate()
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        if self.network not in ("unet", "enet"):
            raise ValueError(f"network must be 'unet' or 'enet', got {self.network!r}")
        if self.loss not in ("log_barrier", "quadratic"):
            raise ValueError(f"loss must be 'log_barrier' or 'quadratic', got {self.loss!r}")
        if self.loss_units not in ("paper", "length"):
            raise ValueError(f"loss_units must be 'paper' or 'length', got {self.loss_units!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"
            )
        if not 16 <= self.grid <= 1024:
            raise ValueError(f"grid must be in 16..1024, got {self.grid}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.lr <= 0 or self.t0 <= 0 or self.mu < 1 or self.t_max < self.t0:
            raise ValueError("need lr > 0, t0 > 0, mu >= 1, t_max >= t0")
        unknown = set(self.weights) - set(DESCRIPTORS)
        if unknown:
            raise ValueError(f"unknown loss weight(s): {sorted(unknown)}")


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
    # The paper's setting: ENet at 256 x 256, 200 epochs, batch 8, Adam 5e-4 (0.9, 0.99).
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
        p_zoom=0.5,
        p_blur=0.5,
        val_every=1,
        progress_every=10,
    ),
}
