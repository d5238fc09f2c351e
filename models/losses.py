"""Constraint losses on descriptor intervals (log-barrier extension, quadratic penalty) and
cross-entropy for images with full masks.

Normalisation: every descriptor and bound is rescaled to a reference 256 x 256 grid before the
penalty (size by 256^2 / (H W), x-quantities by 256 / W, y-quantities by 256 / H, covariances by
the matching products, length by 256 / sqrt(H W)); penalties are summed over classes and
components, averaged over the batch and divided by 256^2 (the paper's "divide by the number of
pixels"). A shape scaled together with its image, or a batch twice as large, gives the same loss;
at 256 x 256 with batch 1 the numbers equal the paper's. Keeping z in (reference) pixels matters:
the log-barrier switches from its log to its linear branch at z = -1/t^2, so intervals must be
wide compared with 1 in the units of z, as they are in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import torch
import torch.nn.functional as F

from models.descriptors import all_descriptors
from models.units import (
    AREA_LIKE,
    COMPONENT_INDEX,
    COMPONENT_SPECS,
    DESCRIPTORS,
    NONNEGATIVE,
    axis_scale,
)

DESCRIPTOR_OF: tuple[str, ...] = tuple(c.descriptor for c in COMPONENT_SPECS)
"""Descriptor name of each component (the loss terms reported in progress)."""
TERMS: tuple[str, ...] = DESCRIPTORS
REFERENCE_GRID = 256
_NONNEGATIVE = torch.tensor([c.key in NONNEGATIVE for c in COMPONENT_SPECS])
_LENGTH_INDEX = COMPONENT_INDEX["length"]
_AREA_LIKE = torch.tensor([c.key in AREA_LIKE for c in COMPONENT_SPECS])
LOSS_UNITS: tuple[str, ...] = ("paper", "length")


def to_length(x: torch.Tensor) -> torch.Tensor:
    """Monotone map of px^2 quantities to px: ``sign(x) (sqrt(|x| + 1) - 1)``.

    Same feasible set (monotone), but a 10 % size error now weighs like the few px it moves the
    boundary, not like hundreds of px^2 that dwarf every centroid and spread error. The ``+ 1``
    keeps the slope finite (1/2) at 0, where absent classes sit.
    """
    return torch.sign(x) * (torch.sqrt(x.abs() + 1.0) - 1.0)


def log_barrier(z: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Log-barrier extension psi_t(z) for constraints ``z <= 0`` (elementwise).

    ``-log(-z) / t`` for ``z <= -1/t^2``, else the tangent line ``t z - log(1/t^2) / t + 1/t``
    (finite and linear outside the feasible set). The log branch is evaluated on clamped values
    so neither branch produces NaN gradients.

    Keep ``t >= 1`` for two-sided intervals: an interval narrower than ``2 / t^2`` (2 px at
    t 1, 32 px at t 0.25) has a zone where both ends sit in their linear branches, whose slopes
    ``-t`` and ``+t`` cancel, so nothing holds the value there. Sizes in length units are
    narrow (+-10 % of a 2500 px^2 structure is 5 px wide): at a constant t 0.25 ACDC's
    ``paper`` shrank every class to 0.35-0.73x its size
    (benchmarks/results/ablations-paper-loss.md, section 10). ``t`` may be a tensor that
    broadcasts against ``z`` (one t per constraint, :func:`narrow_interval_t`).
    """
    if isinstance(t, torch.Tensor):
        thr_t = -1.0 / (t * t)
        inside = -torch.log(-torch.minimum(z, thr_t)) / t
        outside = t * z + (2.0 * torch.log(t) + 1.0) / t
        return torch.where(z <= thr_t, inside, outside)
    thr = -1.0 / (t * t)
    inside = -torch.log(-z.clamp(max=thr)) / t
    outside = t * z - math.log(1.0 / (t * t)) / t + 1.0 / t
    return torch.where(z <= thr, inside, outside)


def narrow_interval_t(
    t: float, lo: torch.Tensor, hi: torch.Tensor, two_sided: torch.Tensor
) -> torch.Tensor:
    """Per constraint, the barrier's t raised on intervals too narrow for it: ``max(t,
    sqrt(2 / width))`` where ``two_sided`` (both ends used), else ``t``.

    ``lo``, ``hi``, ``two_sided``: ``(B, K, M)`` in the loss's units. At t each end's linear
    branch reaches ``1 / t^2`` into the interval, so on an interval narrower than ``2 / t^2``
    the two slopes cancel over a zone that spills past both ends and nothing holds the value
    there (:func:`log_barrier`); with ``sqrt(2 / width)`` the zone shrinks to the midpoint.
    """
    width = (hi - lo).clamp_min(1e-6)
    floor = torch.sqrt(2.0 / width)
    return torch.where(two_sided, floor.clamp_min(t), torch.full_like(lo, t))


def quadratic_penalty(z: torch.Tensor) -> torch.Tensor:
    """``relu(z)^2``: zero inside the feasible set."""
    return F.relu(z).square()


