"""Bounds a drawn shape implies, and the descriptors of shapes and masks (numpy only):
ellipses and rings (``from_ellipse``, ``from_ring``), whether two drawings are one contour
(``same_contour``), a mask's own descriptors (``measure``) and the paper's bounds around a
reference mask (``from_mask``). Pixel units, ``COMPONENTS`` order (``models.units``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np

from models.class_bounds import ClassBounds
from models.units import (
    COMPONENT_INDEX,
    COMPONENTS,
    DESCRIPTOR_COMPONENTS,
    EPS_LENGTH,
    LENGTH_CALIBRATION,
)

M = len(COMPONENTS)
_LEN, _XY = COMPONENT_INDEX["length"], COMPONENT_INDEX["cov_xy"]
# How much bigger than a drawn ellipse's Ramanujan perimeter a real contour may be: annotators
# draw smooth ellipses around structures whose outlines are rougher.
Ellipse = tuple[float, float, float, float, float]
"""``(cx, cy, a, b, angle)``: centre (px, x = column), semi-axes (px), angle in degrees."""


ELLIPSE_LENGTH_SLACK = 0.1


def ellipse_descriptors(cx: float, cy: float, a: float, b: float, angle: float) -> np.ndarray:
    """Exact descriptors ``(M,)`` of a filled ellipse (px units; angle in degrees, +x to +y).

    Covariance of a uniform ellipse has eigenvalues a^2/4 and b^2/4 along its axes; the
    perimeter is Ramanujan's approximation (relative error < 1e-4 for b/a > 0.2).
    """
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    la, lb = a * a / 4.0, b * b / 4.0
    xx = la * c * c + lb * s * s
    yy = la * s * s + lb * c * c
    xy = (la - lb) * s * c
    h = ((a - b) / (a + b)) ** 2
    perimeter = math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
    return np.array([math.pi * a * b, cx, cy, math.sqrt(xx), math.sqrt(yy), xx, yy, xy, perimeter])


def from_ellipse(
    cx: float, cy: float, a: float, b: float, angle: float = 0.0, tolerance: float = 0.2
) -> ClassBounds:
    """Bounds implied by one drawn ellipse (px; ``a``, ``b`` semi-axes; ``angle`` in degrees).

    ``tolerance`` is the relative uncertainty of the drawing (0.2 = each semi-axis may be off by
    20 %): area in ``[(1-t)^2, (1+t)^2] * pi a b``; centroid within ``t * max(a, b)`` px per axis;
    spread and the diagonal covariance scaled by ``[(1-t), (1+t)]`` resp. its square, with the
    orientation free by up to the tolerance (the bounds are widened to cover both a rotated and a
    rescaled ellipse); xy covariance +- ``((1+t)^2 - 1) * max(a, b)^2 / 4`` around its value;
    perimeter in ``[(1-t), (1+t) (1 + ELLIPSE_LENGTH_SLACK)]`` times the ellipse's.
    """
    for name, v in (("cx", cx), ("cy", cy), ("a", a), ("b", b), ("angle", angle)):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite")
    if a <= 0 or b <= 0:
        raise ValueError(f"semi-axes must be positive (a={a:g}, b={b:g})")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance:g}")
    d = ellipse_descriptors(cx, cy, a, b, angle)
    t = tolerance
    lo_f, hi_f = 1 - t, 1 + t
    big = max(a, b)
    shift = t * big
    # Orientation uncertainty: the variance along x of a rotated ellipse lies between its
    # eigenvalues; tolerance t in angle terms is taken as t * 45 degrees.
    da = t * 45.0
    rot = np.array([ellipse_descriptors(cx, cy, a, b, angle + s) for s in (-da, da)] + [d])
    xx, yy, xy = (rot[:, COMPONENT_INDEX[k]] for k in ("cov_xx", "cov_yy", "cov_xy"))
    xx_lo, xx_hi = xx.min(), xx.max()
    yy_lo, yy_hi = yy.min(), yy.max()
    xy_lo, xy_hi = xy.min(), xy.max()
    xy_pad = ((1 + t) ** 2 - 1) * big * big / 4.0
    lo = (
        d[0] * lo_f**2,
        cx - shift,
        cy - shift,
        math.sqrt(xx_lo) * lo_f,
        math.sqrt(yy_lo) * lo_f,
        xx_lo * lo_f**2,
        yy_lo * lo_f**2,
        xy_lo - xy_pad,
        d[_LEN] * lo_f,
    )
    hi = (
        d[0] * hi_f**2,
        cx + shift,
        cy + shift,
        math.sqrt(xx_hi) * hi_f,
        math.sqrt(yy_hi) * hi_f,
        xx_hi * hi_f**2,
        yy_hi * hi_f**2,
        xy_hi + xy_pad,
        d[_LEN] * hi_f * (1 + ELLIPSE_LENGTH_SLACK),
    )
    return ClassBounds(True, tuple(float(v) for v in lo), tuple(float(v) for v in hi))


def ring_descriptors(
    outer: tuple[float, float, float, float, float], inner: tuple[float, float, float, float, float]
) -> np.ndarray:
    """Exact descriptors ``(M,)`` of the region between two filled ellipses, each given as
    ``(cx, cy, a, b, angle)`` (px, degrees) with ``inner`` inside ``outer``: moments of the outer
    ellipse minus those of the inner one; the contour is both perimeters."""
    do, di = ellipse_descriptors(*outer), ellipse_descriptors(*inner)
    o, i = dict(zip(COMPONENTS, do, strict=True)), dict(zip(COMPONENTS, di, strict=True))
    area = o["size"] - i["size"]
    if area <= 0:
        raise ValueError("the inner ellipse must be smaller than the outer one")

    def raw(d: np.ndarray) -> np.ndarray:  # area x (E[x], E[y], E[xx], E[yy], E[xy])
        v = dict(zip(COMPONENTS, d, strict=True))
        cx, cy = v["centroid_x"], v["centroid_y"]
        return v["size"] * np.array(
            [cx, cy, v["cov_xx"] + cx * cx, v["cov_yy"] + cy * cy, v["cov_xy"] + cx * cy]
        )

    m = (raw(do) - raw(di)) / area
    cx, cy = m[0], m[1]
    xx, yy, xy = m[2] - cx * cx, m[3] - cy * cy, m[4] - cx * cy
    return np.array(
        [
            area,
            cx,
            cy,
            math.sqrt(max(xx, 0.0)),
            math.sqrt(max(yy, 0.0)),
            xx,
            yy,
            xy,
            o["length"] + i["length"],
        ]
    )


def from_ring(
    outer: tuple[float, float, float, float, float],
    inner: tuple[float, float, float, float, float],
    tolerance: float = 0.2,
) -> ClassBounds:
    """Bounds implied by a drawn ring: the region between an ``outer`` and an ``inner`` ellipse
    ``(cx, cy, a, b, angle)`` (px, degrees), e.g. the myocardium between epicardium and
    endocardium, whose own moment ellipse would claim about three times its area.

    ``tolerance`` as in :func:`from_ellipse`, applied to each ellipse: area, spread and covariance
    bounds are the extremes over both ellipses scaled by ``1 - t``, 1 or ``1 + t`` and turned by
    up to ``t * 45`` degrees (combinations where the inner one no longer fits are skipped), xy
    covariance further padded as in :func:`from_ellipse`; centroid within the shift that moving
    each ellipse by ``t *`` its major semi-axis causes; contour in ``[(1-t), (1+t)
    (1 + ELLIPSE_LENGTH_SLACK)]`` times the sum of both perimeters.
    """
    for e in (outer, inner):
        if len(e) != 5 or not all(math.isfinite(v) for v in e):
            raise ValueError("an ellipse is (cx, cy, a, b, angle), all finite")
        if e[2] <= 0 or e[3] <= 0:
            raise ValueError(f"semi-axes must be positive (a={e[2]:g}, b={e[3]:g})")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance:g}")
    d = ring_descriptors(outer, inner)
    t, da = tolerance, tolerance * 45.0
    variants = []
    for so, si, turn in itertools.product((1 - t, 1.0, 1 + t), (1 - t, 1.0, 1 + t), (-da, 0, da)):
        o = (outer[0], outer[1], outer[2] * so, outer[3] * so, outer[4] + turn)
        i = (inner[0], inner[1], inner[2] * si, inner[3] * si, inner[4] + turn)
        if o[2] * o[3] > i[2] * i[3]:
            variants.append(ring_descriptors(o, i))
    v = np.array(variants)
    # Each contour's centre may be off by t x its major semi-axis; the ring's centroid moves by
    # those shifts weighted by each ellipse's share of the ring's area (more than either alone).
    area_o, area_i = math.pi * outer[2] * outer[3], math.pi * inner[2] * inner[3]
    shift = t * (area_o * max(outer[2:4]) + area_i * max(inner[2:4])) / d[0]
    big = max(outer[2:4])
    xy_pad = ((1 + t) ** 2 - 1) * big * big / 4.0  # as from_ellipse: orientation is uncertain
    lo, hi = v.min(0), v.max(0)
    for axis in ("centroid_x", "centroid_y"):
        i = COMPONENT_INDEX[axis]
        lo[i], hi[i] = d[i] - shift, d[i] + shift
    lo[_XY], hi[_XY] = lo[_XY] - xy_pad, hi[_XY] + xy_pad
    lo[_LEN], hi[_LEN] = d[_LEN] * (1 - t), d[_LEN] * (1 + t) * (1 + ELLIPSE_LENGTH_SLACK)
    return ClassBounds(True, tuple(float(x) for x in lo), tuple(float(x) for x in hi))


def same_contour(a: Ellipse, b: Ellipse, px: float = 1.0) -> bool:
    """Whether two drawn ellipses are one contour (e.g. the Myo hole linked to the LV ellipse):
    centres and semi-axes within ``px`` pixels, and the same orientation unless nearly round."""
    if abs(a[0] - b[0]) > px or abs(a[1] - b[1]) > px:
        return False
    if abs(a[2] - b[2]) > px or abs(a[3] - b[3]) > px:
        # The same ellipse may be drawn with its axes named the other way round.
        if abs(a[2] - b[3]) > px or abs(a[3] - b[2]) > px:
            return False
        b = (b[0], b[1], b[3], b[2], b[4] + 90.0)
    if abs(a[2] - a[3]) <= px:
        return True  # a circle has no orientation
    turn = (a[4] - b[4] + 90.0) % 180.0 - 90.0
    return abs(math.radians(turn)) * max(a[2], a[3]) <= 2.0 * px


def measure(mask: np.ndarray) -> np.ndarray:
    """Descriptors ``(M,)`` float64 of a binary ``(H, W)`` mask, in px units.

    Same definitions as ``models.descriptors`` (population covariance, calibrated Sobel length
    with edge-replicated borders). An empty mask gives size 0 and zeros elsewhere.
    """
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    h, w = m.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    s = m.sum()
    if s <= 0:
        return np.zeros(M)
    cx, cy = (m * xs).sum() / s, (m * ys).sum() / s
    xx = (m * (xs - cx) ** 2).sum() / s
    yy = (m * (ys - cy) ** 2).sum() / s
    xy = (m * (xs - cx) * (ys - cy)).sum() / s
    return np.array([s, cx, cy, math.sqrt(xx), math.sqrt(yy), xx, yy, xy, sobel_length(m)])


def sobel_length(m: np.ndarray) -> float:
    """Calibrated contour length (px) of a ``(H, W)`` soft or binary mask (numpy twin of torch)."""
    p = np.pad(np.asarray(m, dtype=np.float64), 1, mode="edge")
    # Sobel: derivative [-1, 0, 1] / 2 across, smoothing [1, 2, 1] / 4 along.
    dx = (p[:, 2:] - p[:, :-2]) / 2.0
    gx = (dx[:-2] + 2 * dx[1:-1] + dx[2:]) / 4.0
    dy = (p[2:] - p[:-2]) / 2.0
    gy = (dy[:, :-2] + 2 * dy[:, 1:-1] + dy[:, 2:]) / 4.0
    mag = np.sqrt(gx * gx + gy * gy + EPS_LENGTH**2) - EPS_LENGTH
    return float(mag.sum() * LENGTH_CALIBRATION)


PAPER_MARGINS: dict[str, float] = {"size": 0.1, "centroid": 20.0, "spread": 20.0, "length": 0.1}
"""The paper's GT +- margin setting (its length bound is replaced by +-10 % of the calibrated
length, as its text says)."""


def from_mask(
    mask: np.ndarray,
    num_classes: int,
    margins: Mapping[str, float] | None = None,
    *,
    include_background: bool = False,
) -> list[ClassBounds]:
    """Bounds around a reference label map's own descriptors (benchmarks; the paper's setting).

    ``mask``: ``(H, W)`` integer labels in ``[0, num_classes)``; ``num_classes`` includes the
    background. ``margins`` per descriptor (missing = unconstrained): ``size``, ``covariance``
    (xx, yy; xy by that fraction of sqrt(xx yy)) and ``length`` are relative (0.1 = +-10 %);
    ``centroid`` and ``spread`` are absolute px (spread's lower end is clipped at 0).
    Classes missing from the mask are absent. Index 0 (background) is unconstrained unless
    ``include_background``. Returns ``num_classes`` ClassBounds.
    """
    margins = dict(PAPER_MARGINS if margins is None else margins)
    unknown = set(margins) - set(DESCRIPTOR_COMPONENTS)
    if unknown:
        raise ValueError(f"unknown margin(s) {sorted(unknown)}")
    mask = np.asarray(mask)
    out: list[ClassBounds] = []
    for k in range(num_classes):
        if k == 0 and not include_background:
            out.append(ClassBounds())
            continue
        binary = mask == k
        if not binary.any():
            out.append(ClassBounds.absent())
            continue
        d = dict(zip(COMPONENTS, measure(binary), strict=True))
        cb = ClassBounds(present=True)
        if "size" in margins:
            r = margins["size"]
            cb = cb.with_interval("size", d["size"] * (1 - r), d["size"] * (1 + r))
        if "centroid" in margins:
            r = margins["centroid"]
            for key in ("centroid_x", "centroid_y"):
                cb = cb.with_interval(key, d[key] - r, d[key] + r)
        if "spread" in margins:
            r = margins["spread"]
            for key in ("spread_x", "spread_y"):
                cb = cb.with_interval(key, max(d[key] - r, 0.0), d[key] + r)
        if "covariance" in margins:
            r = margins["covariance"]
            for key in ("cov_xx", "cov_yy"):
                cb = cb.with_interval(key, d[key] * (1 - r), d[key] * (1 + r))
            pad = r * math.sqrt(d["cov_xx"] * d["cov_yy"])
            cb = cb.with_interval("cov_xy", d["cov_xy"] - pad, d["cov_xy"] + pad)
        if "length" in margins:
            r = margins["length"]
            cb = cb.with_interval("length", d["length"] * (1 - r), d["length"] * (1 + r))
        out.append(cb)
    return out
