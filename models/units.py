"""Descriptor names, components, units and the px <-> mm conversion (numpy-free, torch-free).

This is the one definition the API, the UI and the trainer use. Conventions:
x = image column, y = image row; spacing is ``(row_mm, col_mm)``.

Component keys (the order of the ``M`` axis in bound arrays) are ``COMPONENTS``:
``size, centroid_x, centroid_y, spread_x, spread_y, cov_xx, cov_yy, cov_xy, length``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Spacing = tuple[float, float]
"""Pixel spacing ``(row_mm, col_mm)``."""

PX = "px"
MM = "mm"
UNIT_SYSTEMS: tuple[str, ...] = (PX, MM)


@dataclass(frozen=True)
class Component:
    """One constrained scalar: ``key`` (bound-array name), its descriptor, its JSON sub-key."""

    key: str
    descriptor: str
    json_key: str | None  # None: the descriptor is a scalar ("size": [lo, hi])
    axes: str  # which pixel axes the value scales with: "" (none), "x", "y", "xx", "yy", "xy", "L"
    label: str


# Order matters: it is the M axis of ``models.bounds.stack`` and of the trainer's bound tensors.
COMPONENT_SPECS: tuple[Component, ...] = (
    Component("size", "size", None, "xy", "area"),
    Component("centroid_x", "centroid", "x", "x", "centroid x (column)"),
    Component("centroid_y", "centroid", "y", "y", "centroid y (row)"),
    Component("spread_x", "spread", "x", "x", "spread x (std. dev. along columns)"),
    Component("spread_y", "spread", "y", "y", "spread y (std. dev. along rows)"),
    Component("cov_xx", "covariance", "xx", "xx", "covariance xx"),
    Component("cov_yy", "covariance", "yy", "yy", "covariance yy"),
    Component("cov_xy", "covariance", "xy", "xy", "covariance xy"),
    Component("length", "length", None, "L", "contour length (perimeter)"),
)
COMPONENTS: tuple[str, ...] = tuple(c.key for c in COMPONENT_SPECS)
COMPONENT_INDEX: dict[str, int] = {k: i for i, k in enumerate(COMPONENTS)}
BY_KEY: dict[str, Component] = {c.key: c for c in COMPONENT_SPECS}

NONNEGATIVE: frozenset[str] = frozenset(
    {"size", "spread_x", "spread_y", "cov_xx", "cov_yy", "length"}
)
"""Components that no shape can make negative (a lower bound <= 0 on them constrains nothing)."""
AREA_LIKE: frozenset[str] = frozenset(c.key for c in COMPONENT_SPECS if len(c.axes) == 2)
"""Components that scale with an area (px^2): size and the covariances."""

DESCRIPTORS: tuple[str, ...] = ("size", "centroid", "spread", "covariance", "length")
"""Descriptor names as they appear in hint / prior JSON."""

DESCRIPTOR_COMPONENTS: dict[str, tuple[str, ...]] = {
    "size": (),
    "centroid": ("x", "y"),
    "spread": ("x", "y"),
    "covariance": ("xx", "yy", "xy"),
    "length": (),
}

UNITS: dict[str, dict[str, str]] = {
    "size": {PX: "px^2", MM: "mm^2"},
    "centroid": {PX: "px", MM: "mm"},
    "spread": {PX: "px", MM: "mm"},
    "covariance": {PX: "px^2", MM: "mm^2"},
    "length": {PX: "px", MM: "mm"},
}


LENGTH_CALIBRATION = 1.0 / 1.0197
"""Scale of the Sobel gradient-magnitude contour length (``models.descriptors.length``).