def scales(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """Natural scale ``(M,)`` of each component on an ``(H, W)`` grid (area, widths, ...)."""
    return torch.tensor([float(axis_scale(c.axes, h, w)) for c in COMPONENT_SPECS], device=device)


def scheduled_weights(
    start: Mapping[str, float], end: Mapping[str, float], step: int, total_steps: int
) -> dict[str, float]:
    """Per-term weights at ``step`` of ``total_steps``: each term in ``end`` moves linearly
    from its ``start`` weight (default 1) to its ``end`` weight over the first 70 % of the
    steps, as the log-barrier's t reaches its maximum, and stays there; the other terms keep
    their ``start`` weight."""
    frac = min(1.0, step / max(1.0, 0.7 * total_steps))
    out = dict(start)
    for name, w_end in end.items():
        w0 = start.get(name, 1.0)
        out[name] = w0 + (w_end - w0) * frac
    return out


def constraint_loss(
    probs: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    *,
    t: float = 1.0,
    kind: str = "log_barrier",
    weights: Mapping[str, float] | None = None,
    units: str = "paper",
    upper_only: Collection[str] = (),
    hard: torch.Tensor | None = None,
    narrow_t: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Penalty of the descriptors of ``probs`` leaving ``[lo, hi]``.

    ``probs``: softmax output ``(B, K, H, W)``; ``lo``, ``hi``: ``(B, K, M)`` in px units
    (``-inf`` / ``+inf`` = open end; a whole row of infs = unconstrained). ``kind``:
    ``"log_barrier"`` (with ``t``) or ``"quadratic"``. ``weights``: per descriptor name
    (default 1). ``units``: ``"paper"`` penalises every component in its own unit (px^2 or
    px on the reference grid) and divides by 256^2, as the paper; ``"length"`` first maps the
    px^2 components (size, covariance) through :func:`to_length` and divides by 256, so every
    term is a distance on the reference grid. ``upper_only``: descriptor names whose lower
    bounds are not penalised (only their upper ones). ``hard``: a map shaped like ``probs``
    (the argmax as one-hot, unions summed) on which the contour length is measured
    straight-through: the value is the hard map's, the gradient flows to ``probs`` as if it
    were theirs (a soft map's length can be moved by contrast or texture alone). ``narrow_t``:
    the log-barrier's t per two-sided interval raised by :func:`narrow_interval_t`. Returns the
    scalar total and a dict of per-descriptor terms (detached).
    """
    if units not in LOSS_UNITS:
        raise ValueError(f"unknown loss units {units!r} ({' | '.join(LOSS_UNITS)})")
    weights = dict(weights or {})
    unknown = set(weights) - set(TERMS)
    if unknown:
        raise ValueError(f"unknown loss weight(s) {sorted(unknown)}")
    unknown = set(upper_only) - set(TERMS)
    if unknown:
        raise ValueError(f"unknown descriptor(s) in upper_only {sorted(unknown)}")
    if hard is not None and hard.shape != probs.shape:
        raise ValueError(f"hard map {tuple(hard.shape)} must be shaped like probs")
    _b, _, h, w = probs.shape
    lo = lo.to(probs.device, torch.float32)
    hi = hi.to(probs.device, torch.float32)
    ref = REFERENCE_GRID
    sc = scales(h, w, probs.device) / scales(ref, ref, probs.device)
    has_lo, has_hi = torch.isfinite(lo), torch.isfinite(hi)
    # A lower bound <= 0 on a non-negative quantity (absent classes: size in [0, 0]) is always
    # met; in the barrier's linear branch it would cancel the upper bound's pull, so drop it.
    has_lo = has_lo & ~((lo <= 0) & _NONNEGATIVE.to(probs.device))
    if upper_only:
        open_below = torch.tensor([d in upper_only for d in DESCRIPTOR_OF], device=probs.device)
        has_lo = has_lo & ~open_below
    zero = torch.zeros((), device=probs.device)
    if not bool((has_lo | has_hi).any()):
        # Nothing constrained (full masks only): skip the moments, so a cross-entropy step
        # costs what cross-entropy costs; a zero that still carries a graph, for backward().
        nil = probs.sum() * 0.0
        return nil, {name: zero for name in TERMS}
    # Length only for classes with a (non-vacuous) length bound somewhere in the batch, usually
    # not the background: it is the one descriptor that costs a filter pass over every pixel.
    len_used = (has_lo[..., _LENGTH_INDEX] | has_hi[..., _LENGTH_INDEX]).any(0)
    len_classes = torch.nonzero(len_used).flatten()
    probs = probs.float()
    v = all_descriptors(
        probs,
        with_length=len(len_classes) > 0,
        length_classes=len_classes if len(len_classes) < probs.shape[1] else None,
        length_of=None if hard is None else probs + (hard.float() - probs).detach(),
    )
    v = v / sc
    # Open ends are replaced by a finite dummy and masked out, so no inf/NaN reaches autograd.
    lo_n = torch.where(has_lo, lo, torch.zeros_like(lo)) / sc
    hi_n = torch.where(has_hi, hi, torch.zeros_like(hi)) / sc
    norm = float(ref * ref)
    if units == "length":
        area = _AREA_LIKE.to(probs.device)
        v = torch.where(area, to_length(v), v)
        lo_n = torch.where(area, to_length(lo_n), lo_n)
        hi_n = torch.where(area, to_length(hi_n), hi_n)
        norm = float(ref)
    z_lo, z_hi = lo_n - v, v - hi_n
    if kind == "log_barrier":
        t_of: float | torch.Tensor = t
        if narrow_t:
            t_of = narrow_interval_t(t, lo_n, hi_n, has_lo & has_hi)
        pen_lo, pen_hi = log_barrier(z_lo, t_of), log_barrier(z_hi, t_of)
    elif kind == "quadratic":
        pen_lo, pen_hi = quadratic_penalty(z_lo), quadratic_penalty(z_hi)
    else:
        raise ValueError(f"unknown constraint loss {kind!r} (log_barrier | quadratic)")
    pen = torch.where(has_lo, pen_lo, zero) + torch.where(has_hi, pen_hi, zero)  # (B, K, M)
    per_comp = pen.sum(1).mean(0) / norm  # (M,)
    terms: dict[str, torch.Tensor] = {}
    total = zero
    for name in TERMS:
        idx = [i for i, d in enumerate(DESCRIPTOR_OF) if d == name]
        term = per_comp[idx].sum()
        terms[name] = term.detach()
        total = total + weights.get(name, 1.0) * term
    return total, terms


@torch.no_grad()
def violation_share(probs: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> dict[str, float]:
    """Per descriptor, the share (0..1) of the finite bounds in ``lo``/``hi`` ``(B, K, M)`` (px)
    that the soft descriptors of ``probs`` ``(B, K, H, W)`` break: what a user reads as "how
    far from the hints" (0 = every hint met), unlike the barrier value, which grows with t.
    Descriptors without any bound are left out."""
    lo = lo.to(probs.device, torch.float32)
    hi = hi.to(probs.device, torch.float32)
    has_lo, has_hi = torch.isfinite(lo), torch.isfinite(hi)
    if not bool((has_lo | has_hi).any()):
        return {}
    with_length = bool((has_lo[..., _LENGTH_INDEX] | has_hi[..., _LENGTH_INDEX]).any())
    v = all_descriptors(probs.float(), with_length=with_length)
    broken = (has_lo & (v < lo)) | (has_hi & (v > hi))
    active = has_lo | has_hi
    out: dict[str, float] = {}
    for name in TERMS:
        idx = [i for i, d in enumerate(DESCRIPTOR_OF) if d == name]
        n = int(active[..., idx].sum())
        if n:
            out[name] = int(broken[..., idx].sum()) / n
    return out


def masked_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, has_mask: torch.Tensor
) -> torch.Tensor:
    """Mean pixel cross-entropy over the images that have a full mask.

    ``logits (B, K, H, W)``, ``target (B, H, W)`` int64, ``has_mask (B,)`` bool. Zero (with a
    graph) when no image in the batch has a mask.
    """
    if not bool(has_mask.any()):
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits.float(), target, reduction="none").mean((-2, -1))  # (B,)
    return (ce * has_mask).sum() / has_mask.sum()


def sure_region_loss(probs: torch.Tensor, sure: torch.Tensor) -> torch.Tensor:
    """Partial cross-entropy on the pixels a hint is sure about (``models.regions``).

    ``probs``: softmax ``(B, K, H, W)``; ``sure``: ``(B, K, H, W)`` int8 with +1 (surely class
    k: ``-log p_k``), -1 (surely not class k: ``-log(1 - p_k)``) and 0 (no term). Mean over the
    labelled (pixel, class) pairs; zero (with a graph) when there are none.
    """
    pos = sure == 1
    neg = sure == -1
    count = pos.sum() + neg.sum()
    if int(count) == 0:
        return probs.sum() * 0.0
    p = probs.float().clamp(1e-6, 1 - 1e-6)
    total = -(torch.log(p) * pos).sum() - (torch.log1p(-p) * neg).sum()
    return total / count


def pairwise_loss(probs: torch.Tensor, image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Image-aware smoothness: neighbouring pixels of similar intensity should share a label
    (the pairwise term of CRF losses, on the 4-neighbourhood).

    ``probs (B, K, H, W)`` softmax; ``image (B, C, H, W)`` in [0, 1]; ``sigma``: intensity
    difference (image units) at which the affinity falls to ``exp(-1/2)``. Returns the mean
    over neighbour pairs of ``w_ij * (1 - <p_i, p_j>)`` (0 when both are equally confident of
    one class, 1 when they disagree completely).
    """
    terms = []
    for dim in (-1, -2):
        n = probs.shape[dim]
        a_p, b_p = probs.narrow(dim, 0, n - 1), probs.narrow(dim, 1, n - 1)
        a_i, b_i = image.narrow(dim, 0, n - 1), image.narrow(dim, 1, n - 1)
        w = torch.exp(-((a_i - b_i).square().mean(1)) / (2 * sigma * sigma))  # (B, H', W')
        agree = (a_p * b_p).sum(1)
        terms.append((w * (1 - agree)).mean())
    return (terms[0] + terms[1]) / 2
