"""units and bounds: px/mm conversion, hint/prior parsing, intersection, ellipses, masks."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import numpy as np
import pytest

from models import bounds as B
from models import units as U
from models.synthetic import CLASS_NAMES, make_dataset, make_hints


def test_components_order_and_units() -> None:
    assert B.COMPONENTS == U.COMPONENTS
    assert U.COMPONENTS[0] == "size" and U.COMPONENTS[-1] == "length"
    assert U.unit_of("size", "mm") == "mm^2"
    assert U.unit_of("cov_xy", "px") == "px^2"
    assert U.unit_of("centroid_x", "mm") == "mm"
    assert U.format_value("size", 12.345) == "12.3 px^2"
    assert U.format_value("length", math.inf) == "open"


def test_px_mm_conversion_per_axis() -> None:
    spacing = (2.0, 0.5)  # row_mm, col_mm
    assert U.px_to_mm("size", 10.0, spacing) == pytest.approx(10.0)
    assert U.px_to_mm("centroid_x", 10.0, spacing) == pytest.approx(5.0)
    assert U.px_to_mm("centroid_y", 10.0, spacing) == pytest.approx(20.0)
    assert U.px_to_mm("cov_yy", 1.0, spacing) == pytest.approx(4.0)
    assert U.mm_to_px("spread_x", 5.0, spacing) == pytest.approx(10.0)
    # Length on an anisotropic grid converts conservatively: the px interval covers every shape.
    lo, hi = U.interval_to_px("length", 10.0, 20.0, spacing)
    assert lo == pytest.approx(5.0) and hi == pytest.approx(40.0)
    with pytest.raises(ValueError, match="spacing"):
        U.check_spacing((0.0, 1.0))


def test_api_modules_do_not_import_torch() -> None:
    code = (
        "import sys, models.units, models.bounds, models.synthetic; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parse_hint_px_and_mm() -> None:
    cb = B.parse_hint(
        "LV",
        {"size": [100, None], "centroid": {"x": [10, 20]}, "length": [None, 80]},
        shape=(64, 64),
    )
    assert cb.present is True
    assert cb.size == (100.0, math.inf)
    assert cb.centroid_x == (10.0, 20.0)
    assert cb.centroid_y == (-math.inf, math.inf)
    assert cb.length == (-math.inf, 80.0)
    mm = B.parse_hint(
        "LV", {"unit": "mm", "size": [300, 3000], "centroid": {"y": [10, 20]}}, spacing=(2.0, 1.5)
    )
    assert mm.size == pytest.approx((100.0, 1000.0))
    assert mm.centroid_y == pytest.approx((5.0, 10.0))


@pytest.mark.parametrize(
    ("hint", "kwargs", "fragment"),
    [
        ({"size": [10, 5]}, {}, "size"),
        ({"size": [-1, 5]}, {}, "size cannot be negative"),
        ({"present": False, "size": [0, 5]}, {}, "absent, so size"),
        ({"unit": "mm", "size": [1, 2]}, {}, "spacing"),
        ({"centroid": {"z": [1, 2]}}, {}, "centroid"),
        ({"bogus": 1}, {}, "bogus"),
        ({"centroid": {"x": [100, 120]}}, {"shape": (64, 64)}, "centroid.x"),
        ({"size": ["a", 3]}, {}, "size"),
        ({"ellipse": {"cx": 1, "cy": 1, "a": -2, "b": 1}}, {}, "ellipse"),
        ({"tolerance": 0.1}, {}, "tolerance"),
    ],
)
def test_parse_hint_errors_name_class_and_descriptor(
    hint: dict, kwargs: dict, fragment: str
) -> None:
    with pytest.raises(B.BoundsError) as exc:
        B.parse_hint("RV", hint, **kwargs)
    assert "RV" in str(exc.value)
    assert fragment in str(exc.value)


def test_absent_hint_and_stack() -> None:
    cb = B.parse_hint("RV", {"present": False})
    assert cb.present is False
    lo, hi = B.stack([None, cb, B.ClassBounds(present=True)])
    assert lo.shape == (3, len(B.COMPONENTS)) and lo.dtype == np.float32
    i_size, i_len = B.COMPONENTS.index("size"), B.COMPONENTS.index("length")
    assert lo[1, i_size] == hi[1, i_size] == 0 and hi[1, i_len] == 0
    assert np.isinf(lo[1, 1]) and np.isinf(hi[1, 1])  # centroid of an absent class: free
    assert np.all(np.isinf(lo[0])) and np.all(np.isinf(hi[0]))
    assert lo[2, i_size] >= 1.0  # present means at least one pixel


def test_prior_intersection_and_conflicts() -> None:
    prior = B.parse_prior(
        "LV", {"presence": "always", "unit": "mm", "size": [300, 3000]}, spacing=(1.0, 1.0)
    )
    hint = B.parse_hint("LV", {"size": [200, 500]})
    both = B.intersect(hint, prior, "LV")
    assert both.size == (300.0, 500.0)
    with pytest.raises(B.BoundsError, match=r"LV: size intervals do not overlap"):
        B.intersect(B.parse_hint("LV", {"size": [10, 20]}), prior, "LV")
    with pytest.raises(B.BoundsError, match="LV: presence conflict"):
        B.intersect(B.parse_hint("LV", {"present": False}), prior, "LV")
    maybe = B.parse_prior("LV", {"presence": "maybe", "size": [300, 3000]})
    absent = B.intersect(B.parse_hint("LV", {"present": False}), maybe, "LV")
    assert absent.present is False and absent.size == (0.0, 0.0)
    # A "maybe" prior alone: only the upper bound on size applies.
    lo, hi = B.stack([None, maybe])
    assert np.isinf(lo[1, 0]) and hi[1, 0] == 3000
    assert np.all(np.isinf(lo[1])) and np.isinf(hi[1, 1])
    with pytest.raises(B.BoundsError, match="Myo: presence must be"):
        B.parse_prior("Myo", {"presence": "often"})
    never = B.parse_prior("Myo", {"presence": "never"})
    assert never.present is False


def test_describe_px_and_mm() -> None:
    cb = B.from_ellipse(30, 40, 12, 8, 30, 0.2)
    d = B.describe(cb, (0.5, 0.5))
    size = d["components"]["size"]
    assert size["unit_px"] == "px^2" and size["unit_mm"] == "mm^2"
    assert size["mm"][0] == pytest.approx(size["px"][0] * 0.25)
    assert d["orientation_deg"] == pytest.approx(30, abs=3)
    unconstrained = B.describe(B.parse_hint("LV", {"size": [1, 2]}))
    assert set(unconstrained["components"]) == {"size"}
    assert unconstrained["components"]["size"]["mm"] is None


def _raster_ellipse(n: int, cx: float, cy: float, a: float, b: float, angle: float) -> np.ndarray:
    ys, xs = np.mgrid[0:n, 0:n].astype(float)
    t = math.radians(angle)
    u = (xs - cx) * math.cos(t) + (ys - cy) * math.sin(t)
    v = -(xs - cx) * math.sin(t) + (ys - cy) * math.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1


@pytest.mark.parametrize("angle", [0.0, 30.0, 75.0, 120.0])
def test_from_ellipse_contains_rasterised_ellipse(angle: float) -> None:
    cx, cy, a, b = 60.3, 55.7, 25.0, 12.0
    cb = B.from_ellipse(cx, cy, a, b, angle, tolerance=0.1)
    d = B.measure(_raster_ellipse(128, cx, cy, a, b, angle))
    for i, key in enumerate(B.COMPONENTS):
        lo, hi = cb.interval(key)
        assert lo <= d[i] <= hi, (key, lo, d[i], hi)
    # And the covariance midpoint gives the orientation back.
    xx, yy, xy = d[5:8]
    est = math.degrees(0.5 * math.atan2(2 * xy, xx - yy))
    diff = (est - angle + 90) % 180 - 90  # orientation is defined modulo 180 degrees
    assert abs(diff) < 1.0


@pytest.mark.parametrize("angle", [0.0, 40.0, 100.0])
def test_from_ring_contains_rasterised_ring_and_excludes_filled_ellipse(angle: float) -> None:
    outer = (64.2, 60.9, 30.0, 24.0, angle)
    inner = (66.0, 61.5, 19.0, 15.0, angle + 10.0)
    ring = _raster_ellipse(128, *outer) & ~_raster_ellipse(128, *inner)
    exact = B.ring_descriptors(outer, inner)
    d = B.measure(ring)
    assert d[0] == pytest.approx(exact[0], rel=0.02)  # area of outer minus inner
    assert d[1:3] == pytest.approx(exact[1:3], abs=0.3)
    assert d[5:8] == pytest.approx(exact[5:8], rel=0.03, abs=1.0)
    cb = B.from_ring(outer, inner, tolerance=0.1)
    for i, key in enumerate(B.COMPONENTS):
        lo, hi = cb.interval(key)
        assert lo <= d[i] <= hi, (key, lo, d[i], hi)
    # The filled outer ellipse (what an ellipse hint would say) is far too big for a ring.
    assert B.measure(_raster_ellipse(128, *outer))[0] > cb.size[1]
    with pytest.raises(ValueError, match="smaller"):
        B.from_ring(inner, outer)


def test_hint_with_ellipse_is_intersected() -> None:
    cb = B.parse_hint(
        "LV",
        {
            "size": [None, 200],
            "ellipse": {"cx": 30, "cy": 30, "a": 10, "b": 8, "angle": 0},
            "tolerance": 0.2,
        },
        shape=(64, 64),
    )
    assert cb.size[1] == 200
    assert cb.size[0] == pytest.approx(math.pi * 80 * 0.64)
    assert cb.centroid_x == pytest.approx((28.0, 32.0))
    with pytest.raises(B.BoundsError, match="LV: size"):
        B.parse_hint("LV", {"size": [None, 50], "ellipse": {"cx": 30, "cy": 30, "a": 10, "b": 8}})


def test_measure_disk_and_from_mask() -> None:
    r = 20
    disk = _raster_ellipse(128, 63.5, 64.2, r, r, 0)
    d = B.measure(disk)
    assert d[0] == pytest.approx(math.pi * r * r, rel=0.02)
    assert d[3] == pytest.approx(r / 2, rel=0.03)
    assert d[8] == pytest.approx(2 * math.pi * r, rel=0.05)
    label = np.zeros((128, 128), np.uint8)
    label[disk] = 2
    cbs = B.from_mask(label, 4, B.PAPER_MARGINS)
    assert len(cbs) == 4
    assert cbs[1].present is False and cbs[3].present is False
    assert cbs[2].size == pytest.approx((d[0] * 0.9, d[0] * 1.1))
    assert cbs[2].centroid_x == pytest.approx((d[1] - 20, d[1] + 20))
    assert cbs[2].spread_x[0] == 0.0
    assert cbs[0] == B.ClassBounds()


def test_synthetic_dataset_and_hints() -> None:
    a = make_dataset(3, size=48, num_classes=3, seed=1)
    b = make_dataset(3, size=48, num_classes=3, seed=1)
    for (ia, ma), (ib, mb) in zip(a, b, strict=True):
        assert ia.shape == (1, 48, 48) and ia.dtype == np.float32 and ma.shape == (48, 48)
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ma, mb)
        assert set(np.unique(ma)) == {0, 1, 2, 3}
        assert ia.min() >= 0.0 and ia.max() <= 1.0
    _img, mask = a[0]
    hints = make_hints(mask, 3, seed=0)
    assert set(hints) == set(CLASS_NAMES)
    for k, name in enumerate(CLASS_NAMES, start=1):
        cb = B.parse_hint(name, hints[name], shape=mask.shape)
        d = B.measure(mask == k)
        assert cb.size[0] <= d[0] <= cb.size[1]
        assert cb.centroid_x[0] <= d[1] <= cb.centroid_x[1]
        assert cb.centroid_y[0] <= d[2] <= cb.centroid_y[1]
        assert cb.size[1] - cb.size[0] >= 0.2 * d[0]  # a coarse hint, not the truth


def _instances_hint() -> dict:
    return {
        "instances": [
            {"ellipse": {"cx": 30.0, "cy": 34.0, "a": 14.0, "b": 9.0, "angle": 20.0}},
            {"ellipse": {"cx": 90.0, "cy": 80.0, "a": 10.0, "b": 7.0, "angle": -50.0}},
        ],
        "tolerance": 0.1,
    }


def test_instances_bound_the_union_of_the_drawn_shapes() -> None:
    hint = _instances_hint()
    shapes = B.hint_shapes("polyp", hint)
    union_mask = _raster_ellipse(128, *shapes[0][0]) | _raster_ellipse(128, *shapes[1][0])
    d = B.measure(union_mask)
    cb = B.parse_hint("polyp", hint, shape=(128, 128))
    for i, key in enumerate(B.COMPONENTS):
        lo, hi = cb.interval(key)
        assert lo <= d[i] <= hi, (key, lo, d[i], hi)
    # Either instance alone would say the class is much smaller and elsewhere.
    first = B.parse_hint("polyp", {**hint["instances"][0], "tolerance": 0.1})
    assert d[0] > first.size[1]
    assert not first.centroid_x[0] <= d[1] <= first.centroid_x[1]
    # Explicit intervals still intersect with the union.
    capped = B.parse_hint("polyp", {**hint, "size": [None, 700]})
    assert capped.size == (cb.size[0], 700)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ellipse": {"cx": 1, "cy": 1, "a": 2, "b": 2}}, "either ellipse"),
        ({"instances": [{"ellipse": {"cx": 1, "cy": 1, "a": 2, "b": 2}}]}, "2 to 16"),
        ({"instances": [{"ellipse": {"cx": 1, "cy": 1, "a": 2, "b": 2}}] * 17}, "2 to 16"),
        ({"instances": [{"ellipse": {"cx": 1, "cy": 1, "a": 2, "b": 2}}, {"hole": {}}]}, "[1]"),
        ({"instances": [{"ellipse": {"cx": 1, "cy": 1, "a": 2, "b": 2}, "x": 1}] * 2}, "unknown"),
        ({"instances": [{"ellipse": {"cx": 1, "cy": 1, "a": -2, "b": 2}}] * 2}, "positive"),
    ],
)
def test_bad_instances_name_the_problem(change: dict, message: str) -> None:
    with pytest.raises(B.BoundsError, match=f"polyp: .*{re.escape(message)}"):
        B.parse_hint("polyp", {**_instances_hint(), **change})
    with pytest.raises(B.BoundsError, match="marked absent"):
        B.parse_hint("polyp", {"present": False, "instances": _instances_hint()["instances"]})


def test_sure_regions_cover_every_instance() -> None:
    from models.regions import hint_regions

    hint = _instances_hint()
    sure_in, sure_out = hint_regions(hint, (128, 128))
    assert sure_in[34, 30] and sure_in[80, 90]  # both centres are surely inside
    assert not sure_out[34, 30] and not sure_out[80, 90]
    assert sure_out[5, 120] and not sure_in[5, 120]


def test_a_ring_and_the_class_in_its_hole_are_bounded_together() -> None:
    """The ring in issue 10 (Myo outer 28.5 x 27.7 px, hole 22.7 x 21.7 px, tolerance 0.2): its
    own area bounds are nearly vacuous, the outer contour keeps Myo + LV within +-44 %."""
    outer = {"cx": 64.0, "cy": 60.0, "a": 28.5, "b": 27.7, "angle": 10.0}
    hole = {"cx": 65.0, "cy": 60.5, "a": 22.7, "b": 21.7, "angle": 10.0}
    hints = {"Myo": {"ellipse": outer, "hole": hole}, "LV": {"ellipse": hole}}
    ((ring, filler, both),) = B.hole_fillers(hints)
    assert (ring, filler) == ("Myo", "LV")
    myo = B.parse_hint("Myo", hints["Myo"])
    filled = math.pi * 28.5 * 27.7
    assert both.size == pytest.approx((0.64 * filled, 1.44 * filled))
    assert myo.size[1] - myo.size[0] > 2.5 * (math.pi * (28.5 * 27.7 - 22.7 * 21.7))
    assert both.centroid_x[1] - both.centroid_x[0] == pytest.approx(2 * 0.2 * 28.5)
    # An annotator within the tolerance: the true epicardium is the drawn one scaled by 0.85
    # and moved 4 px; what it encloses (Myo and LV together) meets the joint bounds.
    true_outer = (68.0, 60.0, 28.5 * 0.85, 27.7 * 0.85, 14.0)
    d = B.measure(_raster_ellipse(128, *true_outer))
    for i, key in enumerate(B.COMPONENTS):
        lo, hi = both.interval(key)
        assert lo <= d[i] <= hi, (key, lo, d[i], hi)
    # The same contour drawn with its axes named the other way round still links.
    swapped = {**hole, "a": hole["b"], "b": hole["a"], "angle": 100.0}
    assert B.hole_fillers({**hints, "LV": {"ellipse": swapped}})
    # Not linked: the LV drawn elsewhere, marked absent, or itself a ring.
    for lv in (
        {"ellipse": {**hole, "cx": 60.0}},
        {"present": False},
        {"ellipse": hole, "hole": {**hole, "a": 5.0, "b": 5.0}},
    ):
        assert B.hole_fillers({**hints, "LV": lv}) == []
    # Two rings, each around one instance of the filling class.
    hole2 = {**hole, "cx": 10.0}
    two = {
        "Myo": {
            "instances": [
                {"ellipse": outer, "hole": hole},
                {"ellipse": {**outer, "cx": 9.0}, "hole": hole2},
            ]
        },
        "LV": {"instances": [{"ellipse": hole2}, {"ellipse": hole}]},
    }
    ((_, _, both2),) = B.hole_fillers(two)
    assert both2.size == pytest.approx((2 * 0.64 * filled, 2 * 1.44 * filled))
