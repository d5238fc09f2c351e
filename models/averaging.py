"""Weight averaging: an exponential moving average of a network's weights over its training steps.

The averaged copy is what validation, checkpoints and prediction use when
``TrainConfig.ema_decay`` is above 0; the optimiser keeps stepping the live network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def warmed_decay(decay: float, updates: int) -> float:
    """The decay used at update ``updates`` (0-based count of earlier updates):
    ``min(decay, (1 + n) / (10 + n))``. Without the warm-up the average of a short run would
    still weigh its first, untrained steps: at 0.999, 79 % of a 240-step average would be
    the initial weights."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def averaged_network(net: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An EMA copy of ``net`` (parameters and buffers, so BatchNorm statistics too), or None
    when ``decay`` is 0. Call ``.update_parameters(net)`` after every optimiser step; its
    ``.module`` is the averaged network."""
    if decay <= 0:
        return None

    def ema(
        averaged: Sequence[torch.Tensor], current: Sequence[torch.Tensor], n: torch.Tensor
    ) -> None:
        get_ema_multi_avg_fn(warmed_decay(decay, int(n)))(averaged, current, n)

    return AveragedModel(net, multi_avg_fn=ema, use_buffers=True)
