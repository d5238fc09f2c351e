"""Augmentations and grid resizing keep a mask's true descriptors inside its transformed bounds."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models import bounds as B
from models.transforms import (
    AugmentConfig,
    augment,
    dihedral,
    dihedral_bounds,
    resize_bounds,
    resize_mask,
    rotate,
    rotate_bounds,
    zoom_in_limit,
)

MARGINS = {"size": 0.12, "centroid": 1.5, "spread": 1.0, "covariance": 0.15, "length": 0.15}


def _label_map(seed: int, h: int, w: int) -> np.ndarray:
    """Two random, disjoint ellipses (labels 1 left, 2 right) well inside an (h, w) image.
    Semi-axes of 7 px or more on 56 px and larger images: nearest-neighbour resampling moves
    a boundary by about half a pixel, beyond the tests' 3 % on thinner shapes (5 px: 1 draw in
    1000 failed)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    out = np.zeros((h, w), np.uint8)
    for k in (1, 2):
        a, b = rng.uniform(min(7.0, min(h, w) / 8), min(h, w) / 6, size=2)
        cx = w * (0.3 if k == 1 else 0.7) + rng.uniform(-2, 2)
        cy = rng.uniform(h * 0.3, h * 0.7)
        t = rng.uniform(0, np.pi)
        u = (xs - cx) * np.cos(t) + (ys - cy) * np.sin(t)
        v = -(xs - cx) * np.sin(t) + (ys - cy) * np.cos(t)
        out[(u / a) ** 2 + (v / b) ** 2 <= 1] = k
    return out


def _inside(mask: np.ndarray, lo: torch.Tensor, hi: torch.Tensor, slack: float = 0.0) -> None:
    for k in (1, 2):
        d = B.measure(mask == k)
        if d[0] == 0:
            continue
        for i, key in enumerate(B.COMPONENTS):
            a, b = float(lo[k, i]), float(hi[k, i])
            ref = np.sqrt(d[5] * d[6]) if key == "cov_xy" else abs(d[i])
            tol = slack * max(ref, 1.0) + (0.3 if slack else 0.0)
            assert a - tol <= d[i] <= b + tol, (k, key, a, d[i], b)


def _bounds(mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = B.stack(B.from_mask(mask, 3, MARGINS))
    return torch.from_numpy(lo), torch.from_numpy(hi)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), transpose=st.booleans(), fx=st.booleans(), fy=st.booleans())
def test_dihedral_exact(seed: int, transpose: bool, fx: bool, fy: bool) -> None:
    mask = _label_map(seed, 40, 52)
    lo, hi = _bounds(mask)
    t_mask = dihedral(torch.from_numpy(mask), transpose=transpose, flip_x=fx, flip_y=fy).numpy()
    t_lo, t_hi = dihedral_bounds(lo, hi, (40, 52), transpose=transpose, flip_x=fx, flip_y=fy)
    # Exact: the transformed bounds equal the bounds of the transformed mask (length up to the
    # Sobel kernel's symmetry, which is exact for flips and transposes too).
    ref_lo, ref_hi = _bounds(np.ascontiguousarray(t_mask))
    torch.testing.assert_close(t_lo, ref_lo, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(t_hi, ref_hi, rtol=1e-4, atol=1e-3)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), out_h=st.integers(48, 96), out_w=st.integers(48, 96))
def test_resize_keeps_truth_inside(seed: int, out_h: int, out_w: int) -> None:
    mask = _label_map(seed, 64, 80)
    lo, hi = _bounds(mask)
    r_lo, r_hi = resize_bounds(lo, hi, (64, 80), (out_h, out_w))
    r_mask = resize_mask(torch.from_numpy(mask)[None].long(), (out_h, out_w))[0].numpy()
    # Resampling a pixelated shape moves its descriptors a little: allow 3 % beyond the margins.
    _inside(r_mask, r_lo, r_hi, slack=0.03)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), aug_seed=st.integers(0, 10_000))
