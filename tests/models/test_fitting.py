"""Drawn hints fitted to the image (models.fitting): GrabCut in the band a drawing is unsure of."""

from __future__ import annotations

import numpy as np

import models.fitting as fitting
from models.fitting import disk, fitted_shapes, slice_sure_map, to_uint8_bgr
from models.metrics import dice
from models.refine import hint_vote, refine_labels
from models.regions import SURE_IN, SURE_OUT, UNKNOWN, drawn_mask, ellipse_mask, sure_map

SHAPE = (96, 96)


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A bright, non-elliptical structure (a disc with a bump) on a noisy dark background:
    ``image (1, H, W)`` float32 in [0, 1] and its ``mask (H, W)`` bool."""
    rng = np.random.default_rng(seed)
    mask = ellipse_mask(SHAPE, (48.0, 48.0, 20.0, 20.0, 0.0))
    mask |= ellipse_mask(SHAPE, (66.0, 48.0, 8.0, 8.0, 0.0))
    image = np.where(mask, 0.75, 0.25) + rng.normal(0.0, 0.05, SHAPE)
    return image[None].astype(np.float32), mask


# The annotator's rough outline: off-centre and a little too small, within tolerance 0.2.
HINT = {"ellipse": {"cx": 46.0, "cy": 50.0, "a": 22.0, "b": 18.0, "angle": 0.0}, "tolerance": 0.2}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(dice(a.astype(np.uint8), b.astype(np.uint8), 2)[1])


def test_a_fitted_shape_follows_the_image_closer_than_the_drawing() -> None:
    image, mask = _scene()
    fitted = fitted_shapes(image, [[], [HINT]])
    drawn = drawn_mask(HINT, SHAPE)
    assert drawn is not None and set(fitted) == {1}
    assert _dice(drawn, mask) < 0.9
    assert _dice(fitted[1], mask) > _dice(drawn, mask) + 0.05
    # GrabCut's fixed labels hold: the drawing's sure core stays in, its sure outside out.
    sure = sure_map([[], [HINT]], SHAPE)
    assert sure is not None
    assert fitted[1][sure[1] == SURE_IN].all() and not fitted[1][sure[1] == SURE_OUT].any()
    # Deterministic: the same shapes on every run (a job and its prediction must agree).
    assert np.array_equal(fitted_shapes(image, [[], [HINT]])[1], fitted[1])


def test_nothing_to_fit_leaves_the_drawings() -> None:
    image, _ = _scene()
    flat = np.full_like(image, 0.5)
    # A flat image: nothing in it to cut along; whatever GrabCut returns must still meet the
    # hint's bounds, else the drawing stands (no entry).
    out = fitted_shapes(flat, [[], [HINT]])
    assert set(out) <= {1}
    if out:
        assert _dice(out[1], drawn_mask(HINT, SHAPE)) > 0.8
    # Absent classes and hints without a drawn shape are never fitted.
    assert fitted_shapes(image, [[], [{"present": False}]]) == {}
    assert fitted_shapes(image, [[], [{"size": [100, 2000]}]]) == {}


def test_a_fit_that_breaks_the_hints_bounds_is_refused() -> None:
    image, _ = _scene()
    # The image's structure is far larger than this drawing and its size interval allow: the
    # cut fills the grown drawing (about 450 px^2 > 260), so the drawing stands.
    tight = {"ellipse": {"cx": 48.0, "cy": 48.0, "a": 8.0, "b": 8.0, "angle": 0.0}}
    hint = tight | {"tolerance": 0.5, "size": [150, 260]}
    assert fitted_shapes(image, [[], [hint]]) == {}


def test_two_classes_never_claim_one_pixel() -> None:
    image, _ = _scene()
    image = image.copy()
    image[0][ellipse_mask(SHAPE, (20.0, 20.0, 10.0, 10.0, 0.0))] = 1.0
    second = {"ellipse": {"cx": 21.0, "cy": 20.0, "a": 11.0, "b": 9.0, "angle": 0.0}}
    second["tolerance"] = 0.3  # room for the grown cut (FIT_GROW) of a crisp synthetic disc
    fitted = fitted_shapes(image, [[], [HINT], [second]])
    assert set(fitted) == {1, 2}
    assert not (fitted[1] & fitted[2]).any()


def test_fitted_shapes_fill_the_sure_maps_band_and_vote() -> None:
    image, mask = _scene()
    plain = slice_sure_map(image, [[], [HINT]], None)
    assert np.array_equal(plain, sure_map([[], [HINT]], SHAPE))
    assert np.array_equal(slice_sure_map(image, [[], [HINT]], "none"), plain)
    cut = slice_sure_map(image, [[], [HINT]], "cut")
    assert plain is not None and cut is not None
    assert (plain[1] == UNKNOWN).any() and not (cut[1] == UNKNOWN).any()
    fitted = fitted_shapes(image, [[], [HINT]])
    assert np.array_equal(cut[1] == SURE_IN, fitted[1])
    # "agree": the band is labelled only where the fitted shape and the drawing agree; where
    # they disagree the plain map's label (unknown in the band) stands.
    agree = slice_sure_map(image, [[], [HINT]], "agree")
    drawn = drawn_mask(HINT, SHAPE)
    assert agree is not None and drawn is not None
    same = fitted[1] == drawn
    assert np.array_equal(agree[1][same], cut[1][same])
    assert np.array_equal(agree[1][~same], plain[1][~same]) and (agree[1][~same] == UNKNOWN).any()
    # The hints' vote: an unsure model gets the fitted shape, not the drawing.
    proba = np.full((2, *SHAPE), 0.5, np.float32)
    q = hint_vote(proba, [[], [HINT]], fitted)
    assert q is not None and np.array_equal(q.argmax(0) == 1, fitted[1])
    out = refine_labels(proba, [[], [HINT]], 1 / 3, None, fitted)
    assert out is not None and _dice(out[0], mask) == _dice(fitted[1], mask)


def test_images_of_any_channel_count_become_three_8_bit_channels() -> None:
    rng = np.random.default_rng(1)
    for channels in (1, 2, 3, 4):
        img = rng.normal(100.0, 30.0, (channels, 20, 30)).astype(np.float32)
        out = to_uint8_bgr(img)
        assert out.shape == (20, 30, 3) and out.dtype == np.uint8
        assert out.min() == 0 and out.max() == 255  # stretched between percentiles
    assert to_uint8_bgr(np.zeros((20, 30), np.float32)).max() == 0  # flat: no division by zero


def test_the_command_line_fits_the_drawings_it_trains_from(tmp_path) -> None:
    import json

    from PIL import Image

    from models.cli import fit_sure_maps, load_hinted_samples

    image, _ = _scene()
    (tmp_path / "img").mkdir()
    Image.fromarray((image[0] * 255).clip(0, 255).astype(np.uint8)).save(tmp_path / "img/a.png")
    spec = {"classes": ["LV"], "images": {"a.png": {"LV": HINT}}}
    (tmp_path / "hints.json").write_text(json.dumps(spec))
    plain, classes, names = load_hinted_samples(tmp_path / "img", tmp_path / "hints.json")
    cut, _, _ = load_hinted_samples(tmp_path / "img", tmp_path / "hints.json", None, "cut")
    # What `train` does once the plan says to fit: the loaded samples' maps, refitted in place.
    refit = fit_sure_maps(plain, names, tmp_path / "hints.json", classes, "cut")
    assert np.array_equal(refit[0].sure, cut[0].sure) and refit[0].image is plain[0].image
    assert (plain[0].sure[1] == UNKNOWN).any() and not (cut[0].sure[1] == UNKNOWN).any()
    assert np.array_equal(
        plain[0].sure[1][plain[0].sure[1] != UNKNOWN], cut[0].sure[1][plain[0].sure[1] != UNKNOWN]
    )


def test_the_slices_own_bounds_judge_a_fit_when_given() -> None:
    from models.bounds import stack
    from models.quality import SIZE

    image, _ = _scene()
    fitted = fitted_shapes(image, [[], [HINT]])[1]
    # The bounds training takes (priors, spacing applied) can be tighter than the hint's: a
    # size cap below the fitted area refuses the fit; unconstrained rows refuse it too.
    lo, hi = stack([None, None])
    assert fitted_shapes(image, [[], [HINT]], (lo, hi)) == {}
    hi = hi.copy()
    hi[1, SIZE] = fitted.sum() - 1
    lo = lo.copy()
    lo[1, SIZE] = 1.0
    assert fitted_shapes(image, [[], [HINT]], (lo, hi)) == {}
    hi[1, SIZE] = fitted.sum() + 1
    assert np.array_equal(fitted_shapes(image, [[], [HINT]], (lo, hi))[1], fitted)
    # A second author's interval-only hint beside the drawing: "agree" still works.
    both = [[], [HINT, {"size": [100, 5000]}]]
    assert slice_sure_map(image, both, "agree") is not None


def test_disk_holds_the_pixels_within_its_radius() -> None:
    assert disk(0).tolist() == [[1]]
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(1.5).sum() == 9  # the diagonal neighbours lie sqrt(2) px away
    assert disk(2).shape == (5, 5) and disk(2).sum() == 13


def test_the_cut_grows_by_fit_grow_pixels_of_the_grabcut_grid(monkeypatch) -> None:
    """Masks are drawn along the outside of a structure's edge, GrabCut cuts through it: the
    cut is dilated by ``FIT_GROW`` px of GrabCut's grid, in the image's own px where GrabCut
    worked on a shrunken copy, and the drawing's sure outside still stays out."""
    image, _ = _scene()
    big = np.kron(image, np.ones((1, 4, 4), np.float32))  # 384 px: cut at 256 px, 1.5x
    hint = {
        "ellipse": {k: v * 4 for k, v in HINT["ellipse"].items() if k != "angle"} | {"angle": 0.0},
        "tolerance": 0.4,
    }
    monkeypatch.setattr(fitting, "FIT_SIDE", 256)
    monkeypatch.setattr(fitting, "FIT_GROW", 0.0)
    plain = fitted_shapes(big, [[], [hint]])[1]
    monkeypatch.setattr(fitting, "FIT_GROW", 2.0)
    grown = fitted_shapes(big, [[], [hint]])[1]
    assert grown[plain].all() and grown.sum() > plain.sum()
    # The added ring is about 2 px of the 256 px grid wide, i.e. 3 px of this image: its area
    # over the plain cut's perimeter (the sum of the boundary, ~2 pi r).
    ring = (grown.sum() - plain.sum()) / (2 * np.sqrt(np.pi * plain.sum()))
    assert 2.0 < ring < 4.0
    sure = sure_map([[], [hint]], big.shape[-2:])
    assert sure is not None and not grown[sure[1] == SURE_OUT].any()


