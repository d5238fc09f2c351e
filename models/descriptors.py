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

from typing import Any

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


_BASIS_CACHE: dict[tuple[Any, ...], tuple[torch.Tensor, list[float], list[tuple[int, int]]]] = {}


def _basis(
    spatial: tuple[int, ...], p: torch.Tensor
) -> tuple[torch.Tensor, list[float], list[tuple[int, int]]]:
    """Polynomial basis ``(prod(spatial), 1 + d + pairs)`` of centred coordinates (cached)."""
    key = (spatial, p.device, p.dtype)
    hit = _BASIS_CACHE.get(key)
    if hit is not None:
        return hit
    axes, shifts = [], []
    for i, n in enumerate(reversed(spatial)):  # x = last dim, y = second last, z = third last
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
    if len(_BASIS_CACHE) > 32:
        _BASIS_CACHE.clear()
    _BASIS_CACHE[key] = (basis, shifts, pairs)
    return basis, shifts, pairs


def moments(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Size, centroid and covariance in one pass.

    Returns ``size (B, K)``, ``centroid (B, K, d)`` in (x, y[, z]) order and ``covariance
    (B, K, c)``: 2D ``(xx, yy, xy)``; 3D ``(xx, yy, zz, xy, xz, yz)``. Population (not sample)
    covariance, so a filled disk of radius r has xx = yy = r^2 / 4.
    """
    p = _work(p)
    b, k = p.shape[:2]
    spatial = p.shape[2:]
    basis, shifts, pairs = _basis(tuple(spatial), p)
    d = len(shifts)
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


def _sobel_sums(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8x the Sobel x / y derivatives of edge-padded maps ``q (N, H+2, W+2)`` -> ``(N, H, W)``."""
    dx = q[:, :, 2:] - q[:, :, :-2]  # central difference along x (x2)
    gx = dx[:, :-2] + 2 * dx[:, 1:-1] + dx[:, 2:]  # smoothed along y (x4)
    dy = q[:, 2:] - q[:, :-2]
    gy = dy[:, :, :-2] + 2 * dy[:, :, 1:-1] + dy[:, :, 2:]
    return gx, gy


class _SobelLength(torch.autograd.Function):
    """sum_p sqrt(gx^2 + gy^2 + e^2) per map, with a hand-written adjoint.

    The backward applies the transposed Sobel filters to (gx, gy) / magnitude and folds the
    replicated border back: about half the passes over memory that autograd's graph of slices
    would take, which is most of the cost of the descriptor loss.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, e: float) -> torch.Tensor:  # x: (N, H, W)
        q = F.pad(x[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
        gx, gy = _sobel_sums(q)
        mag = torch.sqrt(gx * gx + gy * gy + e * e)
        ctx.save_for_backward(gx.div_(mag), gy.div_(mag))
        return mag.sum((-2, -1))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        ux, uy = ctx.saved_tensors
        g = grad.view(-1, 1, 1)
        ux, uy = ux * g, uy * g
        # Adjoint of the smoothing along y (for x) / along x (for y).
        sx = F.pad(ux, (0, 0, 2, 0)) + 2 * F.pad(ux, (0, 0, 1, 1)) + F.pad(ux, (0, 0, 0, 2))
        sy = F.pad(uy, (2, 0, 0, 0)) + 2 * F.pad(uy, (1, 1, 0, 0)) + F.pad(uy, (0, 2, 0, 0))
        # Adjoint of the central differences: sx is (N, H+2, W), sy is (N, H, W+2).
        gq = F.pad(sx, (2, 0, 0, 0)) - F.pad(sx, (0, 2, 0, 0))
        gq = gq + F.pad(sy, (0, 0, 2, 0)) - F.pad(sy, (0, 0, 0, 2))
        # Adjoint of the replicate padding: fold the frame onto the border pixels.
        gq[:, :, 1] += gq[:, :, 0]
        gq[:, :, -2] += gq[:, :, -1]
        gq[:, 1, :] += gq[:, 0, :]
        gq[:, -2, :] += gq[:, -1, :]
        return gq[:, 1:-1, 1:-1], None


def length(p: torch.Tensor) -> torch.Tensor:
    """Contour length ``(B, K)`` in px, calibrated to the true perimeter of a binary mask.

    Sum over pixels of the Sobel gradient magnitude ``sqrt(gx^2 + gy^2 + e^2) - e`` (e =
    ``EPS_LENGTH``; zero on flat areas, smooth at 0), times ``LENGTH_CALIBRATION`` (the mean
    response of Sobel to straight binary edges over all orientations; see models.units). Image
    borders are replicated, so a class touching the border is not outlined along it. 2D only.

    Sobel's smoothing hides raggedness at the pixel scale: a period-2 pattern has no central
    difference, so a disk of radius 20 px whose boundary is a 6 px band of checkerboard
    measures 128 px against the clean disk's 124 (ten times the pixel edges). A bound on this
    length cannot forbid a frayed rim (benchmarks/results/ablations-paper-loss.md, section 11).
    """
    p = _work(p)
    if p.dim() != 4:
        raise ValueError("length is defined for 2D maps (B, K, H, W)")
    b, k, h, w = p.shape
    # Sobel = the sums / 8; the 1/8 is folded into eps and the final scale.
    e8 = 8.0 * EPS_LENGTH
    total = _SobelLength.apply(p.reshape(b * k, h, w), e8) - e8 * h * w
    return total.view(b, k) * (LENGTH_CALIBRATION / 8.0)


def all_descriptors(
    p: torch.Tensor,
    with_length: bool = True,
    length_classes: torch.Tensor | None = None,
    length_of: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every constrained component ``(B, K, M)`` of a 2D map, in ``COMPONENTS`` order.

    ``(size, centroid_x, centroid_y, spread_x, spread_y, cov_xx, cov_yy, cov_xy, length)``. The
    length convolution is the costly part, so it can be limited: ``with_length=False`` leaves
    the slot 0; ``length_classes`` (1D class indices) computes it for those classes only.
    ``length_of``: another ``(B, K, H, W)`` map whose contour length fills the length slot
    (default ``p``; the loss's straight-through hard map).
    """
    p = _work(p)
    s, cent, cov = moments(p)
    spr = torch.sqrt(cov[..., :2] + EPS)
    lp = p if length_of is None else _work(length_of)
    if not with_length:
        ln = torch.zeros_like(s)
    elif length_classes is None:
        ln = length(lp)
    else:
        ln = torch.zeros_like(s).index_copy(1, length_classes, length(lp[:, length_classes]))
    out = torch.cat([s[..., None], cent, spr, cov, ln[..., None]], dim=-1)
    assert out.shape[-1] == len(COMPONENTS)
    return out
