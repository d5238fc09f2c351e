"""The default run: time budget -> config (merge of overrides, re-planning with a fake timer),
config validation, the sure pixels of drawn hints, the post-training quality check, and the
augmentation regression (augmenting must not stop the network from fitting its masks)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

import models.train as train_module
from models import bounds as B
from models.budget import (
    BUDGET_SECONDS,
    MIN_EPOCHS,
    MIN_STEPS,
    PLAN_MAX_EPOCHS,
    ProjectFacts,
    choose_grid,
    default_for,
    epoch_ceiling,
    estimate_run,
    estimate_step_seconds,
    facts_from_bounds,
    px_seconds,
    resolve_config,
    width_factor,
)
from models.config import TrainConfig
from models.fitting import FIT_SECONDS_PER_SLICE
from models.infer import load_predictor
from models.metrics import dice
from models.quality import LISTED_IMAGES, missing_where_expected, report, slice_tallies
from models.regions import SURE_IN, SURE_OUT, UNKNOWN, ellipse_mask, sure_map
from models.synthetic import make_dataset
from models.train import WARMUP_STEPS, TrainSample, train

FACTS = ProjectFacts(num_slices=40, max_side=256, smallest_structure=30.0)
BIG = dataclasses.replace(FACTS, num_slices=400)
"""A project whose every budget affords fewer than PLAN_MAX_EPOCHS epochs."""


def test_grid_keeps_the_smallest_structure_and_never_exceeds_the_images() -> None:
    # 30 px on 256 px images spans >= 10 px first on a 96 px grid (30 * 96 / 256 = 11.25).
    assert choose_grid(FACTS, "cpu") == 96
    assert choose_grid(dataclasses.replace(FACTS, smallest_structure=12.0), "cpu") == 128
    assert choose_grid(dataclasses.replace(FACTS, smallest_structure=None), "cpu") == 96
    assert choose_grid(ProjectFacts(4, max_side=50, smallest_structure=5.0), "cpu") == 64
    assert choose_grid(dataclasses.replace(FACTS, smallest_structure=12.0), "cuda:1") == 256


def test_one_channel_images_change_intensity_on_every_sample_from_standard_up() -> None:
    lo, hi = B.stack([None, B.parse_hint("A", {"size": [300, 500]})])
    assert facts_from_bounds([(lo, hi)], [(64, 64)]).channels == 1
    colour = facts_from_bounds([(lo, hi)], [(64, 64)], channels=3)
    assert colour.channels == 3
    assert default_for(FACTS, "cpu", "standard").p_intensity == 1.0
    assert default_for(FACTS, "cpu", "thorough").p_intensity == 1.0
    assert default_for(FACTS, "cuda", "standard").p_intensity == 1.0
    # Shorter runs keep half for one-channel images too (ablations-zoom.md, sections 8, 12).
    assert default_for(FACTS, "cpu", "quick").p_intensity == 0.5
    assert default_for(FACTS, "cpu", 599.0).p_intensity == 0.5
    assert default_for(FACTS, "cpu", 600.0).p_intensity == 1.0
    assert default_for(FACTS, "cuda", "quick").p_intensity == 0.5
    assert default_for(colour, "cpu", "standard").p_intensity == 0.5
    assert default_for(colour, "cuda", "thorough").p_intensity == 0.5
    # No blur at any budget (ablations-zoom.md, section 11); a given value is honoured.
    for device, budget in (("cpu", "quick"), ("cpu", "standard"), ("cuda", "thorough")):
        assert default_for(FACTS, device, budget).p_blur == 0.0
        assert default_for(colour, device, budget).p_blur == 0.0
    assert resolve_config({"p_blur": 0.5}, FACTS, "cpu")[0].p_blur == 0.5
    given, _ = resolve_config({"p_intensity": 0.2}, FACTS, "cpu")
    assert given.p_intensity == 0.2  # a given field still wins


def test_the_zoom_goes_in_as_well_from_standard_up() -> None:
    colour = dataclasses.replace(FACTS, channels=3)
    for facts in (FACTS, colour):
        assert default_for(facts, "cpu", "standard").zoom_max == 1.25
        assert default_for(facts, "cpu", "thorough").zoom_max == 1.25
        assert default_for(facts, "cuda", "standard").zoom_max == 1.25
        # Below `standard` the zoom stays out only (ablations-zoom.md, sections 13 and 14).
        assert default_for(facts, "cpu", "quick").zoom_max == 1.0
        assert default_for(facts, "cpu", 599.0).zoom_max == 1.0
        assert default_for(facts, "cuda", "quick").zoom_max == 1.0
    assert resolve_config({"zoom_max": 1.0}, FACTS, "cpu")[0].zoom_max == 1.0  # given wins
    with pytest.raises(ValueError, match="zoom_max"):
        resolve_config({"zoom_max": 0.5}, FACTS, "cpu")


def test_the_budget_sizes_the_run_and_the_estimate_fits_it() -> None:
    quick, quick_s = resolve_config({"budget": "quick"}, BIG, "cpu")
    standard, standard_s = resolve_config({}, BIG, "cpu")
    thorough, _ = resolve_config({"budget": "thorough"}, BIG, "cpu")
    assert standard.budget == "standard"
    assert quick.epochs < standard.epochs < thorough.epochs <= PLAN_MAX_EPOCHS
    # The estimate is the budget (rounded down to whole epochs), not more.
    fitting = BIG.num_slices * FIT_SECONDS_PER_SLICE  # before training, not in the budget
    for seconds, name in ((quick_s, "quick"), (standard_s, "standard")):
        budget = BUDGET_SECONDS["cpu"][name]
        assert 0.8 * budget <= seconds - fitting <= budget
    # The rest on a 40-slice project (its plans reach the ceiling: the test below).
    standard, standard_s = resolve_config({}, FACTS, "cpu")
    assert resolve_config({"budget": 300}, FACTS, "cpu")[0].budget == 300
    # The barrier's t reaches t_max after 70 % of whatever length the run has.
    assert quick.mu ** int(quick.epochs * 0.7) == pytest.approx(quick.t_max / quick.t0)
    gpu, _ = resolve_config({}, FACTS, "cuda")
    assert gpu.network_kwargs["width"] > standard.network_kwargs["width"]
    # The default fits the drawings (models.fitting) before training: the estimate says so.
    assert standard.training_fit == "cut"
    plain, plain_s = resolve_config({"fit_hints": False}, FACTS, "cpu")
    assert plain.training_fit is None and plain.epochs == standard.epochs
    assert standard_s == pytest.approx(plain_s + FACTS.num_slices * FIT_SECONDS_PER_SLICE)
    vote_only, vote_s = resolve_config({"fit_targets": "none"}, FACTS, "cpu")
    assert vote_only.training_fit is None and vote_s == pytest.approx(plain_s)
    with pytest.raises(ValueError, match="fit_targets"):
        resolve_config({"fit_hints": True, "fit_targets": "all"}, FACTS, "cpu")
    # Min-max scaling (benchmarks/results/ablations-normalisation.md); the others by field.
    assert standard.normalisation == "minmax"
    assert resolve_config({"normalisation": "auto"}, FACTS, "cpu")[0].normalisation == "auto"


def test_a_budget_plans_at_most_the_epoch_ceiling_and_then_ends_early() -> None:
    """More passes over the slices teach the network the fitted drawings' errors: a budget that
    affords more than PLAN_MAX_EPOCHS plans the ceiling, and its estimate says that the run ends
    before the budget is spent; a project of a step per epoch keeps MIN_STEPS steps."""
    fitting = FACTS.num_slices * FIT_SECONDS_PER_SLICE
    standard, standard_s = resolve_config({}, FACTS, "cpu")
    thorough, thorough_s = resolve_config({"budget": "thorough"}, FACTS, "cpu")
    assert standard.epochs == thorough.epochs == PLAN_MAX_EPOCHS
    assert standard_s == thorough_s < BUDGET_SECONDS["cpu"]["standard"] + fitting
    assert standard.mu ** int(standard.epochs * 0.7) == pytest.approx(standard.t_max / standard.t0)
    tiny = ProjectFacts(num_slices=3, max_side=64, smallest_structure=20.0)
    cfg, _ = resolve_config({"budget": "thorough"}, tiny, "cpu")
    assert cfg.epochs == epoch_ceiling(1) == MIN_STEPS > PLAN_MAX_EPOCHS
    # The ceiling is the plan's: a user who gives the epochs gets them.
    assert resolve_config({"epochs": 2 * PLAN_MAX_EPOCHS}, FACTS, "cpu")[0].epochs == 600


def test_the_cost_model_scales_a_step_by_width_as_measured() -> None:
    """Below width 16 a step costs in proportion to the width (width 8 measured half of 16's
    step on CPU, not the square's quarter); from 16 up by its square. The plan's epochs for a
    narrower network follow: width 8 trains twice the epochs of 16 in the same budget."""
    assert [width_factor(w) for w in (4, 8, 12, 16, 24, 32)] == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 2.25, 4.0]
    )
    cfg = default_for(FACTS, "cpu", "standard")
    narrow = dataclasses.replace(cfg, network_kwargs={"width": 8, "depth": 3})
    assert estimate_step_seconds(narrow, "cpu") == pytest.approx(
        0.5 * estimate_step_seconds(cfg, "cpu")
    )
    run = {"batch_size": 8, "grid": 96, "network_kwargs": {"width": 8}}
    assert px_seconds(run, {"seconds": 135.0, "steps": 1000}) == pytest.approx(
        0.27 / (8 * 96 * 96)
    )  # 0.135 s a step at width 8 is the reference CPU's 0.27 s at width 16


def test_an_estimate_timed_by_earlier_runs_covers_the_epochs_the_replan_will_fit() -> None:
    """A finished run's pace (its seconds over its steps, per image x px^2 at width 16) times
    later estimates: a faster machine than the cost model's reaches the plan's ceiling sooner
    (the estimate is that, not the budget), a slower one fills the budget with fewer epochs;
    a run of fixed length keeps its epochs at the measured pace."""
    run = {"batch_size": 8, "grid": 96, "network_kwargs": {"width": 32}}
    assert px_seconds(run, {"seconds": 1080.0, "steps": 1000}) == pytest.approx(
        0.27 / (8 * 96 * 96)
    )  # 1.08 s a step at width 32 is the reference CPU's 0.27 s at width 16
    resumed = {"seconds": 540.0, "steps": 1000, "resumed_at_step": 500}  # timed 500 steps
    assert px_seconds(run, resumed) == pytest.approx(0.27 / (8 * 96 * 96))
    for metrics in (
        {},
        {"seconds": 10.0},
        {"seconds": 0.0, "steps": 500},
        {"seconds": 10.0, "steps": 20},  # a smoke test: its first steps, not its pace
        {"seconds": "x", "steps": 1},
    ):
        assert px_seconds(run, metrics) is None
    assert px_seconds({"grid": 96}, {"seconds": 1.0, "steps": 1}) is None
    fitting = BIG.num_slices * FIT_SECONDS_PER_SLICE
    cfg, model_s = resolve_config({}, BIG, "cpu")
    cost = estimate_step_seconds(cfg, "cpu") / (cfg.batch_size * cfg.grid**2)
    assert estimate_run(cfg, BIG, "cpu") == (pytest.approx(model_s), cfg.epochs)
    assert estimate_run(cfg, BIG, "cpu", cost) == (pytest.approx(model_s), cfg.epochs)
    budget = BUDGET_SECONDS["cpu"]["standard"]
    fast_s, fast_epochs = estimate_run(cfg, BIG, "cpu", cost / 10)
    assert fast_epochs == PLAN_MAX_EPOCHS > cfg.epochs and fast_s - fitting < 0.9 * budget
    slow_s, slow_epochs = estimate_run(cfg, BIG, "cpu", cost * 2)
    assert MIN_EPOCHS <= slow_epochs < cfg.epochs and 0.8 * budget <= slow_s - fitting <= budget
    fixed, fixed_s = resolve_config({"epochs": 10}, BIG, "cpu")
    assert estimate_run(fixed, BIG, "cpu", cost * 2) == (
        pytest.approx(2 * fixed_s - fitting),
        10,
    )


def test_explicit_fields_replace_the_default_one_by_one() -> None:
    default, _ = resolve_config({}, FACTS, "cpu")
    cfg, seconds = resolve_config({"epochs": 7}, FACTS, "cpu")
    assert cfg.epochs == 7 and cfg.budget is None  # fixed length: no re-planning
    assert (cfg.grid, cfg.network_kwargs, cfg.sure_weight, cfg.weights) == (
        default.grid,
        default.network_kwargs,
        default.sure_weight,
        default.weights,
    )
    assert cfg.mu ** int(7 * 0.7) == pytest.approx(cfg.t_max / cfg.t0)
    assert seconds < 600
    cfg, _ = resolve_config({"grid": 64, "sure_weight": 0.0}, FACTS, "cpu")
    assert (cfg.grid, cfg.sure_weight, cfg.budget) == (64, 0.0, "standard")
    assert cfg.network_kwargs == default.network_kwargs
    assert resolve_config({"epochs": 5, "mu": 1.5}, FACTS, "cpu")[0].mu == 1.5
    # The barrier's growth follows a changed ceiling too, with or without fixed epochs.
    for given in ({"t_max": 5.0, "epochs": 10}, {"t_max": 200.0}, {"t0": 2.0, "epochs": 10}):
        cfg, _ = resolve_config(given, FACTS, "cpu")
        assert cfg.mu ** int(cfg.epochs * 0.7) == pytest.approx(cfg.t_max / cfg.t0)
    # A preset is its own base (the budget's recipe is not mixed in).
    paper, _ = resolve_config({"preset": "paper"}, FACTS, "cpu")
    assert paper.network == "enet" and paper.budget is None
    with pytest.raises(ValueError, match="preset or a budget"):
        resolve_config({"preset": "paper", "budget": "quick"}, FACTS, "cpu")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"epochs": 1.5}, "epochs must be an integer"),
        ({"epochs": 10**100}, "epochs must be in"),
        ({"seed": "abc"}, "seed must be an integer"),
        ({"weights": {"size": "x"}}, "weights.size must be a finite number"),
        ({"weights": {"colour": 1}}, "unknown loss weight"),
        ({"weights_end": {"colour": 1}}, "unknown loss weight.*weights_end"),
        ({"weights_end": {"length": -1}}, "weights_end.length must be in"),
        ({"upper_only": "length"}, "upper_only must be a list"),
        ({"upper_only": ["colour"]}, "unknown descriptor.*upper_only"),
        ({"hard_length": "yes"}, "hard_length must be true or false"),
        ({"betas": [1, 2, 3]}, "betas must be two numbers"),
        ({"network_kwargs": {"width": -4}}, "network_kwargs.width must be in"),
        ({"network_kwargs": {"kernel": 3}}, "take only"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"augment": "yes"}, "augment must be true or false"),
        ({"budget": "forever"}, "budget"),
        ({"budget": 1}, "budget"),
        ({"tta": 1}, "tta must be true or false"),
        ({"pseudo_rounds": 11}, "pseudo_rounds must be in"),
        ({"pseudo_rounds": 1.5}, "pseudo_rounds must be an integer"),
        ({"pseudo_weight": -1}, "pseudo_weight must be in"),
    ],
)
def test_bad_fields_are_refused_with_their_name(override: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        resolve_config(override, FACTS, "cpu")


def test_facts_come_from_the_hinted_sizes() -> None:
    lo, hi = B.stack([None, B.parse_hint("A", {"size": [300, 500]}), None])
    facts = facts_from_bounds([(lo, hi)], [(120, 200)])
    assert facts.num_slices == 1 and facts.max_side == 200
    assert facts.smallest_structure == pytest.approx(math.sqrt(4 * math.sqrt(300 * 500) / math.pi))
    unknown = B.stack([None, B.parse_hint("A", {"centroid": {"x": [1, 5], "y": [1, 5]}})])
    assert facts_from_bounds([unknown], [(10, 10)]).smallest_structure is None


def test_the_grid_resolves_the_smallest_structure_relative_to_its_own_slice() -> None:
    """Every slice is resized to the grid on its own (Kvasir: 330 to 1348 px photographs), so a
    20 % polyp in a 1000 px image and a 40 % one in a 300 px image need only the grid on which
    about 20 % spans 10 px, not the one where 120 px of a 1000 px side would."""
    big = B.stack([None, B.parse_hint("A", {"size": [math.pi * 100**2] * 2})])  # 200 px across
    small = B.stack([None, B.parse_hint("A", {"size": [math.pi * 60**2] * 2})])  # 120 px across
    facts = facts_from_bounds([big, small], [(1000, 1000), (300, 300)])
    assert facts.smallest_structure == pytest.approx(120, rel=1e-3)
    assert facts.small_fraction == pytest.approx(0.21, rel=1e-3)  # 5th percentile of 0.2, 0.4
    assert choose_grid(facts, "cpu") == 64  # 0.2 x 64 = 12.8 px >= 10
    # Without the fraction (older facts), the absolute size over the largest side: 120 / 1000.
    old = dataclasses.replace(facts, small_fraction=None)
    assert choose_grid(old, "cpu") == 96


def test_one_tiny_structure_does_not_set_the_grid() -> None:
    """The 5th percentile: one structure of 1 % among 40 of 30 % keeps the coarse grid."""
    one = B.stack([None, B.parse_hint("A", {"size": [math.pi * 5**2] * 2})])  # 10 px of 1000
    many = B.stack([None, B.parse_hint("A", {"size": [math.pi * 150**2] * 2})])  # 300 of 1000
    facts = facts_from_bounds([one, *[many] * 40], [(1000, 1000)] * 41)
    assert facts.smallest_structure == pytest.approx(10, rel=1e-3)
    assert choose_grid(facts, "cpu") == 64


def test_a_short_budget_trades_resolution_for_steps() -> None:
    fine = dataclasses.replace(FACTS, smallest_structure=12.0)  # wants the largest CPU grid
    assert choose_grid(fine, "cpu") == 128
    standard = default_for(fine, "cpu", "standard")
    assert standard.grid == 128  # 600 s afford 800+ steps there
    # Turns but no flips: the anatomy keeps its sides (benchmarks/results/ablations-rotation.md).
    assert (standard.p_rotate, standard.rotate_max) == (0.5, 30.0)
    assert standard.p_flip == 0.0 and standard.p_transpose == 0.0
    short = default_for(fine, "cpu", 120)
    assert short.grid < 128
    steps = 120 / estimate_step_seconds(short, "cpu")
    assert steps >= MIN_STEPS
    assert default_for(fine, "cpu", 60).grid <= short.grid
    # At 0.27 s per 96 px step, `quick` (120 s) affords ~440 steps at 96 px: it takes 64 px, which
    # delivered more on both tuning projects (benchmarks/results/ablations-budget.md, section 4).
    assert default_for(fine, "cpu", "quick").grid == 64


def _tiny_samples(n: int = 4, size: int = 24) -> list[TrainSample]:
    out = []
    for img, m in make_dataset(n, size, 1, seed=3):
        (cb,) = B.from_mask(m, 2, {"size": 0.1, "centroid": 2.0})[1:]
        lo, hi = B.stack([None, cb])
        out.append(TrainSample(img, lo, hi))
    return out


class FakeTimer:
    """A clock that only moves when ``tick`` is called (here: once per step, from progress)."""

    def __init__(self, step_seconds: float) -> None:
        self.now, self.step_seconds = 0.0, step_seconds

    def __call__(self) -> float:
        return self.now

    def tick(self, _progress: object = None) -> None:
        self.now += self.step_seconds


TINY_NET = {"grid": 16, "network_kwargs": {"width": 2, "depth": 1}, "progress_every": 1}


def _budgeted_tiny(budget: float, val_every: int) -> tuple[list[TrainSample], TrainConfig]:
    """Four tiny samples and a budgeted config of a tiny network for them (a step per epoch)."""
    samples = _tiny_samples()
    facts = facts_from_bounds([(s.lo, s.hi) for s in samples], [(24, 24)] * 4)
    cfg, _ = resolve_config(TINY_NET | {"budget": budget, "val_every": val_every}, facts, "cpu")
    return samples, cfg


def test_a_budgeted_run_replans_from_its_timed_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, cfg = _budgeted_tiny(20, 1000)
    guessed = cfg.epochs
    # Every step takes 0.1 s by the fake timer: the run is re-planned after its warm-up steps
    # to about 200 steps (one per epoch here), whatever the cost model guessed.
    timer = FakeTimer(0.1)
    monkeypatch.setattr(train_module, "clock", timer)
    seen = []

    def progress(p: train_module.Progress) -> None:
        timer.tick()
        seen.append(p)

    result = train(samples, 2, cfg, device="cpu", progress=progress, out_dir=tmp_path / "a")
    assert result.epochs != guessed
    assert 180 <= result.epochs <= 205
    assert result.metrics["seconds"] == pytest.approx(20, abs=2)
    # The remaining time falls as the run goes and reaches 0 at its end.
    assert seen[-1].eta_s == 0 and seen[-1].elapsed_s > 0
    mid = seen[len(seen) // 2]
    assert mid.eta_s == pytest.approx(20 - mid.elapsed_s, abs=2)
    # Steps so slow that the budget is spent during the warm-up still run the minimum.
    cfg2, _ = resolve_config(TINY_NET | {"budget": 10}, ProjectFacts(4, 24, None), "cpu")
    slow = FakeTimer(5.0)
    monkeypatch.setattr(train_module, "clock", slow)
    result = train(samples, 2, cfg2, device="cpu", progress=slow.tick, out_dir=tmp_path / "b")
    assert result.epochs == MIN_EPOCHS


def test_a_budgeted_run_that_could_pass_more_often_stops_at_the_ceiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps so fast that the budget would afford 2000 epochs (one step each): the re-planned
    run stops at the ceiling (MIN_STEPS steps for a step per epoch), well inside its budget, and
    its estimate of the time left said so."""
    samples, cfg = _budgeted_tiny(200, 5000)
    timer = FakeTimer(0.1)
    monkeypatch.setattr(train_module, "clock", timer)
    seen: list[train_module.Progress] = []

    def progress(p: train_module.Progress) -> None:
        timer.tick()
        seen.append(p)

    result = train(samples, 2, cfg, device="cpu", progress=progress, out_dir=tmp_path / "a")
    assert result.epochs == epoch_ceiling(1) == MIN_STEPS
    assert result.metrics["seconds"] < 0.5 * 200
    after_warmup = next(p for p in seen if p.step >= 100)
    assert after_warmup.eta_s == pytest.approx((MIN_STEPS - after_warmup.step) * 0.1, rel=0.1)


def test_a_budgeted_run_that_slows_down_ends_within_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machine gets busy after the warm-up (steps 4x slower): the run ends near its budget
    instead of running the planned epochs at the slower pace (4x over)."""
    samples, cfg = _budgeted_tiny(20, 1000)
    timer = FakeTimer(0.1)
    monkeypatch.setattr(train_module, "clock", timer)
    ticks = {"n": 0}

    def progress(_p: train_module.Progress) -> None:
        ticks["n"] += 1
        timer.step_seconds = 0.1 if ticks["n"] <= 10 else 0.4
        timer.tick()

    result = train(samples, 2, cfg, device="cpu", progress=progress, out_dir=tmp_path / "a")
    assert result.metrics["seconds"] <= 20 * 1.15, result.metrics["seconds"]
    assert MIN_EPOCHS <= result.epochs < 100


def test_a_budgeted_run_whose_first_steps_were_slow_lengthens_to_its_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up steps take 0.3 s and every later one 0.1 s: the re-plan from the warm-up
    alone would end after 8.5 of 20 s (66 epochs); the run lengthens while it is early and ends
    near its budget, without passing it. The time left it reports is the new length's."""
    samples, cfg = _budgeted_tiny(20, 1000)
    timer = FakeTimer(0.3)
    monkeypatch.setattr(train_module, "clock", timer)
    seen: list[train_module.Progress] = []

    def progress(p: train_module.Progress) -> None:
        timer.step_seconds = 0.3 if p.step <= WARMUP_STEPS else 0.1
        timer.tick()
        seen.append(p)

    result = train(samples, 2, cfg, device="cpu", progress=progress, out_dir=tmp_path / "a")
    assert 0.85 * 20 <= result.metrics["seconds"] <= 20.5, result.metrics["seconds"]
    assert result.epochs > 100  # one step per epoch
    assert seen[-1].eta_s == 0 and seen[-1].epochs == result.epochs
    # Lengthened early only: from the first quarter of the run on, its length held.
    assert len({p.epochs for p in seen if p.step > result.epochs // 4 + 1}) == 1


def test_sure_pixels_of_an_ellipse_a_ring_and_an_absent_class() -> None:
    shape = (40, 40)
    ell = {"ellipse": {"cx": 20, "cy": 20, "a": 10, "b": 6, "angle": 30}, "tolerance": 0.2}
    ring = {
        "ellipse": {"cx": 20, "cy": 20, "a": 14, "b": 14, "angle": 0},
        "hole": {"cx": 20, "cy": 20, "a": 8, "b": 8, "angle": 0},
        "tolerance": 0.1,
    }
    m = sure_map([[], [ell], [{"present": False}]], shape)
    assert m is not None and m.shape == (3, 40, 40) and m.dtype == np.int8
    truth = ellipse_mask(shape, (20, 20, 10, 6, 30))
    # Inside the core is inside the true shape, outside the grown ellipse is outside it.
    assert truth[m[1] == SURE_IN].all() and not truth[m[1] == SURE_OUT].any()
    assert (m[1] == UNKNOWN).any()  # the band around the boundary is left to the bounds
    assert (m[2] == SURE_OUT).all() and (m[0] == UNKNOWN).all()
    r = sure_map([[], [ring]], shape)
    assert r is not None
    assert r[1, 20, 20] == SURE_OUT  # the hole's centre
    assert r[1, 20, 20 + 11] == SURE_IN  # on the ring's middle line
    assert r[1, 0, 0] == SURE_OUT
    # Intervals alone carry no pixels; two classes claiming the same core keep neither.
    assert sure_map([[], [{"size": [10, 20]}]], shape) is None
    both = sure_map([[], [ell], [ell]], shape)
    assert both is not None and not (both == SURE_IN).any()


def test_quality_counts_met_bounds_and_empty_classes() -> None:
    shape = (32, 32)
    disk = ellipse_mask(shape, (16, 16, 6, 6, 0))
    lo, hi = B.stack(
        [None, B.from_mask(disk.astype(np.uint8), 2)[1], B.parse_hint("B", {"present": False})]
    )
    good = disk.astype(np.uint8)
    t = slice_tallies(good, lo, hi)
    assert [(x.hinted_slices, x.meeting_bounds, x.empty_where_present) for x in t] == [
        (1, 1, 0),
        (1, 1, 0),
    ]
    shifted = np.roll(good, 10, axis=1)  # outside the 20 px centroid margin? no: inside
    far = np.roll(good, 25, axis=1) * 0
    far[2:6, 2:6] = 1  # a tiny blob in the corner: size and centroid both off
    bad_b = good * 2  # class B predicted where it was marked absent
    per_image = {
        1: slice_tallies(good, lo, hi),
        2: slice_tallies(np.zeros(shape, np.uint8), lo, hi),
        3: slice_tallies(far, lo, hi),
        4: slice_tallies(bad_b, lo, hi),
    }
    assert slice_tallies(shifted, lo, hi)[0].meeting_bounds == 1
    summary, warnings = report(per_image, ["A", "B"])
    assert summary["classes"]["A"] == {
        "hinted_slices": 4,
        "meeting_bounds": 1,
        "fraction_meeting_bounds": 0.25,
        "present_slices": 4,
        "empty_where_present": 2,  # image 2, and image 4 where all A became B
    }
    assert summary["classes"]["B"]["meeting_bounds"] == 3
    assert summary["images"]["2"]["A"]["empty_where_present"] == 1
    assert warnings == ["A: predicted empty on 2 of 4 hinted slices where it was hinted present"]
    _, low = report({1: slice_tallies(far, lo, hi)}, ["A", "B"])
    assert low == ["A: only 0 of 1 hinted slices (0 %) meet the hint's bounds"]
    assert report({1: slice_tallies(good, lo, hi)}, ["A", "B"])[1] == []


def test_classes_missed_on_images_nobody_hinted_are_named() -> None:
    hinted = {1: {"RV", "LV"}, 2: {"LV"}, 3: {"LV", "Myo"}}  # only LV in every hinted image
    predicted = {1: set(), 2: set(), 3: set(), 4: {"LV"}, 5: {"RV"}, 6: set()}
    missing, warnings = missing_where_expected(hinted, predicted, ["RV", "Myo", "LV"])
    assert missing == {"LV": [5, 6]}  # hinted images are judged by their bounds, not here
    assert warnings == [
        "LV: predicted nowhere in 2 of 3 images without hints (image ids 5, 6), though hinted "
        "present in every hinted image: review them, or hint a slice of each and train again"
    ]
    assert missing_where_expected({}, predicted, ["LV"]) == ({}, [])  # nothing hinted
    assert missing_where_expected(hinted, {1: set(), 4: {"LV"}}, ["LV"]) == ({}, [])
    many = {i: set() for i in range(100, 100 + LISTED_IMAGES + 3)}
    missing, warnings = missing_where_expected({1: {"LV"}}, many, ["LV"])
    assert missing["LV"] == sorted(many)
    assert "image ids 100, 101," in warnings[0] and "and 3 more)" in warnings[0]


def _train_dice(samples: list[TrainSample], cfg: TrainConfig, out: Path) -> float:
    result = train(samples, 2, cfg, device="cpu", out_dir=out)
    predictor = load_predictor(result.checkpoint, device="cpu")
    scores = [
        dice(predictor.predict_image(s.image), s.mask, 2)[1] for s in samples if s.mask is not None
    ]
    return float(np.mean(scores))


def test_augmentation_does_not_stop_the_network_fitting_its_masks(tmp_path: Path) -> None:
    """Regression: the issue measured cross-entropy training collapsing from 0.85 to 0.40 Dice
    on its own training images with augmentation on. Geometry that moved images and masks
    differently, or bounds not following them, would show here as a large drop."""
    samples = []
    for img, m in make_dataset(16, 32, 1, seed=5):
        lo, hi = B.stack([None, None])
        samples.append(TrainSample(img, lo, hi, m))
    base = {
        "grid": 32,
        "epochs": 40,
        "ce_weight": 1.0,
        "weights": {"size": 0.0, "centroid": 0.0},
        "entropy_weight": 0.0,
        "val_every": 1000,
        "network_kwargs": {"width": 8, "depth": 2},
        "seed": 1,
    }
    plain = _train_dice(samples, TrainConfig.from_dict(base | {"augment": False}), tmp_path / "a")
    aug = _train_dice(
        samples,
        TrainConfig.from_dict(
            base | {"augment": True, "p_flip": 0.5, "p_transpose": 0.5, "p_rotate": 0.5}
        ),
        tmp_path / "b",
    )
    assert plain > 0.7, plain
    assert aug > plain - 0.1, (plain, aug)