def test_a_ring_is_not_cut_unless_fit_rings_and_still_holds_the_other_cuts_out(
    monkeypatch,
) -> None:
    rng = np.random.default_rng(2)
    hole = ellipse_mask(SHAPE, (48.0, 48.0, 14.0, 14.0, 0.0))
    ring = ellipse_mask(SHAPE, (48.0, 48.0, 24.0, 24.0, 0.0)) & ~hole
    image = np.where(hole, 0.9, np.where(ring, 0.5, 0.2)) + rng.normal(0.0, 0.05, SHAPE)
    image = image[None].astype(np.float32)
    ring_hint = {
        "ellipse": {"cx": 47.0, "cy": 49.0, "a": 25.0, "b": 22.0, "angle": 0.0},
        "hole": {"cx": 47.0, "cy": 49.0, "a": 13.0, "b": 12.0, "angle": 0.0},
        "tolerance": 0.2,
    }
    disc_hint = {
        "ellipse": {"cx": 47.0, "cy": 49.0, "a": 13.0, "b": 12.0, "angle": 0.0},
        "tolerance": 0.2,
    }
    per_class = [[], [ring_hint], [disc_hint]]
    monkeypatch.setattr(fitting, "FIT_GROW", 0.0)  # crisp synthetic edges: the cut is exact
    assert not fitting.FIT_RINGS
    fitted = fitted_shapes(image, per_class)
    assert set(fitted) == {2}  # the ring's drawing stands
    ring_core = sure_map(per_class, SHAPE)[1] == SURE_IN
    assert ring_core.any() and not (fitted[2] & ring_core).any()
    assert _dice(fitted[2], hole) > _dice(drawn_mask(disc_hint, SHAPE), hole)
    monkeypatch.setattr(fitting, "FIT_RINGS", True)
    both = fitted_shapes(image, per_class)
    assert set(both) == {1, 2} and _dice(both[1], ring) > 0.9


