"""Benchmark presets: the training settings of every benchmark's GPU, CPU and test presets."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from models.budget import SURE_WEIGHT, barrier_growth, barrier_mu, mu_follows
from models.config import TrainConfig


def cpu_train(epochs: int, grid: int, **extra: Any) -> dict[str, Any]:
    """The benchmarks' CPU recipe: ``cpu-fast`` (one thread per training, entropy term, bias
    initialised from the size bounds; ACDC's mask-derived methods drop the entropy term,
    ``benchmarks.acdc.PAPER_LOSS``) with a UNet of width 16 and the constraint loss in length
    units (``models.losses.to_length``): in the paper's units a 10 % size error outweighs a
    centroid or spread error of the structure's whole radius, and on ACDC at 96 px the
    descriptor methods learned one input-independent blob (Dice < 0.01 after 500 steps, 0.20
    in length units). Contour length weighted 0.1: the calibrated length of a soft map is far
    from that of its argmax early on and its lower bound otherwise dominates the loss (left
    out instead, ``upper_only``, ``paper`` lost 0.023 on training slices: section 7 of
    benchmarks/results/ablations-paper-loss.md). No flips
    or transposes, as in the product (``models.budget.default_for``): on ACDC they cost
    ``paper`` 0.74 -> 0.68 Dice and left ``full`` level (0.889 / 0.883;
    benchmarks/results/ablations-flips.md)."""
    return {
        "preset": "cpu-fast",
        "loss_units": "length",
        "weights": {"length": 0.1},
        "network": "unet",
        "network_kwargs": {"width": 16, "depth": 3},
        "grid": grid,
        "epochs": epochs,
        "batch_size": 8,
        "lr": 2e-3,
        "lr_schedule": "cosine",
        "mu": round(barrier_growth(epochs), 4),
        "t_max": 50.0,
        "val_every": max(1, math.ceil(epochs / 4)),
        "p_flip": 0.0,
        "p_transpose": 0.0,
        **extra,
    }


PRODUCT_RECIPE: dict[str, Any] = {
    "sure_weight": SURE_WEIGHT,
    "p_flip": 0.0,  # neither the CPU presets nor the GPU preset ``paper`` flip
    "p_transpose": 0.0,
    "p_rotate": 0.5,  # the product's since session 8; the presets turn nothing (bounds only)
    "rotate_max": 30.0,
    "fit_hints": True,
    "fit_targets": "cut",
}
"""``ellipse+sure``: what ``models.budget.default_for`` trains with beyond a preset: the
partial cross-entropy on the drawings' sure pixels, the drawings fitted to the image first
(the benchmarks build those sure maps with ``fit_targets``), turns of up to 30 degrees, and no
flips or transposes. Rows recorded before session 8 trained without the turns."""


def method_train(method: str) -> dict[str, Any]:
    """Per-method overrides of a preset: ``full`` learns from cross-entropy on its masks and
    drops the entropy term, which only exists to make descriptor-only maps commit (on full
    masks it held RV at Dice 0 for the first 500 steps at 96 px); ``ellipse+sure`` and
    ``sparse+sure`` take the product's recipe (:data:`PRODUCT_RECIPE`)."""
    if method == "full":
        return {"ce_weight": 1.0, "entropy_weight": 0.0}
    return dict(PRODUCT_RECIPE) if method.endswith("+sure") else {}


# The same training settings for every benchmark's GPU and test presets.
PAPER_TRAIN: dict[str, Any] = {"preset": "paper", "val_every": 10}
SMOKE_TRAIN: dict[str, Any] = {
    "preset": "cpu-fast",
    "network": "unet",
    "network_kwargs": {"width": 4, "depth": 2},
    "grid": 32,
    "epochs": 1,
    "batch_size": 4,
    "val_every": 1,
    "progress_every": 1,
}


@dataclass(frozen=True)
class Preset:
    """A benchmark setting: ``train`` = ``models.train.TrainConfig.from_dict`` input (the same for
    every method but what :attr:`per_method` changes), plus how much data to use (None = all)
    and why it was chosen."""

    name: str
    train: dict[str, Any]
    train_limit: int | None = None
    val_limit: int | None = None
    device: str = "auto"
    note: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The command's ``--set`` fields: already in ``train``, and they also win over a
    method's own settings (``Benchmark.method_train``), so any row can be re-run changed."""
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Settings this preset gives only the named methods, over their own
    (``Benchmark.method_train``); the command's ``--set`` fields still win."""

    def with_overrides(
        self,
        overrides: Mapping[str, Any],
        train_limit: int | None,
        val_limit: int | None,
    ) -> Preset:
        return replace(
            self,
            train=merge_train(self.train, overrides=overrides),
            train_limit=self.train_limit if train_limit is None else train_limit,
            val_limit=self.val_limit if val_limit is None else val_limit,
            overrides={**self.overrides, **overrides},
        )

    def label(self, overrides: Mapping[str, Any], limits_changed: bool) -> str:
        """The preset name, marked when the command changed it (results stay honest)."""
        extra = [f"{k}={v}" for k, v in sorted(overrides.items())]
        if limits_changed:
            extra.append(f"limit={self.train_limit},val-limit={self.val_limit}")
        label = self.name if not extra else f"{self.name}+{','.join(extra)}"
        # The label names result files: keep it to a safe character set.
        return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", label)


def merge_train(*layers: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Training settings ``layers`` merged in order (later wins), then a command's ``overrides``.

    A preset's ``mu`` is always derived from its schedule (:func:`cpu_train`, the ACDC CPU
    presets' ``mask_barrier``), so it is derived again when the overrides change ``epochs``,
    ``t0`` or ``t_max`` without giving ``mu``: t still reaches ``t_max`` after 70 % of the
    epochs, as ``models.budget.resolve_config`` does for a job's config. (Before session 15 a
    changed schedule kept the preset's ``mu``: ``--set epochs=60`` reached t 50 at epoch 21.)
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    merged.update(overrides)
    if "mu" in merged and mu_follows(overrides):
        merged["mu"] = round(barrier_mu(TrainConfig.from_dict(merged)), 4)
    return merged


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["epochs=3", "grid=64"]`` -> ``{"epochs": 3, "grid": 64}`` (values parsed as JSON when
    they are JSON, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out
