"""Interval bounds of one class on one slice and their algebra (numpy only): ``ClassBounds``,
``intersect`` (every constraint at once), ``union`` (several shapes of a class), ``stack`` (a
slice's classes as arrays).

All intervals are in pixel units (px, px^2) of the slice they belong to; open ends are ``-inf`` /
``+inf``. Component order is ``COMPONENTS`` (from ``models.units``):
``size, centroid_x, centroid_y, spread_x, spread_y, cov_xx, cov_yy, cov_xy, length``.

Presence semantics (applied by ``stack``):
- ``present=True``: every interval applies (size is at least 1 px^2).
- ``present=False``: absent on this slice, size and length are bounded to [0, 0], nothing else.
- ``present=None`` (unknown, e.g. a "maybe" prior without a hint): only the upper bounds of size
  and length apply, because an absent structure has no centroid or spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.units import BY_KEY, COMPONENT_INDEX, COMPONENTS, unit_of

M = len(COMPONENTS)
INF = math.inf
MIN_PRESENT_SIZE = 1.0
"""A class marked present covers at least this many px^2."""


class BoundsError(ValueError):
    """Invalid or contradictory bounds; the message names the class and the descriptor."""


def fmt_bound(v: float) -> str:
    return "open" if not math.isfinite(v) else f"{v:g}"


@dataclass(frozen=True)
class ClassBounds:
    """Intervals in px for one class on one slice.

    ``lo`` / ``hi``: tuples of length ``M`` in ``COMPONENTS`` order (open end = -inf / +inf).
    """

    present: bool | None = None
    lo: tuple[float, ...] = field(default=(-INF,) * M)
    hi: tuple[float, ...] = field(default=(INF,) * M)

    def __post_init__(self) -> None:
        if len(self.lo) != M or len(self.hi) != M:
            raise ValueError(f"ClassBounds needs {M} lower and upper bounds")

    @classmethod
    def absent(cls) -> ClassBounds:
        """Absent on this slice: size and length in [0, 0]."""
        lo = [-INF] * M
        hi = [INF] * M
        for key in ("size", "length"):
            lo[COMPONENT_INDEX[key]] = 0.0
            hi[COMPONENT_INDEX[key]] = 0.0
        return cls(False, tuple(lo), tuple(hi))

    def interval(self, key: str) -> tuple[float, float]:
        """``(lo, hi)`` of component ``key`` in px units."""
        i = COMPONENT_INDEX[key]
        return self.lo[i], self.hi[i]

    def with_interval(self, key: str, lo: float, hi: float) -> ClassBounds:
        """Copy with component ``key`` replaced by ``[lo, hi]`` (px units)."""
        i = COMPONENT_INDEX[key]
        new_lo, new_hi = list(self.lo), list(self.hi)
        new_lo[i], new_hi[i] = float(lo), float(hi)
        return replace(self, lo=tuple(new_lo), hi=tuple(new_hi))

    @property
    def size(self) -> tuple[float, float]:
        return self.interval("size")

    @property
    def centroid_x(self) -> tuple[float, float]:
        return self.interval("centroid_x")

    @property
    def centroid_y(self) -> tuple[float, float]:
        return self.interval("centroid_y")

    @property
    def spread_x(self) -> tuple[float, float]:
        return self.interval("spread_x")

    @property
    def spread_y(self) -> tuple[float, float]:
        return self.interval("spread_y")

    @property
    def cov_xx(self) -> tuple[float, float]:
        return self.interval("cov_xx")

    @property
    def cov_yy(self) -> tuple[float, float]:
        return self.interval("cov_yy")

    @property
    def cov_xy(self) -> tuple[float, float]:
        return self.interval("cov_xy")

    @property
    def length(self) -> tuple[float, float]:
        return self.interval("length")

    def effective(self) -> tuple[np.ndarray, np.ndarray]:
        """Arrays ``(M,)`` float64 after presence semantics (see module docstring)."""
        if self.present is False:
            a = ClassBounds.absent()
            return np.array(a.lo), np.array(a.hi)
        lo, hi = np.array(self.lo, dtype=np.float64), np.array(self.hi, dtype=np.float64)
        if self.present is None:
            keep_hi = {COMPONENT_INDEX["size"], COMPONENT_INDEX["length"]}
            for i in range(M):
                lo[i] = -INF  # a lower bound of 0 on an area or length says nothing
                if i not in keep_hi:
                    hi[i] = INF
        else:
            i = COMPONENT_INDEX["size"]
            lo[i] = max(lo[i], MIN_PRESENT_SIZE)
            hi[i] = max(hi[i], lo[i])
        return lo, hi

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"present": ..., "px": {key: [lo, hi]}}`` with None for open ends."""
        return {
            "present": self.present,
            "px": {
                k: [json_number(lo), json_number(hi)]
                for k, lo, hi in zip(COMPONENTS, self.lo, self.hi, strict=True)
            },
        }