def _glare_scene() -> tuple[np.ndarray, np.ndarray]:
    """A red disc on a darker pink background, as an endoscope sees a polyp, with white specular
    spots straddling its rim and a few on the background: ``image (3, H, W)`` float32 in [0, 1]
    and the disc's ``mask (H, W)`` bool."""
    rng = np.random.default_rng(0)
    mask = ellipse_mask(SHAPE, (48.0, 48.0, 22.0, 22.0, 0.0))
    red, pink = np.array([0.8, 0.35, 0.3]), np.array([0.55, 0.3, 0.35])
    image = np.where(mask, red[:, None, None], pink[:, None, None])
    image = image + rng.normal(0.0, 0.03, (3, *SHAPE))
    for cx, cy, r in [(29, 48, 6), (67, 48, 6), (48, 29, 6), (15, 80, 5), (85, 15, 5), (80, 80, 5)]:
        image[:, ellipse_mask(SHAPE, (cx, cy, r, r, 0.0))] = 1.0
    return image.astype(np.float32), mask


def test_specular_highlights_inpainted_before_the_cut_let_it_follow_the_rim(monkeypatch) -> None:
    image, mask = _glare_scene()
    hint = {"ellipse": {"cx": 47.0, "cy": 49.0, "a": 20.0, "b": 19.0, "angle": 0.0}}
    hint["tolerance"] = 0.2
    without = fitted_shapes(image, [[], [hint]])  # off by default (FIT_HIGHLIGHTS)
    monkeypatch.setattr(fitting, "FIT_HIGHLIGHTS", True)
    with_glare = fitted_shapes(image, [[], [hint]])
    # GrabCut takes the white spots on the rim for background (the background has them too)
    # and cuts around them; inpainted, they take the disc's colour and the cut runs along it.
    assert _dice(with_glare[1], mask) > _dice(without[1], mask) + 0.02
    assert _dice(with_glare[1], mask) > 0.95


def test_only_bright_unsaturated_spots_of_a_colour_image_are_inpainted() -> None:
    import cv2

    image, _ = _glare_scene()
    bgr = to_uint8_bgr(image)
    size = (48, 48)
    plain = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    small = fitting.without_highlights(bgr, plain.copy())
    spot = cv2.resize(ellipse_mask(SHAPE, (67.0, 48.0, 3.0, 3.0, 0.0)).astype(np.uint8), size) > 0
    # The spot takes its surroundings' colours (the disc's and the background's, not white) ...
    assert plain[spot].min() > 200 and small[spot].max() < 180
    # ... and pixels far from any spot are untouched.
    far = ~cv2.dilate(cv2.resize((bgr.min(-1) > 200).astype(np.uint8), size), disk(6)).astype(bool)
    assert np.array_equal(small[far], plain[far])
    # A grey image (MRI, CT: bright is not glare) stays as it is, whatever its brightness.
    grey = to_uint8_bgr(image[:1])
    grey_small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    assert np.array_equal(fitting.without_highlights(grey, grey_small.copy()), grey_small)
