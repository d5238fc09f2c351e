"""Hints and priors as interval bounds on shape descriptors, per (image slice, class, component):
parsing the JSON (``parse_hint``, ``parse_prior``), what the UI shows (``describe``), and the
bounds a slice's drawings imply together (``hole_fillers``). numpy only. The interval algebra
lives in ``models.class_bounds``, the geometry of drawn shapes in ``models.shapes``; both are
re-exported here.

Intervals are in pixel units of their slice; see ``models.class_bounds`` for the presence
semantics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from models.class_bounds import (
    INF,
    MIN_PRESENT_SIZE,
    BoundsError,
    ClassBounds,
    M,
    component_label,
    fmt_bound,
    intersect,
    json_number,
    stack,
    union,
)
from models.shapes import (
    ELLIPSE_LENGTH_SLACK,
    PAPER_MARGINS,
    Ellipse,
    ellipse_descriptors,
    from_ellipse,
    from_mask,
    from_ring,
    measure,
    ring_descriptors,
    same_contour,
    sobel_length,
)
from models.units import (
    COMPONENT_SPECS,
    COMPONENTS,
    DESCRIPTOR_COMPONENTS,
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
    "ELLIPSE_LENGTH_SLACK",
    "INF",
    "MIN_PRESENT_SIZE",
    "PAPER_MARGINS",
    "BoundsError",
    "ClassBounds",
    "Ellipse",
    "HintConflict",
    "M",
    "combine_hints",
    "describe",
    "ellipse_descriptors",
    "from_ellipse",
    "from_mask",
    "from_ring",
    "hint_shapes",
    "hole_fillers",
    "intersect",
    "measure",
    "parse_hint",
    "parse_prior",
    "ring_descriptors",
    "same_contour",
    "sobel_length",
    "stack",
    "union",
]

_HINT_KEYS = {
    "present",
    "unit",
    "ellipse",
    "hole",
    "instances",
    "tolerance",
    *DESCRIPTOR_COMPONENTS,
}
MAX_INSTANCES = 16
"""Most instances of one class a hint may draw on one slice."""
_PRIOR_KEYS = {"presence", "unit", *DESCRIPTOR_COMPONENTS}
_PRESENCE = {"always": True, "never": False, "maybe": None}
DEFAULT_TOLERANCE = 0.2


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


class HintConflict(BoundsError):
    """Valid hints (or a hint and a prior) whose intervals do not overlap."""


def combine_hints(
    class_name: str,
    hints: Sequence[Mapping[str, Any]],
    *,
    spacing: Spacing | None = None,
    shape: tuple[int, int] | None = None,
    start: ClassBounds | None = None,
) -> ClassBounds | None:
    """Several authors' hints of one class on one slice, and ``start`` (e.g. the project's
    prior): every one must hold, so their bounds are intersected. None when there is nothing to
    combine. Raises ``BoundsError`` (naming the class and the descriptor) for the first invalid
    hint, :class:`HintConflict` when valid ones do not overlap."""
    bounds = start
    for hint in hints:
        hb = parse_hint(class_name, hint, spacing=spacing, shape=shape)
        try:
            bounds = hb if bounds is None else intersect(bounds, hb, class_name)
        except BoundsError as exc:
            raise HintConflict(str(exc)) from None
    return bounds


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
                f"class {class_name}: {component_label(key)} [{fmt_bound(lo)}, "
                f"{fmt_bound(hi)}] {unit_of(key)} lies outside the {w}x{h} px image "
                f"(possible: [{a:g}, {b:g}])"
            )


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
            "px": [json_number(lo), json_number(hi)],
            "unit_px": unit_of(spec.key, PX),
            "unit_mm": unit_of(spec.key, MM),
            "mm": None,
        }
        if row_col is not None:
            mlo, mhi = interval_to_mm(spec.key, lo, hi, row_col)
            entry["mm"] = [json_number(mlo), json_number(mhi)]
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
