"""Model files: one self-contained checkpoint (``model.pt``: best or final weights) and the
resumable one (``last.pt``: plus optimiser state, epoch, barrier ``t`` and best score), written
atomically; reading an initial checkpoint back for a warm start or a resume."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.config import TrainConfig

CHECKPOINT_NAME = "model.pt"
LAST_NAME = "last.pt"


def cpu_weights(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``net``'s state dict, detached and on the CPU (what a checkpoint stores)."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


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
        "state_dict": cpu_weights(net),
        "num_classes": num_classes,
        "channels": channels,
        "grid": cfg.grid,
        "normalisation": cfg.normalisation,
        "config": cfg.to_dict(),
    }
    if extra:
        state.update(extra)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: readers never see half a checkpoint


def save_last(
    path: Path,
    net: torch.nn.Module,
    cfg: TrainConfig,
    num_classes: int,
    channels: int,
    opt: torch.optim.Optimizer,
    *,
    epoch: int,
    t: float,
    best: float | None,
    best_epoch: int,
    train_net: torch.nn.Module | None = None,
) -> None:
    """``last.pt``: the weights after ``epoch`` epochs plus what a resumed run continues from.
    With weight averaging, ``net`` is the averaged network (what predicts) and ``train_net``
    the live one the optimiser steps (``resume["train_state_dict"]``)."""
    resume: dict[str, Any] = {
        "optimizer": opt.state_dict(),
        "epoch": epoch,
        "t": t,
        "best": best,
        "best_epoch": best_epoch,
    }
    if train_net is not None:
        resume["train_state_dict"] = cpu_weights(train_net)
    save_checkpoint(
        path,
        net,
        cfg,
        num_classes,
        channels,
        {"epoch": epoch, "resume": resume},
    )


@dataclass
class ResumeState:
    """Where an interrupted run stopped (``last.pt``'s ``resume`` entry) and its config."""

    epoch: int
    t: float
    best: float | None
    best_epoch: int
    config: dict[str, Any]
    averaged: dict[str, torch.Tensor] | None = None
    """The averaged network's weights where the run averaged them (``TrainConfig.ema_decay``);
    the live network was loaded with its own."""


def load_init(
    path: Path | str,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    cfg: TrainConfig,
    num_classes: int,
    channels: int,
) -> ResumeState | None:
    """Load an initial checkpoint's weights into ``net`` (ValueError when network, its kwargs,
    classes or channels differ); with ``cfg.resume`` and resume state in the file, also the
    optimiser's, and return where that run stopped (else None: a warm start)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    kwargs = dict(ck.get("network_kwargs", cfg.network_kwargs))
    if (ck["network"], kwargs, ck["num_classes"], ck["channels"]) != (
        cfg.network,
        dict(cfg.network_kwargs),
        num_classes,
        channels,
    ):
        raise ValueError(
            "init_checkpoint does not match: "
            f"{ck['network']} {kwargs}/{ck['num_classes']} classes/{ck['channels']} channels vs "
            f"{cfg.network} {dict(cfg.network_kwargs)}/{num_classes}/{channels}"
        )
    net.load_state_dict(ck["state_dict"])
    if not (cfg.resume and "resume" in ck):
        return None
    r = ck["resume"]
    opt.load_state_dict(r["optimizer"])
    averaged = None
    if "train_state_dict" in r:  # the file's weights are the average: continue from the live ones
        net.load_state_dict(r["train_state_dict"])
        averaged = ck["state_dict"]
    return ResumeState(
        int(r["epoch"]),
        float(r["t"]),
        r.get("best"),
        int(r.get("best_epoch", -1)),
        ck["config"],
        averaged,
    )
