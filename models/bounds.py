"""Interval bounds on shape descriptors, per (image slice, class, component). numpy only.

All stored intervals are in pixel units (px, px^2) of the slice they belong to; open ends are
``-inf`` / ``+inf``. Component order is ``COMPONENTS`` (from ``models.units``):
``size, centroid_x, centroid_y, spread_x, spread_y, cov_xx, cov_yy, cov_xy, length``.

Presence semantics (applied by ``stack``):
- ``present=True``: every interval applies (size is at least 1 px^2).
- ``present=False``: absent on this slice, size and length are bounded to [0, 0], nothing else.
- ``present=None`` (unknown, e.g. a "maybe" prior without a hint): only the upper bounds of size
  and length apply, because an absent structure has no centroid or spread.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.units import (
    BY_KEY,
    COMPONENT_INDEX,
    COMPONENT_SPECS,
    COMPONENTS,
    DESCRIPTOR_COMPONENTS,
    EPS_LENGTH,
    LENGTH_CALIBRATION,
    MM,
    NONNEGATIVE,
    PX,
    Spacing,
    check_spacing,
    component_key,
    interval_to_mm,
    interval_to_px,
    unit_of,
)

__all__ = [
    "COMPONENTS",
    "PAPER_MARGINS",
    "BoundsError",
    "ClassBounds",
    "describe",
    "from_ellipse",
    "from_mask",
    "from_ring",
    "hint_shapes",
    "hole_fillers",
    "intersect",
    "measure",
    "parse_hint",
    "parse_prior",
    "stack",
    "union",
]

M = len(COMPONENTS)
INF = math.inf
_HINT_KEYS = {
    "present",
    "unit",
    "ellipse",
    "hole",
    "instances",
    "tolerance",
    *DESCRIPTOR_COMPONENTS,
}
_LEN, _XY = COMPONENT_INDEX["length"], COMPONENT_INDEX["cov_xy"]
MAX_INSTANCES = 16
"""Most instances of one class a hint may draw on one slice."""
_PRIOR_KEYS = {"presence", "unit", *DESCRIPTOR_COMPONENTS}
_PRESENCE = {"always": True, "never": False, "maybe": None}
DEFAULT_TOLERANCE = 0.2
MIN_PRESENT_SIZE = 1.0
"""A class marked present covers at least this many px^2."""

# How much bigger than a drawn ellipse's Ramanujan perimeter a real contour may be: annotators
# draw smooth ellipses around structures whose outlines are rougher.
ELLIPSE_LENGTH_SLACK = 0.1


class BoundsError(ValueError):
    """Invalid or contradictory bounds; the message names the class and the descriptor."""


def _fmt(v: float) -> str:
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
                k: [_json_num(lo), _json_num(hi)]
                for k, lo, hi in zip(COMPONENTS, self.lo, self.hi, strict=True)
            },
        }


def _json_num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


# ---------------------------------------------------------------- parsing hints and priors


def _parse_interval(class_name: str, label: str, raw: Any) -> tuple[float, float]:
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise BoundsError(
            f"class {class_name}: {label} must be [lo, hi] (null = open), got {raw!r}"
        )
    out = []
    for v, open_end in zip(raw, (-INF, INF), strict=True):
        if v is None:
            out.append(open_end)
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise BoundsError(f"class {class_name}: {label} bounds must be numbers, got {v!r}")
        if not math.isfinite(float(v)):
            raise BoundsError(f"class {class_name}: {label} bounds must be finite or null")
        out.append(float(v))
    lo, hi = out
    if lo > hi:
        raise BoundsError(f"class {class_name}: {label} lower bound {lo:g} > upper bound {hi:g}")
    return lo, hi


def _parse_descriptors(
    class_name: str,
    data: Mapping[str, Any],
    unit: str,
    spacing: Spacing | None,
) -> ClassBounds:
    cb = ClassBounds(present=None)
    for descriptor, subs in DESCRIPTOR_COMPONENTS.items():
        if descriptor not in data or data[descriptor] is None:
            continue
        raw = data[descriptor]
        if subs:
            if not isinstance(raw, Mapping):
                raise BoundsError(
                    f"class {class_name}: {descriptor} must be an object with keys {list(subs)}"
                )
            unknown = set(raw) - set(subs)
            if unknown:
                raise BoundsError(
                    f"class {class_name}: {descriptor} has unknown component(s) {sorted(unknown)}"
                )
            items = [
                (f"{descriptor}.{s}", raw[s], component_key(descriptor, s))
                for s in subs
                if s in raw
            ]
        else:
            items = [(descriptor, raw, descriptor)]
        for label, value, key in items:
            if value is None:
                continue
            lo, hi = _parse_interval(class_name, f"{label} ({unit_of(key, unit)})", value)
            if key in NONNEGATIVE and -INF < lo < 0:
                raise BoundsError(f"class {class_name}: {label} cannot be negative (got {lo:g})")
            if unit == MM:
                lo, hi = interval_to_px(key, lo, hi, check_spacing(spacing))
            cb = cb.with_interval(key, lo, hi)
    return cb


def _parse_unit(class_name: str, data: Mapping[str, Any], spacing: Spacing | None) -> str:
    unit = data.get("unit", PX)
    if unit not in (PX, MM):
        raise BoundsError(f"class {class_name}: unit must be 'px' or 'mm', got {unit!r}")
    if unit == MM:
        try:
            check_spacing(spacing)
        except ValueError as exc:
            raise BoundsError(
                f"class {class_name}: values in mm need pixel spacing ({exc})"
            ) from exc
    return unit


def _has_descriptors(data: Mapping[str, Any]) -> list[str]:
    return [d for d in (*DESCRIPTOR_COMPONENTS, "ellipse", "instances") if data.get(d) is not None]


def parse_hint(
    class_name: str,
    hint: Mapping[str, Any],
    *,
    spacing: Spacing | None = None,
    shape: tuple[int, int] | None = None,
) -> ClassBounds:
    """Hint JSON for one class on one slice -> ``ClassBounds`` in px.

    ``hint``: see docs/interfaces.md; ``present`` defaults to true; ``unit`` ("px" | "mm") applies
    to the explicit intervals; an ``ellipse`` (cx, cy, a, b in px, angle in degrees) is always in
    image pixels and is intersected with the explicit intervals; with a ``hole`` (a second,
    inner ellipse) the class is the ring between them (:func:`from_ring`), e.g. a myocardium;
    ``instances`` (instead of ``ellipse``/``hole``) draws several shapes of the class on the
    slice, whose union the bounds describe (:func:`hint_shapes`, :func:`union`).
    ``spacing``: ``(row_mm, col_mm)``, needed for mm. ``shape``: ``(H, W)``; when given,
    intervals that no shape inside the image can satisfy are rejected. Raises ``BoundsError``
    naming the class and the descriptor.
    """
    if not isinstance(hint, Mapping):
        raise BoundsError(f"class {class_name}: hint must be an object")
    unknown = set(hint) - _HINT_KEYS
    if unknown:
        raise BoundsError(f"class {class_name}: unknown hint field(s) {sorted(unknown)}")
    present = hint.get("present", True)
    if not isinstance(present, bool):
        raise BoundsError(f"class {class_name}: present must be true or false")
    unit = _parse_unit(class_name, hint, spacing)
    if not present:
        given = _has_descriptors(hint)
        if given:
            raise BoundsError(f"class {class_name}: marked absent, so {given[0]} cannot be given")
        return ClassBounds.absent()
    cb = replace(_parse_descriptors(class_name, hint, unit, spacing), present=True)
    shapes = hint_shapes(class_name, hint)
    if shapes:
        try:
            tol = _num(hint.get("tolerance", DEFAULT_TOLERANCE))
            drawn = union(
                [
                    from_ellipse(*outer, tol) if inner is None else from_ring(outer, inner, tol)
                    for outer, inner in shapes
                ]
            )
        except (TypeError, ValueError) as exc:
            what = "ellipse" if len(shapes) == 1 and shapes[0][1] is None else "drawn shape"
            raise BoundsError(f"class {class_name}: {what}: {exc}") from exc
        cb = intersect(cb, drawn, class_name)
    elif "tolerance" in hint:
        raise BoundsError(f"class {class_name}: tolerance is only used with an ellipse")
    if shape is not None:
        _check_feasible(class_name, cb, shape)
    return cb


Ellipse = tuple[float, float, float, float, float]
"""``(cx, cy, a, b, angle)``: centre (px, x = column), semi-axes (px), angle in degrees."""


def hint_shapes(class_name: str, hint: Mapping[str, Any]) -> list[tuple[Ellipse, Ellipse | None]]:
    """The shapes a hint draws, each ``(outer, hole or None)``: the top-level ``ellipse`` (and
    ``hole``), or every entry of ``instances`` (2 to ``MAX_INSTANCES`` objects ``{"ellipse",
    "hole"?}``: several structures of one class on one slice, e.g. two polyps). ``[]`` when
    nothing is drawn. Raises ``BoundsError`` naming the class and the field."""
    instances = hint.get("instances")
    if instances is None:
        if hint.get("ellipse") is None:
            if hint.get("hole") is not None:
                raise BoundsError(f"class {class_name}: a hole is only used with an ellipse")
            return []
        return [_parse_instance(class_name, "", hint)]
    if hint.get("ellipse") is not None or hint.get("hole") is not None:
        raise BoundsError(
            f"class {class_name}: give either ellipse (and hole) or instances, not both"
        )
    if not isinstance(instances, list) or not 2 <= len(instances) <= MAX_INSTANCES:
        raise BoundsError(
            f"class {class_name}: instances must be a list of 2 to {MAX_INSTANCES} objects "
            "{ellipse, hole?} (one shape: use ellipse)"
        )
    out = []
    for n, inst in enumerate(instances):
        if not isinstance(inst, Mapping) or inst.get("ellipse") is None:
            raise BoundsError(f"class {class_name}: instances[{n}] must be {{ellipse, hole?}}")
        extra = set(inst) - {"ellipse", "hole"}
        if extra:
            raise BoundsError(
                f"class {class_name}: instances[{n}] has unknown field(s) {sorted(extra)}"
            )
        out.append(_parse_instance(class_name, f"instances[{n}].", inst))
    return out


def _parse_instance(
    class_name: str, prefix: str, data: Mapping[str, Any]
) -> tuple[Ellipse, Ellipse | None]:
    outer = _parse_ellipse(class_name, f"{prefix}ellipse", data["ellipse"])
    hole = data.get("hole")
    return outer, None if hole is None else _parse_ellipse(class_name, f"{prefix}hole", hole)


def _parse_ellipse(class_name: str, field_name: str, ell: Any) -> Ellipse:
    """``{cx, cy, a, b, angle?}`` (px, degrees) -> ``(cx, cy, a, b, angle)``."""
    if not isinstance(ell, Mapping):
        raise BoundsError(
            f"class {class_name}: {field_name} must be an object {{cx, cy, a, b, angle}}"
        )
    missing = [k for k in ("cx", "cy", "a", "b") if k not in ell]
    if missing:
        raise BoundsError(f"class {class_name}: {field_name} is missing {missing}")
    extra = set(ell) - {"cx", "cy", "a", "b", "angle"}
    if extra:
        raise BoundsError(f"class {class_name}: {field_name} has unknown field(s) {sorted(extra)}")
    try:
        return tuple(_num(ell.get(k, 0.0)) for k in ("cx", "cy", "a", "b", "angle"))  # type: ignore[return-value]
    except ValueError as exc:
        raise BoundsError(f"class {class_name}: {field_name}: {exc}") from exc


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        raise ValueError(f"expected a finite number, got {v!r}")
    return float(v)


def _check_feasible(class_name: str, cb: ClassBounds, shape: tuple[int, int]) -> None:
    """Reject intervals no shape inside an ``(H, W)`` image can meet."""
    h, w = int(shape[0]), int(shape[1])
    limits = {
        "size": (0.0, float(h * w)),
        "centroid_x": (0.0, float(w - 1)),
        "centroid_y": (0.0, float(h - 1)),
        "spread_x": (0.0, w / 2.0),
        "spread_y": (0.0, h / 2.0),
    }
    for key, (a, b) in limits.items():
        lo, hi = cb.interval(key)
        if lo > b or hi < a:
            raise BoundsError(
                f"class {class_name}: {_label(key)} [{_fmt(lo)}, {_fmt(hi)}] {unit_of(key)} "
                f"lies outside the {w}x{h} px image (possible: [{a:g}, {b:g}])"
            )


def _label(key: str) -> str:
    spec = BY_KEY[key]
    return spec.descriptor if spec.json_key is None else f"{spec.descriptor}.{spec.json_key}"


def parse_prior(
    class_name: str, prior: Mapping[str, Any], *, spacing: Spacing | None = None
) -> ClassBounds:
    """Project prior JSON for one class -> ``ClassBounds`` in px of a slice with ``spacing``.

    ``presence``: "always" (present=True), "never" (absent), "maybe" (default; only upper bounds
    of size and length apply on slices without a hint, see module docstring).
    """
    if not isinstance(prior, Mapping):
        raise BoundsError(f"class {class_name}: prior must be an object")
    unknown = set(prior) - _PRIOR_KEYS
    if unknown:
        raise BoundsError(f"class {class_name}: unknown prior field(s) {sorted(unknown)}")
    presence = prior.get("presence", "maybe")
    if presence not in _PRESENCE:
        raise BoundsError(
            f"class {class_name}: presence must be 'always', 'never' or 'maybe', got {presence!r}"
        )
    unit = _parse_unit(class_name, prior, spacing)
    present = _PRESENCE[presence]
    if present is False:
        given = _has_descriptors(prior)
        if given:
            raise BoundsError(
                f"class {class_name}: presence 'never', so {given[0]} cannot be given"
            )
        return ClassBounds.absent()
    return replace(_parse_descriptors(class_name, prior, unit, spacing), present=present)


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
                f"class {class_name}: {_label(key)} intervals do not overlap: "
                f"[{_fmt(a.lo[i])}, {_fmt(a.hi[i])}] {u} and "
                f"[{_fmt(b.lo[i])}, {_fmt(b.hi[i])}] {u}"
            )
        lo.append(new_lo)
        hi.append(new_hi)
    return ClassBounds(present, tuple(lo), tuple(hi))


def describe(cb: ClassBounds, spacing: Spacing | None = None) -> dict[str, Any]:
    """What the UI shows: every constrained component in px and (with spacing) in mm.

    Returns ``{"present": bool | None, "components": {key: {"descriptor", "component", "label",
    "px": [lo, hi], "unit_px", "mm": [lo, hi] | None, "unit_mm"}}}``; open ends are None and
    unconstrained components are left out. Also ``"orientation_deg"`` when the covariance bounds
    pin it: the principal axis angle of the interval midpoints (degrees from +x towards +y).
    """
    lo_eff, hi_eff = cb.effective()
    comps: dict[str, Any] = {}
    row_col = check_spacing(spacing) if spacing is not None else None
    for i, spec in enumerate(COMPONENT_SPECS):
        lo, hi = float(lo_eff[i]), float(hi_eff[i])
        if not math.isfinite(lo) and not math.isfinite(hi):
            continue
        entry: dict[str, Any] = {
            "descriptor": spec.descriptor,
            "component": spec.json_key,
            "label": spec.label,
            "px": [_json_num(lo), _json_num(hi)],
            "unit_px": unit_of(spec.key, PX),
            "unit_mm": unit_of(spec.key, MM),
            "mm": None,
        }
        if row_col is not None:
            mlo, mhi = interval_to_mm(spec.key, lo, hi, row_col)
            entry["mm"] = [_json_num(mlo), _json_num(mhi)]
        comps[spec.key] = entry
    out: dict[str, Any] = {"present": cb.present, "components": comps}
    mids = []
    for key in ("cov_xx", "cov_yy", "cov_xy"):
        lo, hi = cb.interval(key)
        mids.append((lo + hi) / 2 if math.isfinite(lo) and math.isfinite(hi) else None)
    if cb.present is not False and None not in mids:
        xx, yy, xy = mids
        out["orientation_deg"] = math.degrees(0.5 * math.atan2(2 * xy, xx - yy))
    return out


# ---------------------------------------------------------------- geometry-derived bounds


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


def hole_fillers(
    hints: Mapping[str, Mapping[str, Any]],
) -> list[tuple[str, str, ClassBounds]]:
    """Rings whose holes another class fills, on one slice: ``(ring class, filling class,
    bounds on the two together)``.

    A ring's own bounds are loose when its wall is thin, because each contour may be off by the
    tolerance. But when each hole is the same contour as an ellipse of one other class on the
    slice (a myocardium's hole is the LV), the ring plus that class fill the outer ellipses:
    their union is bounded like any drawn ellipse (:func:`from_ellipse` on the outer contours),
    which keeps the information of the outer contour. ``hints``: class name -> one hint (already
    accepted by :func:`parse_hint`).
    """
    shapes = {
        name: hint_shapes(name, h) for name, h in hints.items() if h.get("present", True) is True
    }
    out = []
    for ring, ring_shapes in shapes.items():
        holes = [hole for _, hole in ring_shapes if hole is not None]
        if not ring_shapes or len(holes) != len(ring_shapes):
            continue
        for other, other_shapes in shapes.items():
            fill = [e for e, hole in other_shapes if hole is None]
            if other == ring or len(fill) != len(other_shapes) or len(fill) != len(holes):
                continue
            if all(any(same_contour(h, e) for e in fill) for h in holes) and all(
                any(same_contour(h, e) for h in holes) for e in fill
            ):
                tol = _num(hints[ring].get("tolerance", DEFAULT_TOLERANCE))
                both = union([from_ellipse(*outer, tol) for outer, _ in ring_shapes])
                out.append((ring, other, both))
                break
    return out


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