def test_augment_keeps_truth_inside(seed: int, aug_seed: int) -> None:
    mask = _label_map(seed, 64, 64)
    lo, hi = _bounds(mask)
    image = torch.from_numpy(mask.astype(np.float32) / 2)[None]
    cfg = AugmentConfig(p_flip=0.5, p_transpose=0.5, p_zoom=1.0, zoom_range=(0.8, 1.0))
    img2, mask2, lo2, hi2 = augment(
        image, torch.from_numpy(mask).long(), lo, hi, np.random.default_rng(aug_seed), cfg
    )
    assert img2.shape == image.shape and mask2.shape == (64, 64)
    _inside(mask2.numpy().astype(np.uint8), lo2, hi2, slack=0.03)
    # Absent classes stay absent, open ends stay open.
    assert torch.isinf(lo2[0, 1]) and torch.isinf(hi2[0, 1])


def _turned(mask: np.ndarray, degrees: float) -> np.ndarray:
    t = rotate(torch.from_numpy(mask)[None, None].float(), np.radians(degrees), nearest=True)
    return t[0, 0].numpy().astype(np.uint8)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), degrees=st.floats(-180, 180))
def test_rotation_keeps_truth_inside(seed: int, degrees: float) -> None:
    # The ellipses lie off centre (left and right): a turn the wrong way, or bounds turned about
    # another point, moves their centroids far outside the slack.
    mask = _label_map(seed, 64, 64)
    lo, hi = _bounds(mask)
    r_lo, r_hi = rotate_bounds(lo, hi, (64, 64), np.radians(degrees))
    _inside(_turned(mask, degrees), r_lo, r_hi, slack=0.03)
    # The background keeps only its size; absent rows and open ends stay open.
    assert torch.equal(r_lo[0, 0], lo[0, 0]) and torch.isinf(r_lo[0, 1:]).all()
    assert torch.isinf(r_hi[0, 1:]).all()


def test_rotation_adds_no_constraint_and_widens_boxes_only_as_needed() -> None:
    mask = _label_map(7, 64, 64)
    lo, hi = _bounds(mask)
    lo[1, 5:8], hi[1, 5:8] = -np.inf, np.inf  # the paper's bounds: spreads, no covariance
    r_lo, r_hi = rotate_bounds(lo, hi, (64, 64), np.radians(90))
    assert torch.isinf(r_lo[1, 5:8]).all() and torch.isinf(r_hi[1, 5:8]).all()
    # A quarter turn swaps the axes exactly: x' = -(y - c) + c, y' = x (px, c = 31.5).
    torch.testing.assert_close(r_lo[1, 1], 63.0 - hi[1, 2])
    torch.testing.assert_close(r_lo[1, 2], lo[1, 1])
    torch.testing.assert_close(r_lo[1, 3], lo[1, 4], rtol=1e-4, atol=1e-4)
    assert torch.equal(r_lo[1, 0], lo[1, 0]) and torch.equal(r_hi[1, 0], hi[1, 0])
    # An eighth of a turn: a centroid box of half-width m becomes one of m (cos + sin).
    e_lo, e_hi = rotate_bounds(lo, hi, (64, 64), np.radians(45))
    width = float(hi[1, 1] - lo[1, 1])
    assert np.isclose(float(e_hi[1, 1] - e_lo[1, 1]), width * np.sqrt(2), rtol=1e-4)
    try:
        rotate(torch.zeros(1, 1, 8, 10), 0.3, nearest=False)
    except ValueError as e:
        assert "square" in str(e)
    else:
        raise AssertionError("a non-square image was turned")


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), aug_seed=st.integers(0, 10_000))
def test_augment_with_rotation_keeps_truth_inside(seed: int, aug_seed: int) -> None:
    mask = _label_map(seed, 64, 64)
    lo, hi = _bounds(mask)
    image = torch.from_numpy(mask.astype(np.float32) / 2)[None]
    cfg = AugmentConfig(p_flip=0.0, p_transpose=0.0, p_zoom=0.5, p_rotate=1.0, rotate_max=30)
    img2, mask2, lo2, hi2 = augment(
        image, torch.from_numpy(mask).long(), lo, hi, np.random.default_rng(aug_seed), cfg
    )
    labels = mask2.numpy().astype(np.uint8)
    _inside(labels, lo2, hi2, slack=0.03)
    # The image turned with its labels: the brightest pixels are still label 2's.
    assert float(img2[0][mask2 == 2].mean()) > float(img2[0][mask2 == 1].mean()) + 0.3