The unscaled sum of Sobel gradient magnitudes over a binary straight edge is 1.0197x its true
length on average over edge orientations (measured on long half-planes at 0..45 degrees in
1-degree steps and 6 sub-pixel offsets; the per-angle response ranges from about 0.99 at
45 deg to about 1.03 a few degrees off the axes). A disk samples all orientations evenly, so
this constant makes disk perimeters exact to ~1 % and axis-aligned or rotated squares to ~2 %
(tests/models/test_descriptors_losses.py checks 5 radii and 5 rotations). Shared by the numpy
and torch implementations.
"""

EPS_LENGTH = 1e-3
"""Smoothing of |grad| = sqrt(g^2 + eps^2) - eps: differentiable at 0, exactly 0 on flat areas."""


def component_key(descriptor: str, sub: str | None) -> str:
    """JSON (descriptor, sub-key) -> component key, e.g. ("centroid", "x") -> "centroid_x"."""
    for c in COMPONENT_SPECS:
        if c.descriptor == descriptor and c.json_key == sub:
            return c.key
    raise KeyError(f"unknown descriptor component {descriptor}.{sub}")


def unit_of(key: str, system: str = PX) -> str:
    """Unit string of a component (or descriptor) key in ``system`` ("px" or "mm")."""
    descriptor = BY_KEY[key].descriptor if key in BY_KEY else key
    return UNITS[descriptor][system]


def check_spacing(spacing: Spacing | None) -> Spacing:
    """Validate a ``(row_mm, col_mm)`` spacing (positive, finite) and return it as floats."""
    if spacing is None:
        raise ValueError("pixel spacing is required for values in mm")
    if len(spacing) != 2:
        raise ValueError(f"spacing must be (row_mm, col_mm), got {spacing!r}")
    row, col = float(spacing[0]), float(spacing[1])
    if not (math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0):
        raise ValueError(f"spacing must be positive and finite, got {spacing!r}")
    return row, col


def mm_per_px(key: str, spacing: Spacing) -> float:
    """Factor f with ``value_mm = f * value_px`` for component ``key``.

    Exact for every component except ``length`` on anisotropic grids, where the geometric mean
    ``sqrt(row_mm * col_mm)`` is used (display only; interval conversion uses
    ``interval_to_px`` which is conservative).
    """
    row, col = check_spacing(spacing)
    return axis_scale(BY_KEY[key].axes, row, col)


def axis_scale(axes: str, row: float, col: float) -> float:
    """How a value with pixel ``axes`` (``Component.axes``) scales when a row counts ``row`` and a
    column ``col``: mm per px for a spacing, or a component's natural size on an (H, W) grid."""
    return {
        "": 1.0,
        "x": col,
        "y": row,
        "xx": col * col,
        "yy": row * row,
        "xy": row * col,
        "L": math.sqrt(row * col),
    }[axes]


def px_to_mm(key: str, value_px: float, spacing: Spacing) -> float:
    """Convert one value of component ``key`` from px (px^2) to mm (mm^2)."""
    return value_px * mm_per_px(key, spacing)


def mm_to_px(key: str, value_mm: float, spacing: Spacing) -> float:
    """Convert one value of component ``key`` from mm (mm^2) to px (px^2)."""
    return value_mm / mm_per_px(key, spacing)


def interval_to_px(key: str, lo: float, hi: float, spacing: Spacing) -> tuple[float, float]:
    """Convert an interval in mm to px. Exact, except ``length`` on anisotropic grids.

    A contour of length L mm has between L / max(spacing) and L / min(spacing) px, so the
    px interval is widened to ``[lo / max, hi / min]``: it never excludes a true shape.
    Infinite ends stay infinite.
    """
    if BY_KEY[key].axes == "L":
        row, col = check_spacing(spacing)
        return lo / max(row, col), hi / min(row, col)
    f = mm_per_px(key, spacing)
    return lo / f, hi / f


def interval_to_mm(key: str, lo: float, hi: float, spacing: Spacing) -> tuple[float, float]:
    """Convert an interval in px to mm (conservative for ``length`` on anisotropic grids)."""
    if BY_KEY[key].axes == "L":
        row, col = check_spacing(spacing)
        return lo * min(row, col), hi * max(row, col)
    f = mm_per_px(key, spacing)
    return lo * f, hi * f


def format_value(key: str, value: float, system: str = PX, digits: int = 1) -> str:
    """Human-readable value with unit, e.g. ``"1256.6 px^2"``; infinite ends print as ``"open"``."""
    if not math.isfinite(value):
        return "open"
    return f"{value:.{digits}f} {unit_of(key, system)}"
