"""Drawn hints fitted to the image: GrabCut (OpenCV) inside the band a drawing is unsure about.

A drawn ellipse is the annotator's rough outline. ``models.regions`` already knows which pixels
it is sure about: its shrunken core (the class) and everything beyond its grown boundary (not
the class). Between them the drawing says nothing, yet the image usually does: a polyp's rim or
a ventricle's wall is an edge. GrabCut (Rother et al., SIGGRAPH 2004) fits colour models to the
sure pixels and cuts the band along the image's edges, starting from the drawing itself (inside
the drawing: probably the class; outside: probably not).

Per class with a drawn shape on a slice: GrabCut's trimap is the class's sure core (fixed
foreground), its sure outside and every other class's core (fixed background), the rest of the
drawing (probable foreground) and of the band (probable background). The cut is grown by
``FIT_GROW`` px: it runs through the middle of an edge, masks are drawn along its outside. A
fitted shape is kept only when its descriptors meet the bounds the hints themselves set (the
same contract as the hints' vote in ``models.refine``); otherwise the drawing stands. Pixels two
classes' fitted shapes both claim go to the one whose drawing covers them. A class drawn as a
ring is not cut (``FIT_RINGS``).

Run once per hinted slice before training (``TrainConfig.fit_hints``): the fitted shapes
fill the sure map's unknown band (``models.regions.sure_map``) and take the drawings' place in
the hints' vote on hinted slices. Measured in benchmarks/results/ablations-fitting.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.bounds import BoundsError, combine_hints, hint_shapes, measure
from models.regions import drawn_mask, hint_regions, sure_map

FIT_SIDE = 256
"""px; GrabCut runs with the image's shorter side shrunk to this (then the shape is resized
back; smaller images are cut as they are): on 200 Kvasir training images outside the
benchmarks' hinted ones (``benchmarks/fit_side.py``), 128 / 256 / 384 px gave Dice 0.890 /
0.894 / 0.894 against 0.872 for the drawings, at 0.06 / 0.18 / 0.44 s per image."""
FIT_SECONDS_PER_SLICE = 0.3
"""s; the time to fit one slice's drawings, reading included, on one core of the 2-core CPU
the benchmarks ran on (Kvasir: 200 images of up to 1920 x 1072 px in 56 s; ACDC: 150 slices
with three classes each in 42 s). GrabCut runs on the CPU whatever the training device."""
FIT_ITERATIONS = 5
"""GrabCut's rounds of colour-model and cut; 10 gave the same Dice as 5 on those images."""
FIT_BLUR = 1.0
"""px of the GrabCut grid; the Gaussian blur (sigma) of the image before the cut (0: none).
Texture and specular highlights otherwise pull the cut inward or leak it out: on the same 200
Kvasir images sigma 0 / 0.5 / 1 / 2 gave Dice 0.894 / 0.895 / 0.898 / 0.891, and on 150 ACDC
slices of volumes outside the service runs' (RV, Myo, LV mean) 0.789 / 0.791 / 0.792 / 0.786
against 0.781 for the drawings (``benchmarks/fit_side.py [--data acdc] --sides 256 --blurs
0,0.5,1,2``)."""
FIT_GROW = 1.5
"""px of the GrabCut grid; the cut is dilated by a disk of this radius before the trimap's fixed
labels are re-imposed (0: as cut). GrabCut's cut falls inside the outline the masks were drawn
with: the kept fits cover a median 0.96 (Kvasir) / 0.91 (ACDC) of the true area on the tuning
items above, and grows of 0 / 1 / 1.5 / 2 px gave Dice 0.898 / 0.905 / 0.906 / 0.905 there
(ACDC mean 0.792 / 0.800 / 0.796 / 0.789). Chosen by the rule in
benchmarks/results/ablations-fitting.md, section 6 (``benchmarks/fit_side.py [--data acdc]
--sides 256 --grows 0,0.5,1,1.5,2``)."""
FIT_RINGS = False
"""Whether a class drawn as a ring (an ellipse with a hole, ACDC's Myo) is cut too; false: its
drawing stands, and its core still holds the other classes' cuts out. A thin ring's colour
models are its surroundings' (blood inside, other tissue outside): on the 150 ACDC tuning
slices the cut ring scored 0.680 against 0.689 for the drawing and took pixels from the LV it
encloses (LV 0.901 beside the cut ring, 0.909 beside the drawn one; mean of RV / Myo / LV 0.796
-> 0.802, ``benchmarks/fit_side.py --data acdc --sides 256 --rings 1,0``). The default at 240
epochs delivered 0.847 -> 0.858 (scored project) and 0.842 -> 0.862 (tuning project) on the
hinted slices, held out 0.499 -> 0.484 and 0.522 -> 0.589
(benchmarks/results/ablations-fitting.md, section 7)."""
FIT_HIGHLIGHTS = False
"""Whether specular highlights of a colour image are inpainted before the cut (grey images:
never). An endoscope's light leaves white spots on a wet polyp, which GrabCut may take for
background and cut around. Off: on 200 Kvasir tuning images the fit rose 0.906 -> 0.911 (55
images better by more than 0.01, 22 worse), but the default delivered 0.898 -> 0.898 on the
scored project and 0.910 -> 0.913 on the tuning project at 289 epochs: +0.0017 on average, where
the rule asked for more than +0.002 (benchmarks/results/ablations-fitting.md, section 8;
``benchmarks/fit_side.py --sides 256 --highlights 0,1``)."""
HIGHLIGHT_VALUE, HIGHLIGHT_SATURATION = 230, 60
"""0-255 in HSV of the stretched image (:func:`to_uint8_bgr`); a highlight is brighter than the
first and less saturated than the second."""
HIGHLIGHT_GROW, HIGHLIGHT_RADIUS = 1.0, 5.0
"""px of the GrabCut grid; a highlight's glow around it is inpainted too (the spots are dilated
by a disk of the first radius), each pixel from its neighbours within the second (Telea)."""


