"""Validation during training: Dice (``models.metrics.dice``) of the network's argmax against the
reference masks of the training slices that have one, on the training grid."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.metrics import dice
from models.samples import Prepared


def validate(
    net: torch.nn.Module, data: Prepared, k: int, device: torch.device, batch: int
) -> dict[str, Any]:
    """``val_dice`` (mean over classes) and ``val_dice_per_class``; {} without masks."""
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
                for c, d in dice(pred[j].numpy(), data.masks[i].numpy(), k).items():
                    per_class[c].append(d)
    net.train()
    means = {c: float(np.mean(v)) for c, v in per_class.items()}
    return {"val_dice": float(np.mean(list(means.values()))), "val_dice_per_class": means}