def json_number(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def component_label(key: str) -> str:
    spec = BY_KEY[key]
    return spec.descriptor if spec.json_key is None else f"{spec.descriptor}.{spec.json_key}"


def intersect(a: ClassBounds, b: ClassBounds, class_name: str) -> ClassBounds:
    """Both constraints at once (hint and prior, ellipse and explicit intervals).

    Raises ``BoundsError`` naming the class and descriptor when an interval becomes empty, or when
    one side says present and the other absent.
    """
    if a.present is not None and b.present is not None and a.present != b.present:
        raise BoundsError(
            f"class {class_name}: presence conflict: marked "
            f"{'present' if a.present else 'absent'} in one and "
            f"{'present' if b.present else 'absent'} in the other (e.g. hint vs. project prior)"
        )
    present = a.present if a.present is not None else b.present
    if present is False:
        return ClassBounds.absent()
    lo, hi = [], []
    for i, key in enumerate(COMPONENTS):
        new_lo, new_hi = max(a.lo[i], b.lo[i]), min(a.hi[i], b.hi[i])
        if new_lo > new_hi:
            u = unit_of(key)
            raise BoundsError(
                f"class {class_name}: {component_label(key)} intervals do not overlap: "
                f"[{fmt_bound(a.lo[i])}, {fmt_bound(a.hi[i])}] {u} and "
                f"[{fmt_bound(b.lo[i])}, {fmt_bound(b.hi[i])}] {u}"
            )
        lo.append(new_lo)
        hi.append(new_hi)
    return ClassBounds(present, tuple(lo), tuple(hi))


def union(parts: Sequence[ClassBounds]) -> ClassBounds:
    """Bounds on the union of disjoint present shapes of one class, each within ``parts[i]``
    (several instances on one slice): the loss sees the class as a whole.

    Area and contour length add up. The centroid is an area-weighted mean, so it lies within the
    hull of the parts' centroid intervals. Covariance = mean within-part covariance (within the
    parts' extremes) + between-part spread of the centroids, which is ``>= 0`` and at most a
    quarter of the squared centroid range per axis (``|xy|`` at most the product of the half
    ranges); spread follows as its square root. Conservative: every union of shapes meeting
    their parts' bounds meets the result.
    """
    if not parts:
        raise ValueError("union of no shapes")
    if len(parts) == 1:
        return parts[0]
    if any(p.present is not True for p in parts):
        raise ValueError("a union is of present shapes only")
    lo = np.array([p.lo for p in parts])
    hi = np.array([p.hi for p in parts])
    idx = COMPONENT_INDEX
    out_lo, out_hi = lo.min(0), hi.max(0)
    for key in ("size", "length"):
        i = idx[key]
        out_lo[i], out_hi[i] = lo[:, i].sum(), hi[:, i].sum()
    half_range = {
        axis: (out_hi[idx[f"centroid_{axis}"]] - out_lo[idx[f"centroid_{axis}"]]) / 2.0
        for axis in ("x", "y")
    }
    for axis in ("x", "y"):
        i = idx[f"cov_{axis}{axis}"]
        out_hi[i] = out_hi[i] + half_range[axis] ** 2
        j = idx[f"spread_{axis}"]
        out_hi[j] = math.sqrt(max(out_hi[i], 0.0)) if math.isfinite(out_hi[i]) else INF
    xy = idx["cov_xy"]
    between_xy = half_range["x"] * half_range["y"]
    out_lo[xy], out_hi[xy] = out_lo[xy] - between_xy, out_hi[xy] + between_xy
    return ClassBounds(True, tuple(float(v) for v in out_lo), tuple(float(v) for v in out_hi))


def stack(per_class: Sequence[ClassBounds | None]) -> tuple[np.ndarray, np.ndarray]:
    """Per-class bounds of one slice -> ``(lo, hi)`` float32 arrays ``(K, M)`` (presence applied).

    ``per_class[k]`` is class k (index 0 = background); None = unconstrained.
    """
    k = len(per_class)
    lo = np.full((k, M), -np.inf, dtype=np.float32)
    hi = np.full((k, M), np.inf, dtype=np.float32)
    for i, cb in enumerate(per_class):
        if cb is None:
            continue
        a, b = cb.effective()
        lo[i], hi[i] = a, b
    return lo, hi
