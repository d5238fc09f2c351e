"""Training samples: one slice in its own pixel grid (``TrainSample``), brought onto the square
training grid (``prepare``), the class proportions its size bounds imply (``class_prior``), and
augmented batches (``batch``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from models.descriptors import all_descriptors
from models.regions import SURE_OUT, UNKNOWN
from models.transforms import (
    AugmentConfig,
    augment,
    normalise_image,
    remeasure_bounds,
    resize_bounds,
    resize_image,
    resize_mask,
    zoom_in_limit,
)
from models.units import COMPONENT_INDEX, COMPONENTS

M = len(COMPONENTS)


@dataclass
class TrainSample:
    """One training slice in its own pixel grid.

    ``image (C, H, W)`` float32 (C in {1, 3}); ``lo``, ``hi`` ``(K, M)`` bounds in px of this
    image (``models.bounds.stack``); ``mask (H, W)`` uint8 reference labels or None; ``sure``
    ``(K, H, W)`` int8 pixels the hints are sure about (``models.regions.sure_map``) or None;
    ``reference (H, W)`` uint8 labels the bounds were measured around (the paper's bounds from
    a mask, benchmarks) or None: with ``TrainConfig.remeasure_bounds`` augmentation re-measures
    it instead of transforming the bounds (``models.transforms.remeasure_bounds``).
    """

    image: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    mask: np.ndarray | None = None
    sure: np.ndarray | None = None
    reference: np.ndarray | None = None


@dataclass
class Prepared:
    images: torch.Tensor  # (N, C, G, G) in [0, 1]
    lo: torch.Tensor  # (N, K, M)
    hi: torch.Tensor
    masks: torch.Tensor  # (N, G, G) int64, zeros where no mask
    has_mask: torch.Tensor  # (N,) bool
    sure: torch.Tensor | None = None  # (N, K, G, G) int8, zeros where no hint is sure; None: none
    # (N,) bool: ``masks`` holds a pseudo-mask (models.pseudo) there, not a reference; None: none
    has_pseudo: torch.Tensor | None = None
    # (N, G, G) int64 labels the bounds were measured around, -1 where none; None: none kept
    reference: torch.Tensor | None = None


def prepare(
    samples: Sequence[TrainSample],
    num_classes: int,
    grid: int,
    num_unions: int = 0,
    normalisation: str = "minmax",
    keep_references: bool = False,
) -> Prepared:
    """Validate samples and bring them onto the ``grid x grid`` training grid (bounds ``(K + U,
    M)``: the classes', then ``num_unions`` unions of classes, see ``models.train.train``),
    images scaled by ``normalisation`` (``models.transforms.normalise_image``); the samples'
    ``reference`` maps only if ``keep_references``."""
    if not samples:
        raise ValueError("no training samples")
    channels = samples[0].image.shape[0]
    imgs, los, his, masks, has, sures, refs = [], [], [], [], [], [], []
    any_sure = any(s.sure is not None for s in samples)
    any_ref = keep_references and any(s.reference is not None for s in samples)
    for i, s in enumerate(samples):
        if s.image.ndim != 3 or s.image.shape[0] not in (1, 3):
            raise ValueError(f"sample {i}: image must be (C, H, W) with C in 1 or 3")
        if s.image.shape[0] != channels:
            raise ValueError(f"sample {i}: {s.image.shape[0]} channels, others have {channels}")
        rows = num_classes + num_unions  # the classes', then the unions' (models.train)
        if s.lo.shape != (rows, M) or s.hi.shape != (rows, M):
            raise ValueError(f"sample {i}: bounds must be ({rows}, {M})")
        h, w = s.image.shape[1:]
        img = torch.from_numpy(np.array(s.image, dtype=np.float32, copy=True))[None]
        imgs.append(resize_image(normalise_image(img, normalisation), (grid, grid))[0])
        lo, hi = resize_bounds(
            torch.from_numpy(np.asarray(s.lo, np.float32)),
            torch.from_numpy(np.asarray(s.hi, np.float32)),
            (h, w),
            (grid, grid),
        )
        los.append(lo)
        his.append(hi)
        if s.mask is not None:
            if s.mask.shape != (h, w):
                raise ValueError(f"sample {i}: mask shape {s.mask.shape} != image {(h, w)}")
            if int(s.mask.max()) >= num_classes:
                raise ValueError(f"sample {i}: mask label {int(s.mask.max())} >= {num_classes}")
            m = torch.from_numpy(np.asarray(s.mask, dtype=np.int64))[None]
            masks.append(resize_mask(m, (grid, grid))[0])
            has.append(True)
        else:
            masks.append(torch.zeros(grid, grid, dtype=torch.int64))
            has.append(False)
        if s.sure is not None:
            if s.sure.shape != (num_classes, h, w):
                raise ValueError(f"sample {i}: sure map must be ({num_classes}, {h}, {w})")
            sure = torch.from_numpy(np.asarray(s.sure, dtype=np.int64))
            sures.append(resize_mask(sure, (grid, grid)).to(torch.int8))
        elif any_sure:
            sures.append(torch.zeros(num_classes, grid, grid, dtype=torch.int8))
        if any_ref:
            refs.append(_reference(s.reference, (h, w), num_classes, grid, i))
    return Prepared(
        torch.stack(imgs),
        torch.stack(los),
        torch.stack(his),
        torch.stack(masks),
        torch.tensor(has),
        torch.stack(sures) if any_sure else None,
        reference=torch.stack(refs) if any_ref else None,
    )


def _reference(
    ref: np.ndarray | None, hw: tuple[int, int], num_classes: int, grid: int, i: int
) -> torch.Tensor:
    """One sample's reference labels on the grid ``(G, G)`` int64, all -1 where it has none."""
    if ref is None:
        return torch.full((grid, grid), -1, dtype=torch.int64)
    if ref.shape != hw or int(ref.max()) >= num_classes:
        raise ValueError(f"sample {i}: reference must be {hw} labels below {num_classes}")
    m = torch.from_numpy(np.asarray(ref, dtype=np.int64))[None]
    return resize_mask(m, (grid, grid))[0]


def with_unions(maps: torch.Tensor, unions: torch.Tensor) -> torch.Tensor:
    """Per-class maps ``(B, K, H, W)`` followed by the unions ``(U, K)`` of them, summed:
    ``(B, K + U, H, W)``, the channels the constraint loss bounds."""
    if not len(unions):
        return maps
    return torch.cat([maps, torch.einsum("uk,bkhw->buhw", unions.to(maps.dtype), maps)], 1)


def one_hot_maps(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Label maps ``(B, H, W)`` (negative = unlabelled, taken as 0) as one-hot ``(B, K, H, W)``
    float maps."""
    return F.one_hot(labels.clamp_min(0), num_classes).permute(0, 3, 1, 2).float()


def measure_labels(labels: torch.Tensor, num_classes: int, unions: torch.Tensor) -> torch.Tensor:
    """Descriptors ``(B, K + U, M)`` px of label maps ``(B, G, G)`` (classes, then the unions
    ``(U, K)`` summed), as the constraint loss measures a prediction."""
    return all_descriptors(with_unions(one_hot_maps(labels, num_classes), unions))


def open_labelled_bounds(data: Prepared, unions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo, hi)`` ``(N, K + U, M)`` of ``data`` with the rows of every class whose sure map
    labels each pixel of its slice opened to ``(-inf, inf)``, and the rows of the ``unions``
    ``(U, K)`` (0/1) all of whose classes are so labelled.

    A fitted drawing (``models.fitting``, ``fit_targets="cut"``) labels its class on the whole
    slice and meets the hint's bounds by construction: the bounds then say nothing the sure map
    does not, yet their barrier's steep outside slope fights the pixel loss while the network's
    soft map is still unsure. Classes with any unlabelled pixel (a fit that broke its bounds, a
    centroid click, a size range, project priors) keep their bounds. An ablation
    (``TrainConfig.labelled_bounds=False``), not the default: the few bounds left then dominate
    the step (ACDC's network learned almost nothing); a heavier ``sure_weight`` does what it
    meant to (benchmarks/results/ablations-weights.md).
    """
    if data.sure is None:
        return data.lo, data.hi
    k = data.sure.shape[1]
    full = (data.sure != UNKNOWN).flatten(2).all(-1)  # (N, K)
    rows = full
    if data.lo.shape[1] > k and len(unions):
        members = unions.to(full.device) > 0  # (U, K)
        covered = ~(members[None] & ~full[:, None, :]).any(-1)  # (N, U)
        rows = torch.cat([full, covered], 1)
    rows = torch.cat([rows, rows.new_zeros(rows.shape[0], data.lo.shape[1] - rows.shape[1])], 1)
    inf = torch.full_like(data.lo, float("inf"))
    return torch.where(rows[..., None], -inf, data.lo), torch.where(rows[..., None], inf, data.hi)


def class_prior(data: Prepared, num_classes: int) -> torch.Tensor:
    """Expected area fraction ``(K,)`` of each class from the size bounds (interval midpoints
    where both ends are finite, else an equal share of what is left), summing to 1."""
    n = data.lo.shape[0]
    area = float(data.images.shape[-1] * data.images.shape[-2])
    size = COMPONENT_INDEX["size"]
    lo, hi = data.lo[:, :num_classes, size], data.hi[:, :num_classes, size]
    known = torch.isfinite(lo) & torch.isfinite(hi)
    mid = torch.where(known, (lo.clamp_min(0) + hi) / 2, torch.zeros_like(lo)) / area
    frac = mid.sum(0) / n  # mean over samples, unknown counted as 0
    unknown = (~known).float().mean(0)  # share of samples where the class size is unknown
    rest = (1.0 - frac.sum()).clamp_min(0.05)
    frac = frac + unknown * rest / unknown.sum().clamp_min(1e-6)
    frac = frac.clamp_min(1e-3)
    return frac / frac.sum()


def batch(
    data: Prepared,
    idx: np.ndarray,
    rng: np.random.Generator,
    aug: AugmentConfig | None,
    unions: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Images, masks, sure maps (or None), lo, hi of the samples ``idx``, augmented alike.
    Samples with a reference map get bounds re-measured on it (``unions`` ``(U, K)``: the
    union rows' membership)."""
    ti = torch.from_numpy(idx)
    imgs, masks, los, his = data.images[ti], data.masks[ti], data.lo[ti], data.hi[ti]
    sure = None if data.sure is None else data.sure[ti]
    if aug is None:
        return imgs, masks, sure, los, his
    # Mask, sure and reference maps are label maps on the same grid: one stack, one set of
    # transforms.
    stack = [masks[:, None]] + ([] if sure is None else [sure.long()])
    ref = None if data.reference is None else data.reference[ti]
    if ref is not None:
        stack.append(ref[:, None])
    labels = torch.cat(stack, 1)
    limits = [1.0] * len(idx)
    if sure is not None and aug.zoom_range[1] > 1.0:
        # Where no hint of the slice rules a foreground class out; a class nobody hinted is
        # possible everywhere, so such slices zoom out only.
        possible = (sure[:, 1:] != SURE_OUT).any(1)  # (N, G, G)
        limits = [zoom_in_limit(p) for p in possible]
    out = [
        augment(imgs[j], labels[j], los[j], his[j], rng, aug, zoom_in_max=limits[j])
        for j in range(len(idx))
    ]
    imgs, labels, new_lo, new_hi = (torch.stack([o[i] for o in out]) for i in range(4))
    if ref is not None:
        turned = labels[:, -1]
        has = ref[:, 0, 0] >= 0  # a reference map is all -1 or a label map (>= 0)
        k = los.shape[1] - (0 if unions is None else len(unions))
        u = torch.zeros(0, k) if unions is None else unions.float()
        before, after = measure_labels(ref, k, u), measure_labels(turned, k, u)
        for j in torch.nonzero(has).flatten().tolist():
            new_lo[j], new_hi[j] = remeasure_bounds(los[j], his[j], before[j], after[j])
        labels = labels[:, :-1]
    sure = None if sure is None else labels[:, 1:].to(torch.int8)
    return imgs, labels[:, 0], sure, new_lo, new_hi