def _centred_map(seed: int) -> np.ndarray:
    """``_label_map``'s two ellipses in the middle of a 96 px grid (16 px of background on
    every side): every training zoom up to 1.25 keeps them inside its inscribed disc."""
    return np.pad(_label_map(seed, 64, 64), 16)


def test_zoom_in_limit_keeps_the_possible_pixels_inside_the_inscribed_disc() -> None:
    possible = torch.zeros(64, 64, dtype=torch.bool)
    assert zoom_in_limit(possible) == float("inf")  # nothing can be foreground: any zoom
    possible[24:40, 24:40] = True  # 16 px square about the centre (31.5): far corners 8 px out
    assert np.isclose(zoom_in_limit(possible), 32.0 / np.hypot(8.0, 8.0))
    possible[0, 32] = True  # a pixel at the border: already at the disc's edge
    assert zoom_in_limit(possible) <= 32.0 / 32.0
    possible[0, 0] = True  # a corner lies outside the disc: no zoom in at all
    assert zoom_in_limit(possible) < 0.72


def test_zoom_in_goes_only_as_far_as_the_sample_allows() -> None:
    mask = _centred_map(5)
    lo, hi = _bounds(mask)
    image = torch.from_numpy(mask.astype(np.float32) / 2)[None]
    cfg = AugmentConfig(p_flip=0.0, p_transpose=0.0, p_zoom=1.0, zoom_range=(1.25, 1.25))
    size = B.COMPONENTS.index("size")
    before = float((mask > 0).sum())
    for limit, scale in ((float("inf"), 1.25), (1.1, 1.1), (1.0, 1.0), (0.7, 1.0)):
        rng = np.random.default_rng(0)
        _img, m2, lo2, hi2 = augment(image, torch.from_numpy(mask).long(), lo, hi, rng, cfg, limit)
        after = float((m2 > 0).sum())
        assert abs(after / before - scale**2) < 0.03 * scale**2, (limit, after / before)
        torch.testing.assert_close(lo2[1:, size], lo[1:, size] * scale**2)
        if scale > 1:  # the background is cut at the border by an unknown area: open
            assert torch.isinf(lo2[0]).all() and torch.isinf(hi2[0]).all()
        _inside(m2.numpy().astype(np.uint8), lo2, hi2, slack=0.03)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), aug_seed=st.integers(0, 10_000))
def test_augment_zooming_in_and_turning_keeps_truth_inside(seed: int, aug_seed: int) -> None:
    mask = _centred_map(seed)
    lo, hi = _bounds(mask)
    image = torch.from_numpy(mask.astype(np.float32) / 2)[None]
    limit = zoom_in_limit(torch.from_numpy(mask > 0))
    assert limit > 1.25
    cfg = AugmentConfig(
        p_flip=0.5, p_transpose=0.5, p_zoom=1.0, zoom_range=(0.8, 1.25), p_rotate=0.5
    )
    rng = np.random.default_rng(aug_seed)
    _img, m2, lo2, hi2 = augment(image, torch.from_numpy(mask).long(), lo, hi, rng, cfg, limit)
    _inside(m2.numpy().astype(np.uint8), lo2, hi2, slack=0.03)