def to_uint8_bgr(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` float image (any range) -> ``(H, W, 3)`` uint8, each channel stretched
    between its 1st and 99th percentile. One channel is repeated; more than three: the first
    three (GrabCut's colour models take three)."""
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[None]
    img = img[:3] if img.shape[0] >= 3 else np.repeat(img[:1], 3, axis=0)
    out = np.empty((*img.shape[1:], 3), np.uint8)
    for c in range(3):
        lo, hi = np.percentile(img[c], (1.0, 99.0))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        out[..., c] = np.clip((img[c] - lo) * scale, 0, 255).astype(np.uint8)
    return out


def disk(radius: float) -> np.ndarray:
    """The structuring element ``(2r + 1, 2r + 1)`` uint8 (r = floor(radius)) of the pixels
    within ``radius`` px of its centre."""
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy <= radius * radius).astype(np.uint8)


def without_highlights(bgr: np.ndarray, small: np.ndarray) -> np.ndarray:
    """``small (h, w, 3)`` uint8, ``bgr (H, W, 3)`` resized, with the specular highlights
    (:data:`HIGHLIGHT_VALUE`, :data:`HIGHLIGHT_SATURATION`) inpainted from their surroundings:
    found on ``bgr``'s own grid (shrinking first would blend a small spot into its
    surroundings), inpainted on the small one. A grey image (three equal channels, whose every
    bright pixel is unsaturated) is returned as it is."""
    import cv2

    if (bgr[..., 0] == bgr[..., 1]).all() and (bgr[..., 1] == bgr[..., 2]).all():
        return small
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    spots = ((hsv[..., 2] > HIGHLIGHT_VALUE) & (hsv[..., 1] < HIGHLIGHT_SATURATION)).astype(
        np.uint8
    )
    size = (small.shape[1], small.shape[0])
    spots = (cv2.resize(spots * 255, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    if not spots.any():
        return small
    spots = cv2.dilate(spots, disk(HIGHLIGHT_GROW))
    return cv2.inpaint(small, spots, HIGHLIGHT_RADIUS, cv2.INPAINT_TELEA)


def _grabcut(bgr: np.ndarray, trimap: np.ndarray) -> np.ndarray | None:
    """GrabCut of ``bgr (H, W, 3)`` uint8 from ``trimap (H, W)`` (OpenCV's GC_* labels), on the
    grid of :data:`FIT_SIDE`, grown by :data:`FIT_GROW` there; the foreground ``(H, W)`` bool,
    or None when it cannot run (no foreground or no background pixel to fit a colour model to)."""
    import cv2

    fg_seed = (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)
    if not fg_seed.any() or fg_seed.all():
        return None
    h, w = trimap.shape
    s = min(1.0, FIT_SIDE / min(h, w))  # smaller images are cut on their own grid
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    if FIT_HIGHLIGHTS:
        small = without_highlights(bgr, small)
    mask = cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)
    if FIT_BLUR > 0:
        small = cv2.GaussianBlur(small, (0, 0), FIT_BLUR)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # the colour models start from k-means: the same shapes every run
    try:
        cv2.grabCut(small, mask, None, bgd, fgd, FIT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a degenerate colour model (e.g. a flat image)
        return None
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if FIT_GROW > 0:
        fg = cv2.dilate(fg, disk(FIT_GROW))
    fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    # Resampling moves the cut by up to a pixel: the trimap's fixed labels hold on this grid.
    return (fg | (trimap == cv2.GC_FGD)) & (trimap != cv2.GC_BGD)


def _is_ring(hints: Sequence[Mapping[str, Any]]) -> bool:
    """Whether any of one class's ``hints`` draws a shape with a hole."""
    return any(hole is not None for h in hints for _, hole in hint_shapes("", h))


def _meets(
    shape_mask: np.ndarray,
    hints: Sequence[Mapping[str, Any]],
    bounds: tuple[np.ndarray, np.ndarray] | None,
) -> bool:
    """Whether ``shape_mask``'s descriptors (px) meet its class's bounds ``(lo, hi)`` ``(M,)``
    (px of this slice), or without them the bounds ``hints`` set together (px units only: a
    hint in mm needs the slice's spacing, which the caller's bounds carry). False when nothing
    bounds the class."""
    if bounds is None:
        try:
            cb = combine_hints("", hints, shape=shape_mask.shape)
        except BoundsError:
            return False
        if cb is None:
            return False
        bounds = cb.effective()
    lo, hi = bounds
    if not (np.isfinite(lo) | np.isfinite(hi)).any() or not shape_mask.any():
        return False
    v = measure(shape_mask)
    return bool(np.all((v >= lo - 1e-6) & (v <= hi + 1e-6)))


def fitted_shapes(
    image: np.ndarray,
    per_class: Sequence[Sequence[Mapping[str, Any]]],
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, np.ndarray]:
    """The drawn shapes of one slice fitted to its image: ``{class: (H, W) bool}`` for each class
    whose fitted shape meets its bounds (other classes: absent from the result, their drawings
    stand).

    ``image``: ``(C, H, W)`` (or ``(H, W)``) of the slice; ``per_class[k]``: the hints of class
    ``k`` on it (index 0, the background, is never hinted; several authors' shapes count where
    they all agree), as accepted by ``models.bounds.parse_hint``; ``bounds``: the slice's
    ``(lo, hi)`` ``(K, M)`` (px, rows beyond K ignored) as training takes them (priors and
    spacing included); None: those the hints set alone.
    """
    import cv2

    shape = np.asarray(image).shape[-2:]
    drawn: dict[int, np.ndarray] = {}
    sure: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for k, hints in enumerate(per_class):
        if k == 0 or any(h.get("present", True) is False for h in hints):
            continue
        masks = [m for m in (drawn_mask(h, shape) for h in hints) if m is not None]
        regions = [r for r in (hint_regions(h, shape) for h in hints) if r is not None]
        if masks and regions:
            drawn[k] = np.logical_and.reduce(masks)
            sure[k] = (
                np.logical_and.reduce([r[0] for r in regions]),
                np.logical_and.reduce([r[1] for r in regions]),
            )
    if not drawn:
        return {}
    bgr = to_uint8_bgr(image)
    fitted: dict[int, np.ndarray] = {}
    for k in drawn:
        if not FIT_RINGS and _is_ring(per_class[k]):
            continue
        others = np.zeros(shape, bool)
        for j in drawn:
            if j != k:
                others |= sure[j][0]
        sure_in, sure_out = sure[k]
        trimap = np.full(shape, cv2.GC_PR_BGD, np.uint8)
        trimap[drawn[k]] = cv2.GC_PR_FGD
        trimap[sure_in] = cv2.GC_FGD
        trimap[sure_out | others] = cv2.GC_BGD
        fg = _grabcut(bgr, trimap)
        rows = None if bounds is None else (bounds[0][k], bounds[1][k])
        if fg is not None and _meets(fg, per_class[k], rows):
            fitted[k] = fg
    # A pixel two fitted shapes claim goes to the class whose drawing covers it (the later
    # class where both drawings do, as the hints' vote paints them), else to neither.
    claimed = dict(fitted)
    for k in fitted:
        for j in claimed:
            if j != k:
                keep = drawn[k] & (~drawn[j] | (k > j))
                fitted[k] = fitted[k] & ~(claimed[k] & claimed[j] & ~keep)
    return fitted


def slice_sure_map(
    image: np.ndarray,
    per_class: Sequence[Sequence[Mapping[str, Any]]],
    targets: str | None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray | None:
    """``models.regions.sure_map`` of one slice ``image (C, H, W)``, its unknown band labelled
    by the drawn shapes fitted to the image (``TrainConfig.fit_targets``): ``"cut"`` all of it,
    ``"agree"`` only the pixels where fitted shape and drawing agree; ``None`` / ``"none"``: no
    fitting. ``bounds``: as in :func:`fitted_shapes`."""
    shape = tuple(np.asarray(image).shape[-2:])
    if targets in (None, "none"):
        return sure_map(per_class, shape)
    fitted = fitted_shapes(image, per_class, bounds)
    out = sure_map(per_class, shape, fitted)
    if targets == "agree" and fitted:
        plain = sure_map(per_class, shape)
        assert out is not None and plain is not None
        for k in fitted:
            masks = [m for m in (drawn_mask(h, shape) for h in per_class[k]) if m is not None]
            same = fitted[k] == np.logical_and.reduce(masks)
            out[k] = np.where(same, out[k], plain[k])
    return out
