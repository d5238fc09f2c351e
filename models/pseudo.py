"""Self-training: the network's own masks, where they honour the hints, as training targets.

A round (``TrainConfig.pseudo_rounds``) predicts every training slice on the training grid
(no augmentation), keeps the label maps whose every hinted class, and every union of classes,
meets that slice's bounds (``models.quality.slice_tallies``, the check a job's quality report
uses), and from then on adds a cross-entropy term towards them (``pseudo_weight``), seen through
the same augmentations as the image. A slice with a reference mask keeps it; a slice whose
prediction breaks a bound gets no pseudo-mask (its bounds still apply).

Rounds start halfway through training, when the constraints are mostly met, and are spread
evenly over the second half (:func:`round_epochs`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from models.quality import slice_tallies
from models.samples import Prepared


def round_epochs(epochs: int, rounds: int) -> list[int]:
    """The epochs (1-based: after that many epochs) at which the rounds refresh the
    pseudo-masks: ``rounds`` points spread over ``[epochs / 2, epochs)``, each at least 1 and
    below ``epochs`` (a round after the last epoch would train nothing); duplicates dropped."""
    if rounds <= 0 or epochs < 2:
        return []
    points = {max(1, math.ceil(epochs * (0.5 + 0.5 * r / rounds))) for r in range(rounds)}
    return sorted(p for p in points if p < epochs)


def meets_bounds(labels: np.ndarray, lo: np.ndarray, hi: np.ndarray, unions: np.ndarray) -> bool:
    """Whether ``labels (H, W)`` meets the bounds ``lo``/``hi`` ``(K + U, M)`` (px of that
    grid) of every hinted class and union (``unions (U, K)`` memberships). False when nothing
    on the slice is bounded: there is no evidence to accept a mask on."""
    k = unions.shape[1]
    tallies = slice_tallies(labels, lo[:k], hi[:k])
    for u, members in enumerate(unions):
        inside = np.isin(labels, np.flatnonzero(members)).astype(np.uint8)
        rows = [0, k + u]
        tallies += slice_tallies(inside, lo[rows], hi[rows])
    hinted = [t for t in tallies if t.hinted_slices]
    return bool(hinted) and all(t.meeting_bounds and not t.empty_where_present for t in hinted)


@torch.no_grad()
def pseudo_masks(
    net: torch.nn.Module,
    data: Prepared,
    unions: torch.Tensor,
    device: torch.device,
    batch: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's argmax ``(N, G, G)`` int64 of every prepared slice and which ``(N,)`` bool
    meet their bounds (``meets_bounds``). ``unions``: ``(U, K)`` memberships, as in training."""
    was_training = net.training
    net.eval()
    labels = []
    for start in range(0, data.images.shape[0], batch):
        labels.append(net(data.images[start : start + batch].to(device)).argmax(1).cpu())
    net.train(was_training)
    pred = torch.cat(labels)
    lo, hi, members = data.lo.numpy(), data.hi.numpy(), unions.cpu().numpy()
    ok = [meets_bounds(pred[i].numpy(), lo[i], hi[i], members) for i in range(len(pred))]
    return pred, torch.tensor(ok, dtype=torch.bool)