def test_batches_zoom_in_only_where_the_sure_maps_rule_the_border_out() -> None:
    from models.regions import SURE_IN, SURE_OUT, UNKNOWN
    from models.samples import TrainSample, batch, prepare

    mask = _centred_map(11)
    lo, hi = B.stack(B.from_mask(mask, 3, MARGINS))
    fitted = np.stack([np.where(mask == k, SURE_IN, SURE_OUT) for k in range(3)]).astype(np.int8)
    unhinted = fitted.copy()
    unhinted[2] = UNKNOWN  # class 2 could be anywhere: its shape may be cut by a zoom in
    image = mask[None].astype(np.float32) / 2
    cfg = AugmentConfig(p_flip=0.0, p_transpose=0.0, p_zoom=1.0, zoom_range=(1.25, 1.25))
    grown = []
    for sure in (fitted, unhinted):
        data = prepare([TrainSample(image, lo, hi, sure=sure)], 3, 96)
        _img, _masks, sure2, _lo, _hi = batch(data, np.array([0]), np.random.default_rng(0), cfg)
        assert sure2 is not None
        grown.append(float((sure2[0, 1] == SURE_IN).sum()) / float((mask == 1).sum()))
    assert abs(grown[0] - 1.25**2) < 0.05 and abs(grown[1] - 1.0) < 0.01


def test_percentile_normalisation_ignores_a_few_bright_pixels() -> None:
    from models.transforms import PERCENTILES, normalise_image

    rng = np.random.default_rng(0)
    tissue = torch.from_numpy(rng.uniform(10, 20, (1, 1, 60, 50)).astype(np.float32))
    flare = tissue.clone()
    flare[0, 0, :2, :5] = 1000.0  # 10 px of 3000: below the top percentile
    plain, pct = normalise_image(tissue, "percentile"), normalise_image(flare, "percentile")
    # The tissue keeps its scale whatever the flare; min-max squeezes it towards 0.
    assert torch.allclose(plain[..., 2:, :], pct[..., 2:, :], atol=0.02)
    assert normalise_image(flare)[..., 2:, :].max() < 0.02
    assert pct.min() == 0.0 and pct.max() == 1.0  # clipped beyond the percentiles
    assert float((pct == 0).float().mean()) <= PERCENTILES[0] / 100 + 0.01
    # Each image of a batch on its own; constant images become 0 under both methods.
    batch = torch.cat([flare, torch.full_like(flare, 7.0)])
    out = normalise_image(batch, "percentile")
    assert torch.equal(out[0], pct[0]) and out[1].abs().max() == 0
    assert normalise_image(batch)[1].abs().max() == 0
    # Mostly constant with a few outliers: the percentiles coincide, min-max takes over.
    spots = torch.zeros(1, 1, 20, 20)
    spots[0, 0, 0, 0] = 5.0
    assert normalise_image(spots, "percentile")[0, 0, 0, 0] == 1.0
    try:
        normalise_image(tissue, "zscore")
    except ValueError as e:
        assert "zscore" in str(e)
    else:
        raise AssertionError("an unknown normalisation was accepted")


