"""Geometric transforms of images, masks and descriptor bounds, kept consistent with each other.

Bounds are ``(K, M)`` tensors in ``COMPONENTS`` order (px units of the grid they refer to;
open ends +-inf). Every transform maps an interval that holds a shape's true descriptor to an
interval that holds the transformed shape's descriptor: exactly for flips / 90-degree turns /
uniform scales (up to resampling of the pixels), conservatively for contour length under
anisotropic scaling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.config import NORMALISATIONS
from models.units import COMPONENT_INDEX, NONNEGATIVE

_I = COMPONENT_INDEX
_SIZE, _CX, _CY, _SX, _SY = (
    _I["size"],
    _I["centroid_x"],
    _I["centroid_y"],
    _I["spread_x"],
    _I["spread_y"],
)
_XX, _YY, _XY, _LEN = _I["cov_xx"], _I["cov_yy"], _I["cov_xy"], _I["length"]


PERCENTILES = (1.0, 99.0)
"""%; ``"percentile"`` maps these intensity percentiles of each image to 0 and 1 and clips.
A few bright pixels (MRI flow artefacts, specular highlights) otherwise set an image's scale:
on ACDC training volumes the 99th percentile lies between 0.38 and 0.96 of the maximum, so
min-max scaling shows the same tissue at very different brightness from volume to volume.
Part of what the name ``"percentile"`` means to a checkpoint (which records only the name):
other percentiles need another name."""


def resolve_normalisation(method: str, channels: int) -> str:
    """``TrainConfig.normalisation`` for images of ``channels`` channels: ``"auto"`` is
    ``"percentile"`` for colour photographs (3 channels), whose brightest pixels are specular
    highlights, and ``"minmax"`` for one-channel scans, whose brightest tissue (the blood pool
    in cine MRI: 9 % of the LV lies above its slice's 99th percentile) is what contrasts.
    A field, not the default plan: at the length the ``standard`` budget plans it did not beat
    min-max (benchmarks/results/ablations-normalisation.md); other methods pass through."""
    if method != "auto":
        return method
    return "percentile" if channels == 3 else "minmax"


def normalise_image(image: torch.Tensor, method: str = "minmax") -> torch.Tensor:
    """Scale each image of ``(N, C, H, W)`` (over its C, H, W) to [0, 1]; constant images
    become 0. ``method``: ``"minmax"`` its minimum and maximum go to 0 and 1; ``"percentile"``
    its :data:`PERCENTILES` do, values beyond are clipped (min-max where they coincide)."""
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose from {NORMALISATIONS}")
    flat = image.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    if method == "percentile":
        # kthvalue rather than quantile: torch.quantile refuses inputs above 2**24 values.
        n = flat.shape[1]
        k_lo, k_hi = (min(n, max(1, round(p / 100 * n))) for p in PERCENTILES)
        p_lo, p_hi = flat.kthvalue(k_lo, 1).values, flat.kthvalue(k_hi, 1).values
        spread = p_hi > p_lo
        lo, hi = torch.where(spread, p_lo, lo), torch.where(spread, p_hi, hi)
    lo, hi = lo.view(-1, 1, 1, 1), hi.view(-1, 1, 1, 1)
    out = (image - lo) / (hi - lo).clamp_min(1e-8)
    return out.clamp(0.0, 1.0) if method == "percentile" else out


def resize_image(image: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(N, C, H, W)`` to ``(N, C, *hw)`` (antialiased when shrinking)."""
    if tuple(image.shape[-2:]) == tuple(hw):
        return image
    shrink = image.shape[-2] > hw[0] or image.shape[-1] > hw[1]
    return F.interpolate(image, size=hw, mode="bilinear", align_corners=False, antialias=shrink)


def resize_mask(mask: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of integer label maps ``(N, H, W)`` to ``(N, *hw)``."""
    if tuple(mask.shape[-2:]) == tuple(hw):
        return mask
    out = F.interpolate(mask[:, None].float(), size=hw, mode="nearest-exact")
    return out[:, 0].to(mask.dtype)


def _scale_interval(
    lo: torch.Tensor, hi: torch.Tensor, i: int, f: float, shift: float = 0.0
) -> None:
    """In place: component i -> f * value + shift, with f > 0."""
    lo[..., i] = lo[..., i] * f + shift
    hi[..., i] = hi[..., i] * f + shift


def resize_bounds(
    lo: torch.Tensor, hi: torch.Tensor, in_hw: tuple[int, int], out_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of a ``(H, W)`` image for the same image resized to ``out_hw`` (pixel centres:
    ``x' = (x + 0.5) sx - 0.5`` with ``sx = W' / W``). Length uses ``[min(sx, sy), max(sx, sy)]``.
    """
    lo, hi = lo.clone(), hi.clone()
    sy, sx = out_hw[0] / in_hw[0], out_hw[1] / in_hw[1]
    _scale_interval(lo, hi, _SIZE, sx * sy)
    _scale_interval(lo, hi, _CX, sx, 0.5 * sx - 0.5)
    _scale_interval(lo, hi, _CY, sy, 0.5 * sy - 0.5)
    _scale_interval(lo, hi, _SX, sx)
    _scale_interval(lo, hi, _SY, sy)
    _scale_interval(lo, hi, _XX, sx * sx)
    _scale_interval(lo, hi, _YY, sy * sy)
    _scale_interval(lo, hi, _XY, sx * sy)
    lo[..., _LEN] = lo[..., _LEN] * min(sx, sy)
    hi[..., _LEN] = hi[..., _LEN] * max(sx, sy)
    return lo, hi


def _flip_interval(lo: torch.Tensor, hi: torch.Tensor, i: int, total: float) -> None:
    """In place: component i -> total - value (an interval reverses)."""
    new_lo = total - hi[..., i]
    new_hi = total - lo[..., i]
    lo[..., i], hi[..., i] = new_lo, new_hi


def dihedral_bounds(
    lo: torch.Tensor,
    hi: torch.Tensor,
    hw: tuple[int, int],
    *,
    transpose: bool,
    flip_x: bool,
    flip_y: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds after ``dihedral`` (transpose first, then flips), exactly.

    ``hw``: grid before the transform (after a transpose it is ``(W, H)``).
    """
    lo, hi = lo.clone(), hi.clone()
    h, w = hw
    if transpose:
        for a, b in ((_CX, _CY), (_SX, _SY), (_XX, _YY)):
            lo[..., [a, b]] = lo[..., [b, a]]
            hi[..., [a, b]] = hi[..., [b, a]]
        h, w = w, h
    if flip_x:
        _flip_interval(lo, hi, _CX, w - 1.0)
        _flip_interval(lo, hi, _XY, 0.0)
    if flip_y:
        _flip_interval(lo, hi, _CY, h - 1.0)
        _flip_interval(lo, hi, _XY, 0.0)
    return lo, hi


def dihedral(x: torch.Tensor, *, transpose: bool, flip_x: bool, flip_y: bool) -> torch.Tensor:
    """Apply the same dihedral transform to ``(..., H, W)`` images or masks."""
    if transpose:
        x = x.transpose(-1, -2)
    dims = [d for d, f in ((-1, flip_x), (-2, flip_y)) if f]
    return x.flip(dims) if dims else x


def zoom_bounds(
    lo: torch.Tensor, hi: torch.Tensor, hw: tuple[int, int], s: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds after a zoom by ``s`` about the grid centre (``x' = s (x - c) + c``).

    For ``s <= 1`` (zoom out, the border padded with background) every foreground shape stays in
    the image, so the mapping is exact; the background row (index 0) gains the padded area and
    loses its centroid/spread bounds. For ``s > 1`` the foreground rows are exact only for
    shapes that stay inside the grid (callers cap ``s`` by :func:`zoom_in_limit`); the
    background, cut at the border by an amount no bound knows, loses every bound.
    """
    lo, hi = lo.clone(), hi.clone()
    h, w = hw
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    bg_lo, bg_hi = lo[0].clone(), hi[0].clone()
    _scale_interval(lo, hi, _SIZE, s * s)
    _scale_interval(lo, hi, _CX, s, cx * (1 - s))
    _scale_interval(lo, hi, _CY, s, cy * (1 - s))
    for i in (_SX, _SY, _LEN):
        _scale_interval(lo, hi, i, s)
    for i in (_XX, _YY, _XY):
        _scale_interval(lo, hi, i, s * s)
    if s < 1:
        pad = h * w * (1 - s * s)
        lo[0] = -math.inf
        hi[0] = math.inf
        lo[0, _SIZE] = bg_lo[_SIZE] * s * s + pad
        hi[0, _SIZE] = bg_hi[_SIZE] * s * s + pad
        # The padded frame adds a border contour of the background class only if it was
        # touching nothing before; its length bound is left open to stay conservative.
    elif s > 1:
        lo[0] = -math.inf
        hi[0] = math.inf
    return lo, hi


def zoom_in_limit(possible: torch.Tensor) -> float:
    """The largest zoom about the grid centre that keeps every pixel of ``possible`` ``(G, G)``
    bool (where some foreground class may lie) inside the grid's inscribed disc, so that the
    zoom's bounds stay exact after any turn or flip too (they keep distances from the centre).
    Below 1 where a possible pixel lies outside the disc already; inf where there is none."""
    h, w = possible.shape[-2:]
    ys, xs = torch.nonzero(possible, as_tuple=True)
    if len(ys) == 0:
        return math.inf
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # A pixel's far corner, not its centre: the zoomed shape's edge must stay inside too.
    far = torch.sqrt((xs.float() - cx).abs().add(0.5) ** 2 + (ys.float() - cy).abs().add(0.5) ** 2)
    return float(min(cx, cy) + 0.5) / float(far.max())


def zoom(x: torch.Tensor, s: float, *, nearest: bool) -> torch.Tensor:
    """Zoom ``(N, C, H, W)`` by ``s`` about the centre; outside pixels become 0 (background)."""
    return _resample(x, [[1 / s, 0.0], [0.0, 1 / s]], nearest=nearest)


def _resample(x: torch.Tensor, inverse: list[list[float]], *, nearest: bool) -> torch.Tensor:
    """``(N, C, H, W)`` resampled about its centre: output pixel ``p`` takes the input at
    ``inverse @ p`` (2 x 2, normalised coordinates); pixels from outside become 0."""
    theta = torch.tensor(
        [[*inverse[0], 0.0], [*inverse[1], 0.0]], dtype=torch.float32, device=x.device
    )
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(
        x.float(),
        grid,
        mode="nearest" if nearest else "bilinear",
        padding_mode="zeros",
        align_corners=False,
    )


ROTATION_LENGTH_SLACK = 0.06
"""Relative widening of contour-length bounds under a rotation: the calibrated Sobel length
(``models.descriptors.length``) of a pixelated ellipse and of the same ellipse turned and
resampled (nearest neighbour) differed by -1.3 % to +5.7 % over 60 ellipses and 7 angles."""


def _combine(
    terms: list[tuple[float, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval of ``sum(a * [lo, hi])`` over ``terms`` of ``(a, lo, hi)``: ``(..)`` tensors,
    open ends allowed; a zero coefficient drops its term (no ``0 * inf``)."""
    out_lo = out_hi = None
    for a, lo, hi in terms:
        if a == 0.0:
            continue
        t_lo, t_hi = (a * lo, a * hi) if a > 0 else (a * hi, a * lo)
        out_lo = t_lo if out_lo is None else out_lo + t_lo
        out_hi = t_hi if out_hi is None else out_hi + t_hi
    if out_lo is None or out_hi is None:
        zero = torch.zeros_like(terms[0][1])
        return zero, zero.clone()
    return out_lo, out_hi


def rotate_bounds(
    lo: torch.Tensor, hi: torch.Tensor, hw: tuple[int, int], angle: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds after turning the image by ``angle`` radians about the grid centre
    (``x' = cos a (x - cx) - sin a (y - cy) + cx``, ``y' = sin a (x - cx) + cos a (y - cy) + cy``;
    with rows pointing down a positive angle turns clockwise on screen).

    Conservative by interval arithmetic: a centroid box turns into the box around the turned
    box; covariances turn as ``R S R^T`` from the covariance and spread bounds (``|xy| <=
    sqrt(xx yy)`` where xy is open), and spreads follow from the turned variances. Size is
    unchanged; length is widened by :data:`ROTATION_LENGTH_SLACK`. Components open before stay
    open, so a rotation adds no constraint the bounds did not carry. Exact for shapes inside the
    disc inscribed in the grid: corners turned out of the grid are lost (the caller keeps
    structures central or accepts that). The background row (index 0) keeps its size (the area
    turned out equals the area padded in) and loses its other bounds.
    """
    lo, hi = lo.clone(), hi.clone()
    h, w = hw
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    c, s = math.cos(angle), math.sin(angle)
    is_open = torch.isinf(lo) & torch.isinf(hi)
    px = (lo[..., _CX] - cx, hi[..., _CX] - cx)
    py = (lo[..., _CY] - cy, hi[..., _CY] - cy)
    new_cx = _combine([(c, *px), (-s, *py)])
    new_cy = _combine([(s, *px), (c, *py)])
    # Variances from both their own bounds and the spreads' (spread = sqrt(variance)).
    var = []
    for v, sd in ((_XX, _SX), (_YY, _SY)):
        v_lo = torch.maximum(lo[..., v], lo[..., sd].clamp_min(0.0) ** 2).clamp_min(0.0)
        v_hi = torch.minimum(hi[..., v], hi[..., sd].clamp_min(0.0) ** 2)
        var.append((v_lo, v_hi))
    (xx_lo, xx_hi), (yy_lo, yy_hi) = var
    # 0 * inf (a variance pinned at 0 beside an open one) says nothing: leave xy open there.
    cross = torch.nan_to_num(torch.sqrt(xx_hi * yy_hi), nan=math.inf)
    xy_lo = torch.maximum(lo[..., _XY], -cross)
    xy_hi = torch.minimum(hi[..., _XY], cross)
    new_xx = _combine([(c * c, xx_lo, xx_hi), (-2 * c * s, xy_lo, xy_hi), (s * s, yy_lo, yy_hi)])
    new_yy = _combine([(s * s, xx_lo, xx_hi), (2 * c * s, xy_lo, xy_hi), (c * c, yy_lo, yy_hi)])
    new_xy = _combine(
        [(c * s, xx_lo, xx_hi), (c * c - s * s, xy_lo, xy_hi), (-c * s, yy_lo, yy_hi)]
    )
    for i, (a, b), shift in ((_CX, new_cx, cx), (_CY, new_cy, cy), (_XY, new_xy, 0.0)):
        lo[..., i], hi[..., i] = a + shift, b + shift
    for v, sd, (a, b) in ((_XX, _SX, new_xx), (_YY, _SY, new_yy)):
        a = a.clamp_min(0.0)
        lo[..., v], hi[..., v] = a, b
        lo[..., sd], hi[..., sd] = torch.sqrt(a), torch.sqrt(b.clamp_min(0.0))
    if not (c == 1.0 and s == 0.0):
        lo[..., _LEN] = lo[..., _LEN] * (1 - ROTATION_LENGTH_SLACK)
        hi[..., _LEN] = hi[..., _LEN] * (1 + ROTATION_LENGTH_SLACK)
    lo[is_open], hi[is_open] = -math.inf, math.inf
    bg_size = lo[0, _SIZE].clone(), hi[0, _SIZE].clone()
    lo[0], hi[0] = -math.inf, math.inf
    lo[0, _SIZE], hi[0, _SIZE] = bg_size
    return lo, hi


def rotate(x: torch.Tensor, angle: float, *, nearest: bool) -> torch.Tensor:
    """Turn square ``(N, C, G, G)`` images by ``angle`` radians about the centre, as
    :func:`rotate_bounds` maps coordinates; pixels from outside the grid become 0."""
    if x.shape[-1] != x.shape[-2]:  # normalised coordinates turn like pixels only on squares
        raise ValueError(f"rotation needs square images, got {tuple(x.shape[-2:])}")
    c, s = math.cos(angle), math.sin(angle)
    return _resample(x, [[c, s], [-s, c]], nearest=nearest)


_RELATIVE = [COMPONENT_INDEX[k] for k in ("size", "cov_xx", "cov_yy", "length")]
_NONNEGATIVE_INDEX = sorted(COMPONENT_INDEX[k] for k in NONNEGATIVE)
_EMPTY_PX = 0.5  # a reference class under half a pixel counts as absent


def remeasure_bounds(
    lo: torch.Tensor, hi: torch.Tensor, before: torch.Tensor, after: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds built around a reference label map, carried to the same map transformed.

    ``lo``, ``hi`` ``(R, M)`` px: margins around ``before`` ``(R, M)``, the reference's own
    descriptors, in ``models.shapes.from_mask``'s sense (relative for size, covariances and
    length, absolute px for centroid and spread). Returns them around ``after`` ``(R, M)``, the
    transformed reference's descriptors: ``after + (bound - before) * r`` with ``r`` the
    component's change of scale (1 for centroid and spread). The paper's augmentation, each
    augmented mask re-measured, exact where :func:`rotate_bounds` can only widen. Open ends
    stay open; a row whose reference is empty keeps its bounds; a row the transform empties
    becomes absent (size and length [0, 0], the rest open).
    """
    size, length = COMPONENT_INDEX["size"], COMPONENT_INDEX["length"]
    xx, yy, xy = COMPONENT_INDEX["cov_xx"], COMPONENT_INDEX["cov_yy"], COMPONENT_INDEX["cov_xy"]
    r = torch.ones_like(before)
    safe = before.abs() > 1e-6
    ratio = after / torch.where(safe, before, torch.ones_like(before))
    r[:, _RELATIVE] = torch.where(safe, ratio, torch.ones_like(ratio))[:, _RELATIVE]
    g0 = (before[:, xx] * before[:, yy]).clamp_min(0)
    g1 = (after[:, xx] * after[:, yy]).clamp_min(0)
    r[:, xy] = torch.where(g0 > 1e-6, torch.sqrt(g1 / g0.clamp_min(1e-6)), torch.ones_like(g0))

    def carry(b: torch.Tensor) -> torch.Tensor:
        finite = torch.isfinite(b)
        moved = after + (torch.where(finite, b, before) - before) * r
        return torch.where(finite, moved, b)

    new_lo, new_hi = carry(lo), carry(hi)
    floor = new_lo[:, _NONNEGATIVE_INDEX]
    new_lo[:, _NONNEGATIVE_INDEX] = torch.where(torch.isfinite(floor), floor.clamp_min(0), floor)
    absent_hi = torch.full_like(lo[0], float("inf"))
    absent_hi[[size, length]] = 0.0
    absent_lo = torch.where(absent_hi == 0, absent_hi, -absent_hi)
    kept = (before[:, size] < _EMPTY_PX)[:, None]
    emptied = ~kept & (after[:, size] < _EMPTY_PX)[:, None]
    new_lo = torch.where(kept, lo, torch.where(emptied, absent_lo, new_lo))
    new_hi = torch.where(kept, hi, torch.where(emptied, absent_hi, new_hi))
    return new_lo, new_hi


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the training augmentations."""

    p_flip: float = 0.5
    p_transpose: float = 0.5
    p_zoom: float = 0.5
    # (smallest, largest) scale; above 1 (a zoom in) only as far as each sample's
    # ``zoom_in_max`` allows.
    zoom_range: tuple[float, float] = (0.8, 1.0)
    p_intensity: float = 0.5
    gamma_range: tuple[float, float] = (0.7, 1.5)
    noise_std: float = 0.03
    p_blur: float = 0.0
    p_rotate: float = 0.0
    rotate_max: float = 30.0  # degrees either way


def augment(
    image: torch.Tensor,
    mask: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    zoom_in_max: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Randomly augment one sample: ``image (C, G, G)`` in [0, 1], ``mask (G, G)`` or
    ``(L, G, G)`` int64 label maps (zoomed out with 0 at the border), ``lo``/``hi`` ``(K, M)``.
    Geometry is shared by image, mask and bounds; intensity changes leave the bounds alone.
    ``zoom_in_max``: the largest zoom in whose bounds hold for this sample
    (:func:`zoom_in_limit`); the config's range is cut there. Returns the transformed four.
    """
    hw = (image.shape[-2], image.shape[-1])
    t = bool(rng.random() < cfg.p_transpose) and hw[0] == hw[1]
    fx = bool(rng.random() < cfg.p_flip)
    fy = bool(rng.random() < cfg.p_flip)
    if t or fx or fy:
        image = dihedral(image, transpose=t, flip_x=fx, flip_y=fy)
        mask = dihedral(mask, transpose=t, flip_x=fx, flip_y=fy)
        lo, hi = dihedral_bounds(lo, hi, hw, transpose=t, flip_x=fx, flip_y=fy)
        hw = (image.shape[-2], image.shape[-1])
    if cfg.p_rotate > 0 and rng.random() < cfg.p_rotate and hw[0] == hw[1]:
        a = math.radians(float(rng.uniform(-cfg.rotate_max, cfg.rotate_max)))
        image = rotate(image[None], a, nearest=False)[0]
        stacked = mask.reshape(-1, 1, *mask.shape[-2:]).float()
        mask = rotate(stacked, a, nearest=True).reshape(mask.shape).long()
        lo, hi = rotate_bounds(lo, hi, hw, a)
    if rng.random() < cfg.p_zoom:
        s_max = min(cfg.zoom_range[1], max(1.0, zoom_in_max))
        s = float(rng.uniform(min(cfg.zoom_range[0], s_max), s_max))
        if abs(s - 1.0) > 1e-3:
            image = zoom(image[None], s, nearest=False)[0]
            stacked = mask.reshape(-1, 1, *mask.shape[-2:]).float()
            mask = zoom(stacked, s, nearest=True).reshape(mask.shape).long()
            lo, hi = zoom_bounds(lo, hi, hw, s)
    if rng.random() < cfg.p_intensity:
        g = float(np.exp(rng.uniform(np.log(cfg.gamma_range[0]), np.log(cfg.gamma_range[1]))))
        image = image.clamp(0, 1) ** g
        if cfg.noise_std > 0:
            gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
            image = image + cfg.noise_std * torch.randn(image.shape, generator=gen).to(image.device)
    if cfg.p_blur > 0 and rng.random() < cfg.p_blur:
        k = torch.tensor([0.25, 0.5, 0.25], device=image.device)
        w = (k[:, None] * k[None, :]).expand(image.shape[0], 1, 3, 3)
        image = F.conv2d(
            F.pad(image[None], (1, 1, 1, 1), mode="replicate"), w, groups=image.shape[0]
        )[0]
    return image, mask, lo, hi
