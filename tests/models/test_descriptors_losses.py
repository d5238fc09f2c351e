"""Descriptor accuracy on binary shapes, gradients, and loss behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models import bounds as B
from models import descriptors as D
from models.losses import (
    constraint_loss,
    log_barrier,
    masked_cross_entropy,
    narrow_interval_t,
    quadratic_penalty,
)


def ellipse(n: int, cx: float, cy: float, a: float, b: float, angle: float = 0.0) -> np.ndarray:
    ys, xs = np.mgrid[0:n, 0:n].astype(float)
    t = math.radians(angle)
    u = (xs - cx) * math.cos(t) + (ys - cy) * math.sin(t)
    v = -(xs - cx) * math.sin(t) + (ys - cy) * math.cos(t)
    return ((u / a) ** 2 + (v / b) ** 2 <= 1).astype(np.float32)


def rect(n: int, cx: float, cy: float, w: float, h: float, angle: float = 0.0) -> np.ndarray:
    ys, xs = np.mgrid[0:n, 0:n].astype(float)
    t = math.radians(angle)
    u = (xs - cx) * math.cos(t) + (ys - cy) * math.sin(t)
    v = -(xs - cx) * math.sin(t) + (ys - cy) * math.cos(t)
    return ((np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)).astype(np.float32)


def one_hot(mask: np.ndarray) -> torch.Tensor:
    """(H, W) binary -> (1, 2, H, W) float32 [background, object]."""
    m = torch.from_numpy(mask)
    return torch.stack([1 - m, m])[None]


def test_disk_r20_accuracy() -> None:
    r, cx, cy = 20.0, 63.4, 61.7
    p = one_hot(ellipse(128, cx, cy, r, r))
    assert p.dtype == torch.float32
    assert D.size(p)[0, 1].item() == pytest.approx(math.pi * r * r, rel=0.02)
    c = D.centroid(p)[0, 1]
    assert abs(c[0].item() - cx) < 0.5 and abs(c[1].item() - cy) < 0.5
    s = D.spread(p)[0, 1]
    assert s[0].item() == pytest.approx(r / 2, rel=0.03)
    assert s[1].item() == pytest.approx(r / 2, rel=0.03)
    assert D.length(p)[0, 1].item() == pytest.approx(2 * math.pi * r, rel=0.05)


@pytest.mark.parametrize("r", [6.0, 12.0, 20.0, 35.0, 50.0])
def test_disk_perimeter_several_radii(r: float) -> None:
    p = one_hot(ellipse(128, 64.3, 63.8, r, r))
    assert D.length(p)[0, 1].item() == pytest.approx(2 * math.pi * r, rel=0.05)


@pytest.mark.parametrize("angle", [0.0, 15.0, 30.0, 45.0, 60.0])
def test_square_perimeter_any_rotation(angle: float) -> None:
    p = one_hot(rect(128, 64.0, 64.0, 40, 40, angle))
    assert D.length(p)[0, 1].item() == pytest.approx(160.0, rel=0.05)


def test_rectangle_and_ellipse_perimeter() -> None:
    p = one_hot(rect(128, 60.0, 70.0, 70, 20, 20.0))
    assert D.length(p)[0, 1].item() == pytest.approx(180.0, rel=0.05)
    a, b = 40.0, 15.0
    ramanujan = B.ellipse_descriptors(0, 0, a, b, 0)[-1]
    p = one_hot(ellipse(128, 64.0, 64.0, a, b, 35.0))
    assert D.length(p)[0, 1].item() == pytest.approx(ramanujan, rel=0.05)


def test_length_is_blind_to_a_frayed_rim_at_the_pixel_scale() -> None:
    """The documented limit of the Sobel length (``models.descriptors.length``): a disk whose
    boundary is a 6 px band of checkerboard has ten times the pixel edges of the clean disk
    and measures within 5 % of its length."""
    yy, xx = np.mgrid[0:96, 0:96]
    r = np.hypot(yy - 48, xx - 48)
    disk = (r < 20).astype(np.uint8)
    frayed = disk.copy()
    band = (r >= 17) & (r < 23)
    frayed[band] = ((yy + xx) % 2 == 0)[band]

    def edges(m: np.ndarray) -> int:
        return int((m[1:] != m[:-1]).sum() + (m[:, 1:] != m[:, :-1]).sum())

    assert edges(frayed) > 8 * edges(disk)
    clean_len = D.length(one_hot(disk))[0, 1].item()
    frayed_len = D.length(one_hot(frayed))[0, 1].item()
    assert frayed_len == pytest.approx(clean_len, rel=0.05)


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0, 100.0, 150.0])
def test_ellipse_covariance_gives_orientation(angle: float) -> None:
    a, b = 30.0, 12.0
    p = one_hot(ellipse(128, 64.0, 64.0, a, b, angle))
    xx, yy, xy = D.covariance(p)[0, 1].tolist()
    exact = B.ellipse_descriptors(64, 64, a, b, angle)
    assert xx == pytest.approx(exact[5], rel=0.03, abs=1.0)
    assert yy == pytest.approx(exact[6], rel=0.03, abs=1.0)
    assert xy == pytest.approx(exact[7], abs=0.03 * a * a / 4)
    est = math.degrees(0.5 * math.atan2(2 * xy, xx - yy))
    assert abs((est - angle + 90) % 180 - 90) < 1.0


def test_torch_matches_numpy_measure() -> None:
    mask = rect(96, 40.0, 50.0, 30, 18, 25.0)
    ref = B.measure(mask)
    got = D.all_descriptors(one_hot(mask))[0, 1].double().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_batch_and_class_vectorised() -> None:
    masks = [ellipse(64, 20 + 5 * i, 30, 8 + i, 6, 10 * i) for i in range(3)]
    p = torch.stack([one_hot(m)[0] for m in masks])  # (3, 2, 64, 64)
    batched = D.all_descriptors(p)
    for i, m in enumerate(masks):
        single = D.all_descriptors(one_hot(m))
        torch.testing.assert_close(batched[i], single[0], rtol=1e-5, atol=1e-4)


def test_3d_moments() -> None:
    z, y, x = np.mgrid[0:20, 0:32, 0:32].astype(float)
    ball = (((x - 15) ** 2 + (y - 12) ** 2 + (z - 9) ** 2) <= 64).astype(np.float32)
    m = torch.from_numpy(ball)
    p = torch.stack([1 - m, m])[None]  # (1, 2, 20, 32, 32)
    assert D.size(p)[0, 1].item() == pytest.approx(4 / 3 * math.pi * 512, rel=0.03)
    c = D.centroid(p)[0, 1].tolist()
    assert c == pytest.approx([15, 12, 9], abs=1e-3)
    s = D.spread(p)[0, 1]
    assert s.shape == (3,)
    # A ball of radius r has per-axis variance r^2 / 5.
    np.testing.assert_allclose(s.numpy(), math.sqrt(64 / 5), rtol=0.03)
    assert D.covariance(p).shape == (1, 2, 6)


def test_empty_class_finite_values_and_gradients() -> None:
    p = torch.zeros(2, 3, 16, 16)
    p[:, 0] = 1.0
    p.requires_grad_(True)
    v = D.all_descriptors(p)
    assert torch.isfinite(v).all()
    v.sum().backward()
    assert torch.isfinite(p.grad).all()


def test_gradcheck_float64() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)

    def f(x: torch.Tensor) -> torch.Tensor:
        return D.all_descriptors(torch.softmax(x, 1))

    assert torch.autograd.gradcheck(f, (logits,), eps=1e-6, atol=1e-5)

    def f3(x: torch.Tensor) -> torch.Tensor:
        return D.spread(torch.softmax(x, 1))

    x3 = torch.randn(1, 2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f3, (x3,), eps=1e-6, atol=1e-5)


def test_half_input_is_promoted() -> None:
    p = one_hot(ellipse(32, 16, 16, 6, 6)).half()
    assert D.all_descriptors(p).dtype == torch.float32


# ------------------------------------------------------------------------------ losses


def test_log_barrier_shape_and_gradients() -> None:
    z = torch.tensor([-5.0, -0.5, -0.01, 0.0, 3.0], requires_grad=True)
    t = 2.0
    out = log_barrier(z, t)
    assert torch.isfinite(out).all()
    assert out[0].item() == pytest.approx(-math.log(5.0) / t)
    # Continuous at the switch point -1/t^2 and increasing everywhere.
    thr = torch.tensor([-1 / t**2 - 1e-6, -1 / t**2 + 1e-6])
    a, b = log_barrier(thr, t).tolist()
    assert a == pytest.approx(b, abs=1e-4)
    out.sum().backward()
    assert torch.isfinite(z.grad).all() and (z.grad > 0).all()
    assert z.grad[-1].item() == pytest.approx(t)
    assert quadratic_penalty(torch.tensor([-1.0, 0.0, 2.0])).tolist() == [0.0, 0.0, 4.0]


def test_log_barrier_takes_one_t_per_constraint() -> None:
    z = torch.linspace(-5.0, 3.0, 41)
    for t in (0.5, 1.0, 3.0):
        assert torch.allclose(log_barrier(z, torch.full_like(z, t)), log_barrier(z, t), atol=1e-5)


def test_narrow_interval_t_removes_the_dead_zone_of_a_narrow_interval() -> None:
    # An interval 0.5 wide at t 1: each end's linear branch reaches 1 into it, so the two
    # slopes cancel on [-0.5, 1.0] and a value 0.4 below the interval feels no pull.
    lo, hi = torch.zeros(3), torch.full((3,), 0.5)
    two_sided = torch.tensor([True, True, False])
    t_of = narrow_interval_t(1.0, lo, hi, two_sided)
    assert t_of.tolist() == pytest.approx([2.0, 2.0, 1.0])
    wide = narrow_interval_t(1.0, lo, torch.full((3,), 8.0), two_sided)
    assert wide.tolist() == [1.0, 1.0, 1.0]  # wide enough: t unchanged

    def pull(t: float | torch.Tensor) -> list[float]:
        v = torch.tensor([-0.4, 0.25, 0.9], requires_grad=True)
        (log_barrier(lo - v, t) + log_barrier(v - hi, t)).sum().backward()
        assert v.grad is not None
        return v.grad.tolist()

    below, mid, above = pull(1.0)
    assert below == pytest.approx(0.0, abs=1e-6) and above == pytest.approx(0.0, abs=1e-6)
    t2 = torch.full((3,), 2.0)
    below, mid, above = pull(t2)
    assert below < -1.0 and above > 1.0 and mid == pytest.approx(0.0, abs=1e-6)


def test_constraint_loss_narrow_t_changes_only_narrow_intervals() -> None:
    # A structure of about 60 reference px^2: its +-10 % size interval is about 0.8 reference
    # px wide in length units (narrow, below 2 / t^2 = 2); centroid and spread (+-20 px) are wide.
    m = ellipse(128, 60, 64, 3, 2, 20)
    lo, hi = _bounds_for([m], B.PAPER_MARGINS)
    p = one_hot(np.roll(m, 3, axis=1))
    _plain, terms = constraint_loss(p, lo, hi, t=1.0, units="length")
    narrow, terms_n = constraint_loss(p, lo, hi, t=1.0, units="length", narrow_t=True)
    assert terms_n["centroid"].item() == pytest.approx(terms["centroid"].item())
    assert terms_n["spread"].item() == pytest.approx(terms["spread"].item())
    assert terms_n["size"].item() != pytest.approx(terms["size"].item())
    assert torch.isfinite(narrow)


def _bounds_for(masks: list[np.ndarray], margins: dict) -> tuple[torch.Tensor, torch.Tensor]:
    los, his = [], []
    for m in masks:
        lo, hi = B.stack(B.from_mask(m.astype(np.uint8), 2, margins))
        los.append(lo)
        his.append(hi)
    return torch.from_numpy(np.stack(los)), torch.from_numpy(np.stack(his))


def test_quadratic_loss_zero_inside_positive_outside() -> None:
    m = ellipse(64, 30, 34, 12, 9, 20)
    lo, hi = _bounds_for([m], {**B.PAPER_MARGINS, "centroid": 3.0, "covariance": 0.1})
    p = one_hot(m)
    total, _terms = constraint_loss(p, lo, hi, kind="quadratic")
    assert total.item() == 0.0
    shifted = one_hot(np.roll(m, 10, axis=1))
    total2, terms2 = constraint_loss(shifted, lo, hi, kind="quadratic")
    assert total2.item() > 0 and terms2["centroid"].item() > 0
    assert terms2["size"].item() == 0.0 and terms2["covariance"].item() == 0.0


def test_loss_independent_of_batch_and_image_size() -> None:
    m64 = ellipse(64, 30, 34, 12, 9, 20)
    wrong64 = ellipse(64, 36, 30, 10, 9, 20)
    margins = {"size": 0.05, "centroid": 2.0, "spread": 1.0}
    lo, hi = _bounds_for([m64], margins)
    wrong = one_hot(wrong64)
    one, _ = constraint_loss(wrong, lo, hi, t=3.0)
    assert one.item() > 0
    four, _ = constraint_loss(
        wrong.repeat(4, 1, 1, 1), lo.repeat(4, 1, 1), hi.repeat(4, 1, 1), t=3.0
    )
    assert four.item() == pytest.approx(one.item(), rel=1e-5)
    # The same scene on a 2x finer grid (every pixel -> 2x2) gives the same loss.
    up = np.ones((2, 2), np.float32)
    lo2, hi2 = _bounds_for([np.kron(m64, up)], {"size": 0.05, "centroid": 4.0, "spread": 2.0})
    big, _ = constraint_loss(one_hot(np.kron(wrong64, up)), lo2, hi2, t=3.0)
    assert big.item() == pytest.approx(one.item(), rel=1e-3)


def test_length_units_weigh_size_errors_like_the_boundary_shift_they_cause() -> None:
    truth = ellipse(64, 32, 32, 12, 12)
    lo, hi = _bounds_for([truth], {"size": 0.0, "centroid": 0.0})
    too_big = one_hot(ellipse(64, 32, 32, 13.2, 13.2))  # radius +10 %: area +21 %
    moved = one_hot(ellipse(64, 44, 32, 12, 12))  # centre moved by the whole radius
    for units in ("paper", "length"):
        _, zero = constraint_loss(one_hot(truth), lo, hi, kind="quadratic", units=units)
        assert zero["size"].item() == pytest.approx(0.0, abs=1e-6)
    _, paper_big = constraint_loss(too_big, lo, hi, kind="quadratic")
    _, paper_moved = constraint_loss(moved, lo, hi, kind="quadratic")
    _, len_big = constraint_loss(too_big, lo, hi, kind="quadratic", units="length")
    _, len_moved = constraint_loss(moved, lo, hi, kind="quadratic", units="length")
    # Paper units: the small size error costs more than moving the structure off itself.
    assert paper_big["size"].item() > paper_moved["centroid"].item()
    # Length units: the size error now costs less than the large centroid error.
    assert len_big["size"].item() < len_moved["centroid"].item()
    with pytest.raises(ValueError, match="units"):
        constraint_loss(moved, lo, hi, units="mm")


def test_absent_class_pushes_size_down() -> None:
    logits = torch.zeros(1, 2, 16, 16, requires_grad=True)
    lo, hi = B.stack([None, B.ClassBounds.absent()])
    total, _ = constraint_loss(
        torch.softmax(logits, 1), torch.from_numpy(lo)[None], torch.from_numpy(hi)[None], t=5.0
    )
    total.backward()
    # Gradient descent lowers the absent class's logits everywhere.
    assert (logits.grad[0, 1] > 0).all()


def test_unconstrained_rows_give_zero_and_open_ends_are_safe() -> None:
    p = torch.softmax(torch.randn(2, 3, 16, 16, requires_grad=True), 1)
    lo = torch.full((2, 3, 9), -math.inf)
    hi = torch.full((2, 3, 9), math.inf)
    total, terms = constraint_loss(p, lo, hi, t=5.0)
    assert total.item() == 0.0 and all(v.item() == 0.0 for v in terms.values())
    with pytest.raises(ValueError, match="bogus"):
        constraint_loss(p, lo, hi, weights={"bogus": 1.0})


def test_unconstrained_batch_skips_the_moments(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.losses as L

    def boom(*_a: object, **_k: object) -> torch.Tensor:
        raise AssertionError("descriptors computed for a batch without bounds")

    monkeypatch.setattr(L, "all_descriptors", boom)
    logits = torch.randn(2, 3, 16, 16, requires_grad=True)
    lo, hi = torch.full((2, 3, 9), -math.inf), torch.full((2, 3, 9), math.inf)
    total, terms = L.constraint_loss(torch.softmax(logits, 1), lo, hi, t=5.0)
    total.backward()  # still part of the graph, so a full-supervision step can add it
    assert total.item() == 0.0 and set(terms) == set(L.TERMS)
    assert float(logits.grad.abs().sum()) == 0.0


def test_masked_cross_entropy() -> None:
    logits = torch.randn(3, 2, 8, 8, requires_grad=True)
    target = torch.randint(0, 2, (3, 8, 8))
    none = masked_cross_entropy(logits, target, torch.tensor([False, False, False]))
    assert none.item() == 0.0
    some = masked_cross_entropy(logits, target, torch.tensor([True, False, False]))
    only = torch.nn.functional.cross_entropy(logits[:1], target[:1])
    assert some.item() == pytest.approx(only.item(), rel=1e-5)
    some.backward()
    assert logits.grad[1:].abs().sum().item() == 0.0


def test_violation_share_counts_broken_bounds_per_descriptor() -> None:
    from models.losses import violation_share

    probs = torch.zeros(1, 2, 20, 20)
    probs[0, 1, 5:15, 5:15] = 1.0  # a 10 x 10 square: area 100, centroid (9.5, 9.5)
    probs[0, 0] = 1.0 - probs[0, 1]
    inf = float("inf")
    lo = torch.full((1, 2, 9), -inf)
    hi = torch.full((1, 2, 9), inf)
    lo[0, 1, 0], hi[0, 1, 0] = 120.0, 200.0  # size: broken (100 < 120)
    lo[0, 1, 1], hi[0, 1, 1] = 8.0, 11.0  # centroid x: met
    lo[0, 1, 2], hi[0, 1, 2] = 0.0, 5.0  # centroid y: broken
    share = violation_share(probs, lo, hi)
    assert share == {"size": 1.0, "centroid": 0.5}
    assert violation_share(probs, torch.full_like(lo, -inf), torch.full_like(hi, inf)) == {}


def test_scheduled_weights_move_to_their_end_over_70_percent_of_the_steps() -> None:
    from models.losses import scheduled_weights

    start, end = {"length": 0.1, "size": 2.0}, {"length": 1.0, "centroid": 0.5}
    assert scheduled_weights(start, end, 0, 100) == {"length": 0.1, "size": 2.0, "centroid": 1.0}
    half = scheduled_weights(start, end, 35, 100)  # half of the ramp's 70 steps
    assert half["length"] == pytest.approx(0.55) and half["centroid"] == pytest.approx(0.75)
    assert half["size"] == 2.0  # not scheduled: its start weight throughout
    for step in (70, 100, 150):
        assert scheduled_weights(start, end, step, 100) == {
            "length": 1.0,
            "size": 2.0,
            "centroid": 0.5,
        }
    assert scheduled_weights(start, {}, 50, 100) == start


def test_upper_only_drops_lower_bounds_of_the_named_descriptors() -> None:
    """``upper_only``: the named descriptors' lower bounds are left out, as if open (a map
    far below its length lower bound pays only the upper bound's barrier); the other
    descriptors keep both ends."""
    probs = torch.zeros(1, 2, 32, 32)
    probs[:, 1, 12:20, 12:20] = 1.0  # an 8 x 8 square: area 64 px^2, contour about 32 px
    probs[:, 0] = 1.0 - probs[:, 1]

    def loss(cb: B.ClassBounds, **kw: object) -> dict[str, torch.Tensor]:
        lo, hi = (torch.as_tensor(a)[None] for a in B.stack([B.ClassBounds(), cb]))
        return constraint_loss(probs, lo, hi, t=5.0, **kw)[1]  # type: ignore[arg-type]

    below = B.ClassBounds(present=True).with_interval("length", 60.0, 80.0)
    below = below.with_interval("size", 100.0, 200.0)
    opened = below.with_interval("length", -math.inf, 80.0)
    both, upper = loss(below), loss(below, upper_only=["length"])
    assert upper["length"] == pytest.approx(float(loss(opened)["length"]))
    assert both["length"] > upper["length"] + 0.01  # the lower bound's pull is gone
    assert upper["size"] == pytest.approx(float(both["size"]))  # not named: both ends
    above = B.ClassBounds(present=True).with_interval("length", 5.0, 10.0)
    upper = loss(above, upper_only=["length"])["length"]
    assert upper > 0.01  # above its upper bound: still pulled down
    assert upper == pytest.approx(
        float(loss(above.with_interval("length", -math.inf, 10.0))["length"])
    )
    with pytest.raises(ValueError, match="upper_only"):
        loss(above, upper_only=["colour"])


def test_hard_length_measures_the_argmax_and_passes_its_gradient_to_the_soft_map() -> None:
    """``hard``: the length term is the hard map's (a ragged argmax is long where the soft map
    is short), the other terms stay the soft map's, and the gradient reaches the logits."""
    gen = torch.Generator().manual_seed(0)
    logits = 0.3 * torch.randn(1, 2, 32, 32, generator=gen)
    logits[:, 1, 10:20, 10:20] += 2.0  # a square whose edge the noise makes ragged
    logits.requires_grad_()
    probs = torch.softmax(logits, 1)
    hard = torch.nn.functional.one_hot(probs.argmax(1), 2).permute(0, 3, 1, 2).float()
    soft_len, hard_len = float(D.length(probs)[0, 1]), float(D.length(hard)[0, 1])
    assert hard_len > 2 * soft_len
    mixed = D.all_descriptors(probs, length_of=hard)
    assert float(mixed[0, 1, -1]) == pytest.approx(hard_len)
    assert torch.equal(mixed[..., :-1], D.all_descriptors(probs)[..., :-1])
    cb = B.ClassBounds(present=True).with_interval("length", 5.0, 10.0)
    cb = cb.with_interval("size", 50.0, 60.0)
    lo, hi = (torch.as_tensor(a)[None] for a in B.stack([B.ClassBounds(), cb]))
    total, terms = constraint_loss(probs, lo, hi, t=5.0, hard=hard)
    _, soft_terms = constraint_loss(probs, lo, hi, t=5.0)
    assert terms["length"] > 2 * soft_terms["length"]
    assert terms["size"] == pytest.approx(float(soft_terms["size"]))
    (grad,) = torch.autograd.grad(total, logits)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="hard map"):
        constraint_loss(probs, lo, hi, hard=hard[:, :1])