def test_auto_normalisation_by_channels() -> None:
    from models.transforms import resolve_normalisation

    assert resolve_normalisation("auto", 3) == "percentile"
    assert resolve_normalisation("auto", 1) == "minmax"
    assert resolve_normalisation("minmax", 3) == "minmax"
    assert resolve_normalisation("percentile", 1) == "percentile"


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), aug_seed=st.integers(0, 10_000))
def test_remeasured_bounds_follow_the_turned_reference_exactly(seed: int, aug_seed: int) -> None:
    """The paper's augmentation: bounds measured around a mask are re-measured on the turned
    and zoomed mask (margins carried over), not widened as ``rotate_bounds`` must."""
    from models.samples import TrainSample, batch, prepare

    mask = _label_map(seed, 64, 64)
    both = (mask > 0).astype(np.uint8)  # a union row: classes 1 and 2 summed
    lo, hi = B.stack([*B.from_mask(mask, 3, MARGINS), B.from_mask(both, 2, MARGINS)[1]])
    sample = TrainSample(mask[None].astype(np.float32) / 2, lo, hi, mask=mask, reference=mask)
    data = prepare([sample], 3, 64, num_unions=1, keep_references=True)
    cfg = AugmentConfig(p_flip=0.0, p_transpose=0.0, p_zoom=0.5, p_rotate=1.0, rotate_max=30)
    rng = np.random.default_rng(aug_seed)
    union = torch.tensor([[0.0, 1.0, 1.0]])
    _img, turned, _sure, lo2, hi2 = batch(data, np.array([0]), rng, cfg, union)
    labels = turned[0].numpy().astype(np.uint8)
    expected_lo, expected_hi = B.stack(
        [
            *B.from_mask(labels, 3, MARGINS),
            B.from_mask((labels > 0).astype(np.uint8), 2, MARGINS)[1],
        ]
    )
    for k in (1, 2, 3):
        for i, key in enumerate(B.COMPONENTS):
            if key == "cov_xy":  # its margin scales with sqrt(xx yy): compared via the truth
                continue
            scale = max(abs(float(expected_hi[k, i])), 1.0)
            assert abs(float(lo2[0, k, i]) - expected_lo[k, i]) <= 0.05 * scale, (k, key)
            assert abs(float(hi2[0, k, i]) - expected_hi[k, i]) <= 0.05 * scale, (k, key)
    _inside(labels, lo2[0], hi2[0], slack=0.01)
    # Without the flag the same sample keeps no reference and its bounds are turned by interval
    # arithmetic, never narrower (centroid boxes; turns only, as zoom shrinks them).
    sample = TrainSample(sample.image, lo[:3], hi[:3], mask=mask, reference=mask)
    data = prepare([sample], 3, 64, keep_references=True)
    plain = prepare([sample], 3, 64)
    assert plain.reference is None
    turn = AugmentConfig(p_flip=0.0, p_transpose=0.0, p_zoom=0.0, p_rotate=1.0, rotate_max=30)
    cx = B.COMPONENTS.index("centroid_x")
    widths = []
    for d in (data, plain):
        out = batch(d, np.array([0]), np.random.default_rng(aug_seed), turn)
        widths.append(float((out[4][0, 1:, cx] - out[3][0, 1:, cx]).sum()))
    assert widths[1] >= widths[0] - 1e-4
    assert abs(widths[0] - 4 * MARGINS["centroid"]) < 1e-3  # two classes' boxes, exact


def test_remeasure_bounds_keeps_open_ends_and_marks_emptied_rows_absent() -> None:
    from models.transforms import remeasure_bounds

    mask = _label_map(3, 64, 64)
    lo, hi = (torch.from_numpy(a) for a in B.stack(B.from_mask(mask, 3, MARGINS)))
    before = torch.from_numpy(np.stack([B.measure(mask == k) for k in range(3)])).float()
    # Unchanged reference: unchanged bounds (the background row, open, stays open).
    same_lo, same_hi = remeasure_bounds(lo, hi, before, before)
    assert torch.allclose(same_lo, lo, equal_nan=True) and torch.allclose(same_hi, hi)
    assert torch.isinf(same_lo[0]).all() and torch.isinf(same_hi[0]).all()
    # Shifted by 5 px and twice the area: centroids move, sizes double, margins carried.
    after = before.clone()
    size, cx = B.COMPONENTS.index("size"), B.COMPONENTS.index("centroid_x")
    after[1:, cx] += 5
    after[1:, size] *= 2
    new_lo, new_hi = remeasure_bounds(lo, hi, before, after)
    assert torch.allclose(new_lo[1:, cx], lo[1:, cx] + 5) and torch.allclose(
        new_hi[1:, cx], hi[1:, cx] + 5
    )
    assert torch.allclose(new_lo[1:, size], lo[1:, size] * 2, rtol=1e-5)
    # A class the transform removed becomes absent; one absent before keeps its bounds.
    after[2] = 0
    before[1, size] = 0
    new_lo, new_hi = remeasure_bounds(lo, hi, before, after)
    length = B.COMPONENTS.index("length")
    assert new_lo[2, size] == new_hi[2, size] == 0 and new_hi[2, length] == 0
    assert torch.isinf(new_hi[2, cx]) and torch.isinf(new_lo[2, cx])
    assert torch.equal(new_lo[1], lo[1]) and torch.equal(new_hi[1], hi[1])
