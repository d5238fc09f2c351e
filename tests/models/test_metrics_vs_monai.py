"""Our hand-written Dice / HD95 agree with MONAI's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.metrics import dice, hd95
from models.synthetic import make_dataset


def _one_hot(labels: np.ndarray, k: int) -> torch.Tensor:
    """``(H, W)`` or ``(Z, H, W)`` labels -> ``(1, K, ...)`` float one-hot."""
    t = torch.from_numpy(labels.astype(np.int64))
    return torch.nn.functional.one_hot(t, k).movedim(-1, 0)[None].float()


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (1.5, 0.7)])
def test_dice_and_hd95_match_monai_in_2d(spacing: tuple[float, float]) -> None:
    from monai.metrics import compute_dice, compute_hausdorff_distance

    data = make_dataset(2, size=48, num_classes=2, seed=3)  # labels 0..2
    ref = data[0][1]
    pred = np.roll(data[1][1], 2, axis=1)  # a different, shifted shape: distances are non-zero
    k = 3
    ours_d, ours_h = dice(pred, ref, k), hd95(pred, ref, k, spacing)
    theirs_d = compute_dice(_one_hot(pred, k), _one_hot(ref, k), include_background=False)
    theirs_h = compute_hausdorff_distance(
        _one_hot(pred, k), _one_hot(ref, k), percentile=95, spacing=list(spacing)
    )
    for c in range(1, k):
        assert ours_d[c] == pytest.approx(float(theirs_d[0, c - 1]), abs=1e-6)
        assert ours_h[c] > 0
        assert ours_h[c] == pytest.approx(float(theirs_h[0, c - 1]), rel=1e-4, abs=1e-4)
