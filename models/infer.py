"""Inference from a single-file checkpoint: batched, slice-wise, back on the original grid."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.config import NORMALISATIONS
from models.device import resolve_device
from models.networks import build_network, legacy_network_name
from models.transforms import normalise_image, resize_image, rotate

View = tuple[str, float]
"""A test-time view of a slice: ``("flip", axes)`` (1: x, 2: y, 3: both) or ``("turn", rad)``."""


def tta_views(config: Mapping[str, Any]) -> tuple[View, ...]:
    """The views test-time augmentation (``TrainConfig.tta``) averages besides the slice itself:
    only those the network trained on. Flips (``p_flip`` > 0): x, y and both; turns
    (``p_rotate`` > 0): by -/+ half of ``rotate_max`` degrees; neither: none (the slice alone).

    Why not always the flips: a network never shown a flipped slice reads a flipped heart's RV
    as its LV and a flipped endoscope image's lighting as new; averaging flips it never saw took
    the product default's model alone from 0.860 to 0.194 (ACDC) and 0.887 to 0.701 (Kvasir) on
    the tuning projects (benchmarks/results/ablations-rotation.md, section 6)."""
    views: list[View] = []
    if float(config.get("p_flip", 0.0)) > 0:
        views += [("flip", 1.0), ("flip", 2.0), ("flip", 3.0)]
    if float(config.get("p_rotate", 0.0)) > 0:
        half = math.radians(float(config.get("rotate_max", 0.0)) / 2)
        views += [("turn", -half), ("turn", half)] if half > 0 else []
    return tuple(views)


def _flip_dims(code: float) -> list[int]:
    """The tensor dims a ``("flip", code)`` view flips: 1 -> x (-1), 2 -> y (-2), 3 -> both."""
    return [d for bit, d in ((1, -1), (2, -2)) if int(code) & bit]


@dataclass
class Predictor:
    """A trained network with its preprocessing. Build with ``load_predictor``."""

    net: torch.nn.Module
    num_classes: int
    channels: int
    grid: int
    device: torch.device
    batch_size: int = 16
    info: dict[str, Any] | None = None
    tta: bool = False  # average the softmax over ``views`` (the config's ``tta``)
    views: tuple[View, ...] = ()  # :func:`tta_views` of the training config
    normalisation: str = "minmax"  # as the network saw its training images

    def predict_proba(self, slices: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K, H, W)`` float32 for slices ``(N, C, H, W)``.

        Each slice is normalised as in training and resized to the training grid; the softmax is
        interpolated back to ``(H, W)`` (bilinear) so the caller can take the argmax there.
        """
        x = np.asarray(slices, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"expected slices (N, {self.channels}, H, W), got shape {tuple(x.shape)}"
            )
        n, _, h, w = x.shape
        out = np.empty((n, self.num_classes, h, w), dtype=np.float32)
        self.net.eval()
        with torch.no_grad():
            for start in range(0, n, self.batch_size):
                chunk = torch.tensor(x[start : start + self.batch_size], device=self.device)
                inp = resize_image(
                    normalise_image(chunk, self.normalisation), (self.grid, self.grid)
                )
                probs = self._softmax(inp)
                if (h, w) != (self.grid, self.grid):
                    probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)
                out[start : start + len(chunk)] = probs.cpu().numpy()
        return out

    def _softmax(self, inp: torch.Tensor) -> torch.Tensor:
        """Softmax ``(B, K, G, G)`` of ``inp (B, C, G, G)``; with ``tta`` the mean over the
        slice and its :attr:`views`, each mapped back (a turned view covers less than the grid:
        each pixel averages the views that saw it)."""
        probs = torch.softmax(self.net(inp).float(), 1)
        if not self.tta or not self.views:
            return probs
        total, seen = probs, torch.ones_like(probs[:, :1])
        for kind, value in self.views:
            if kind == "flip":
                dims = _flip_dims(value)
                total = total + torch.softmax(self.net(inp.flip(dims)).float(), 1).flip(dims)
                seen = seen + 1
            else:
                p = torch.softmax(self.net(rotate(inp, value, nearest=False)).float(), 1)
                total = total + rotate(p, -value, nearest=False)
                seen = seen + rotate(torch.ones_like(seen), -value, nearest=False)
        return total / seen

    def predict_slices(self, slices: np.ndarray) -> np.ndarray:
        """Label maps ``(N, H, W)`` uint8 for slices ``(N, C, H, W)`` on their own grid."""
        x = np.asarray(slices, dtype=np.float32)
        labels = np.empty((x.shape[0], *x.shape[2:]), dtype=np.uint8)
        # Chunked so probabilities of a large volume never sit in memory all at once.
        for start in range(0, x.shape[0], self.batch_size):
            labels[start : start + self.batch_size] = self.predict_proba(
                x[start : start + self.batch_size]
            ).argmax(1)
        return labels

    def predict_image(self, image: np.ndarray) -> np.ndarray:
        """Label map ``(H, W)`` uint8 for one image ``(C, H, W)``."""
        return self.predict_slices(np.asarray(image)[None])[0]

    def predict_volume(self, volume: np.ndarray) -> np.ndarray:
        """Label volume ``(Z, H, W)`` uint8 for ``(Z, C, H, W)``, slice by slice."""
        v = np.asarray(volume)
        if v.ndim != 4:
            raise ValueError(f"expected a volume (Z, C, H, W), got shape {tuple(v.shape)}")
        return self.predict_slices(v)


def load_predictor(checkpoint: Path | str, device: str | torch.device = "auto") -> Predictor:
    """Rebuild the network of a checkpoint written by ``models.train`` (nothing else needed)."""
    dev = resolve_device(device)
    ck = torch.load(Path(checkpoint), map_location="cpu", weights_only=False)
    normalisation = ck.get("normalisation", "minmax")  # files older than the choice: min-max
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unsupported normalisation {normalisation!r}")
    # A checkpoint saved as "enet" before the paper's ENet replaced the light one is the light one.
    name = legacy_network_name(ck["network"], ck["state_dict"])
    net = build_network(name, ck["channels"], ck["num_classes"], **ck["network_kwargs"])
    net.load_state_dict(ck["state_dict"])
    net.to(dev).eval()
    info = {k: ck.get(k) for k in ("network", "network_kwargs", "config", "epoch")}
    config = ck.get("config") or {}
    tta = bool(config.get("tta", False))
    return Predictor(
        net,
        int(ck["num_classes"]),
        int(ck["channels"]),
        int(ck["grid"]),
        dev,
        info=info,
        tta=tta,
        views=tta_views(config),
        normalisation=normalisation,
    )
