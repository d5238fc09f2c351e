"""Differentiable shape descriptors of soft segmentations, vectorised over batch and classes.

Input ``p``: probabilities or one-hot masks ``(B, K, H, W)`` (2D) or ``(B, K, D, H, W)`` (3D,
for size/centroid/spread/covariance). Pixel units; x = column, y = row (z = slice), pixel centres
at integer indices. Computation runs in the input's dtype (half precision is promoted to
float32), with no Python loops over batch or class. Empty classes give finite values and
gradients: every division uses ``size + EPS``.

All moments come from one matrix product of the flattened maps with a small polynomial basis
``[1, x, y, x^2, y^2, xy]`` (coordinates centred on the image to keep float32 cancellation small),
so forward and backward cost about two passes over ``p``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.units import COMPONENTS, EPS_LENGTH, LENGTH_CALIBRATION

EPS = 1e-6
"""Added to sizes (px^2) before dividing and to variances before square roots."""

__all__ = [
    "COMPONENTS",
    "all_descriptors",
    "centroid",
    "covariance",
    "length",
    "moments",
    "size",
    "spread",
]


def _work(p: torch.Tensor) -> torch.Tensor:
    if p.dim() not in (4, 5):
        raise ValueError(f"expected (B, K, H, W) or (B, K, D, H, W), got shape {tuple(p.shape)}")
    return p if p.dtype in (torch.float32, torch.float64) else p.float()


def _centred(n: int, p: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Coordinates 0..n-1 shifted by their mean, and that shift."""
    c = (n - 1) / 2.0
    return torch.arange(n, device=p.device, dtype=p.dtype) - c, c


def moments(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Size, centroid and covariance in one pass.

    Returns ``size (B, K)``, ``centroid (B, K, d)`` in (x, y[, z]) order and ``covariance
    (B, K, c)``: 2D ``(xx, yy, xy)``; 3D ``(xx, yy, zz, xy, xz, yz)``. Population (not sample)
    covariance, so a filled disk of radius r has xx = yy = r^2 / 4.
    """
    p = _work(p)
    b, k = p.shape[:2]
    spatial = p.shape[2:]
    # Axes in (x, y, z) order: x = last dim, y = second last, z = third last.
    axes = []
    shifts = []
    for i, n in enumerate(reversed(spatial)):
        coord, c = _centred(n, p)
        view = [1] * len(spatial)
        view[len(spatial) - 1 - i] = n
        axes.append(coord.view(view).expand(spatial))
        shifts.append(c)
    d = len(axes)
    pairs = [(i, i) for i in range(d)] + [(i, j) for i in range(d) for j in range(i + 1, d)]
    basis = torch.stack(
        [torch.ones(spatial, device=p.device, dtype=p.dtype), *axes]
        + [axes[i] * axes[j] for i, j in pairs],
        dim=-1,
    ).reshape(-1, 1 + d + len(pairs))
    m = p.reshape(b * k, -1) @ basis  # (B*K, 1 + d + pairs)
    m = m.view(b, k, -1)
    s = m[..., 0]
    denom = s + EPS
    mean = m[..., 1 : 1 + d] / denom.unsqueeze(-1)
    second = m[..., 1 + d :] / denom.unsqueeze(-1)
    cov = torch.stack(
        [second[..., n] - mean[..., i] * mean[..., j] for n, (i, j) in enumerate(pairs)], -1
    )
    # Variances cannot be negative; float32 cancellation may give -1e-4 on tiny classes.
    diag = cov[..., :d].clamp_min(0.0)
    cov = torch.cat([diag, cov[..., d:]], dim=-1)
    cent = mean + torch.tensor(shifts, device=p.device, dtype=p.dtype)
    return s, cent, cov


def size(p: torch.Tensor) -> torch.Tensor:
    """Soft area (px^2, or voxels in 3D): ``(B, K)``."""
    return _work(p).flatten(2).sum(-1)


def centroid(p: torch.Tensor) -> torch.Tensor:
    """Centre of mass ``(B, K, 2)`` as (x, y), or ``(B, K, 3)`` as (x, y, z) in 3D; px."""
    return moments(p)[1]


def covariance(p: torch.Tensor) -> torch.Tensor:
    """Second central moments: 2D ``(B, K, 3)`` as (xx, yy, xy) px^2; 3D ``(B, K, 6)``
    as (xx, yy, zz, xy, xz, yz)."""
    return moments(p)[2]


def spread(p: torch.Tensor) -> torch.Tensor:
    """Per-axis standard deviation ``(B, K, 2)`` (x, y) or ``(B, K, 3)`` in 3D; px.

    A filled disk of radius r has spread r / 2.
    """
    _, _, cov = moments(p)
    d = 3 if p.dim() == 5 else 2
    return torch.sqrt(cov[..., :d] + EPS)


def _sobel_weight(p: torch.Tensor) -> torch.Tensor:
    deriv = torch.tensor([-0.5, 0.0, 0.5], device=p.device, dtype=p.dtype)
    smooth = torch.tensor([0.25, 0.5, 0.25], device=p.device, dtype=p.dtype)
    gx = smooth[:, None] * deriv[None, :]  # d/dx (columns), smoothed along rows
    return torch.stack([gx, gx.t()]).unsqueeze(1)  # (2, 1, 3, 3)


def length(p: torch.Tensor) -> torch.Tensor:
    """Contour length ``(B, K)`` in px, calibrated to the true perimeter of a binary mask.

    Sum over pixels of the Sobel gradient magnitude ``sqrt(gx^2 + gy^2 + e^2) - e`` (e =
    ``EPS_LENGTH``; zero on flat areas, smooth at 0), times ``LENGTH_CALIBRATION`` (the mean
    response of Sobel to straight binary edges over all orientations; see models.units). Image
    borders are replicated, so a class touching the border is not outlined along it. 2D only.
    """
    p = _work(p)
    if p.dim() != 4:
        raise ValueError("length is defined for 2D maps (B, K, H, W)")
    b, k, h, w = p.shape
    x = F.pad(p.reshape(b * k, 1, h, w), (1, 1, 1, 1), mode="replicate")
    g = F.conv2d(x, _sobel_weight(p))  # (B*K, 2, H, W)
    mag = torch.sqrt((g * g).sum(1) + EPS_LENGTH**2) - EPS_LENGTH
    return mag.sum((-2, -1)).view(b, k) * LENGTH_CALIBRATION


def all_descriptors(p: torch.Tensor, with_length: bool = True) -> torch.Tensor:
    """Every constrained component ``(B, K, M)`` of a 2D map, in ``COMPONENTS`` order.

    ``(size, centroid_x, centroid_y, spread_x, spread_y, cov_xx, cov_yy, cov_xy, length)``; with
    ``with_length=False`` the length slot is 0 (saves the convolution when unconstrained).
    """
    p = _work(p)
    s, cent, cov = moments(p)
    spr = torch.sqrt(cov[..., :2] + EPS)
    ln = length(p) if with_length else torch.zeros_like(s)
    out = torch.cat([s[..., None], cent, spr, cov, ln[..., None]], dim=-1)
    assert out.shape[-1] == len(COMPONENTS)
    return out
