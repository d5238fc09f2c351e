"""Real-data benchmarks: the simulated annotator, resume, and each script end to end (smoke preset).

The end-to-end tests need ../shared/data (skip locally without it, fail in CI); the rest run on
synthetic masks. Budget: well under 90 s on 2 cores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import command_line, paths
from benchmarks.annotator import Annotator, item_rng, moment_ellipse
from benchmarks.method_training import train_method
from benchmarks.reporting import Scores
from models.bounds import measure
from tests.requirements import need_shared_data


def ellipse_mask(
    shape: tuple[int, int], cx: float, cy: float, a: float, b: float, deg: float
) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    t = math.radians(deg)
    u = (xs - cx) * math.cos(t) + (ys - cy) * math.sin(t)
    v = -(xs - cx) * math.sin(t) + (ys - cy) * math.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def angle_gap(a: float, b: float) -> float:
    d = abs(a - b) % 180.0
    return min(d, 180.0 - d)


# ---------------------------------------------------------------- the simulated annotator


def test_moment_ellipse_recovers_a_drawn_ellipse() -> None:
    mask = ellipse_mask((120, 140), cx=70.3, cy=55.8, a=30.0, b=14.0, deg=35.0)
    e = moment_ellipse(mask)
    assert e is not None
    assert e.cx == pytest.approx(70.3, abs=0.1) and e.cy == pytest.approx(55.8, abs=0.1)
    assert e.a == pytest.approx(30.0, rel=0.03) and e.b == pytest.approx(14.0, rel=0.05)
    assert angle_gap(e.angle, 35.0) < 1.0
    assert moment_ellipse(np.zeros((8, 8), bool)) is None


def test_annotator_errors_stay_within_their_stated_ranges_and_vary() -> None:
    mask = ellipse_mask((100, 100), cx=50, cy=48, a=24, b=12, deg=20)
    ref = moment_ellipse(mask)
    assert ref is not None
    ann = Annotator(jitter_px=(2.0, 2.0), axis_error=0.2, angle_error_deg=15.0)
    drawn = [ann.draw(mask, item_rng(0, "s", i)) for i in range(300)]
    shifts = np.array([math.hypot(d.cx - ref.cx, d.cy - ref.cy) for d in drawn])  # type: ignore[union-attr]
    a_ratio = np.array([d.a / ref.a for d in drawn])  # type: ignore[union-attr]
    b_ratio = np.array([d.b / ref.b for d in drawn])  # type: ignore[union-attr]
    angles = np.array([angle_gap(d.angle, ref.angle) for d in drawn])  # type: ignore[union-attr]
    assert shifts.max() <= 2.0 + 1e-9 and shifts.max() > 1.5  # uses the whole disc
    assert a_ratio.min() >= 0.8 - 1e-9 and a_ratio.max() <= 1.2 + 1e-9
    assert b_ratio.min() >= 0.8 - 1e-9 and b_ratio.max() <= 1.2 + 1e-9
    assert angles.max() <= 15.0 + 1e-6 and angles.max() > 10.0
    assert a_ratio.std() > 0.05  # really perturbed, not the moment ellipse itself


def test_annotator_is_reproducible_per_item_and_marks_absent() -> None:
    mask = ellipse_mask((64, 64), 30, 30, 10, 8, 0)
    ann = Annotator(jitter_px=(2.0, 2.0))
    assert ann.draw(mask, item_rng(3, "slice_1", "LV")) == ann.draw(
        mask, item_rng(3, "slice_1", "LV")
    )
    assert ann.draw(mask, item_rng(3, "slice_1", "LV")) != ann.draw(
        mask, item_rng(3, "slice_2", "LV")
    )
    absent = ann.hint_bounds(np.zeros((64, 64), bool), item_rng(0))
    assert absent.present is False and absent.size == (0.0, 0.0)


def test_ellipse_hint_of_a_filled_ellipse_holds_its_true_descriptors() -> None:
    """With the declared tolerance equal to the drawing error, a convex structure's own size,
    centroid and spread satisfy the hint's bounds (what the bounds_hold_truth fact counts)."""
    from benchmarks.acdc import bounds_hold

    mask = ellipse_mask((128, 128), 64, 60, 30, 18, 30)
    ann = Annotator(jitter_px=(2.0, 2.0), axis_error=0.1, angle_error_deg=5.0, tolerance=0.2)
    held = [bounds_hold(ann.hint_bounds(mask, item_rng(1, i)), mask) for i in range(40)]
    assert all(held)
    # A ring (the myocardium's shape) is not a filled ellipse: its area is far below the
    # moment ellipse's, so the same hint contradicts the truth.
    ring = mask & ~ellipse_mask((128, 128), 64, 60, 22, 12, 30)
    assert measure(ring)[0] < 0.6 * measure(mask)[0]
    assert not bounds_hold(ann.hint_bounds(ring, item_rng(1, 0)), ring)


def test_sparse_hints_one_slice_in_three_and_priors_from_statistics() -> None:
    from benchmarks.acdc import PIXEL_MM, class_priors, hinted_slices

    names = [f"patient{p:03d}_frame01_slice_{z}" for p in range(1, 5) for z in range(9)]
    hinted = hinted_slices(names, seed=0)
    assert len(hinted) == 4 * 3
    for p in range(1, 5):
        zs = sorted(int(n.rsplit("_", 1)[1]) for n in hinted if n.startswith(f"patient{p:03d}"))
        assert len({z % 3 for z in zs}) == 1 and len(zs) == 3
    labels = [np.zeros((10, 10), np.uint8) for _ in range(3)]
    labels[0][:2, :2] = 3
    labels[1][:4, :5] = 3
    labels[2][5:, 5:] = 2
    for lab in labels:
        lab[9, 0] = 2
    priors = class_priors(labels)
    a = PIXEL_MM * PIXEL_MM
    assert priors["RV"] == {"presence": "never"}
    assert priors["Myo"]["presence"] == "always"
    assert priors["LV"] == {"presence": "maybe", "unit": "mm", "size": [4 * a, 20 * a]}


def test_scores_summary_means_and_undefined_hd95() -> None:
    s = Scores()
    s.add({"A": 0.5, "B": 1.0}, {"A": 2.0, "B": math.nan})
    s.add({"A": 0.7, "B": 0.0}, {"A": 4.0, "B": 6.0})
    out = s.summary(("A", "B"))
    assert out["dice"] == pytest.approx({"A": 0.6, "B": 0.5, "mean": 0.55})
    assert out["hd95"] == pytest.approx({"A": 3.0, "B": 6.0, "mean": 4.5})
    assert out["hd95_undefined"] == {"A": 0, "B": 1}


# ---------------------------------------------------------------- resume


def test_interrupted_training_resumes_from_last_checkpoint(tmp_path: Path) -> None:
    from models.bounds import from_mask, stack
    from models.synthetic import make_dataset
    from models.train import TrainingStopped, TrainSample

    data = make_dataset(8, size=32, num_classes=2, seed=0)
    samples = [TrainSample(img, *stack(from_mask(m, 3)), None) for img, m in data]
    cfg = {
        "preset": "cpu-fast",
        "network_kwargs": {"width": 4, "depth": 2},
        "grid": 32,
        "epochs": 2,
        "batch_size": 4,
        "val_every": 1,
        "progress_every": 1,
    }
    calls = {"n": 0}

    def stop_in_second_epoch() -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # 2 steps per epoch: stop at the 2nd step of epoch 2

    logs: list[str] = []
    with pytest.raises(TrainingStopped):
        train_method(
            samples,
            3,
            cfg,
            tmp_path,
            desc="t",
            show_progress=False,
            log=logs.append,
            should_stop=stop_in_second_epoch,
        )
    assert not (tmp_path / "train.json").exists()
    assert "1" in json.loads((tmp_path / "elapsed.json").read_text())
    ckpt, timing = train_method(
        samples, 3, cfg, tmp_path, desc="t", show_progress=False, log=logs.append
    )
    assert any("resuming at epoch 1/2" in m for m in logs)
    assert ckpt.exists() and timing.epochs == 2 and timing.steps == 4
    assert timing.seconds > 0 and timing.seconds_per_epoch > 0
    # Finished: a third call reuses it without training.
    _, again = train_method(
        samples, 3, cfg, tmp_path, desc="t", show_progress=False, log=logs.append
    )
    assert again == timing and "trained already" in logs[-1]


# ---------------------------------------------------------------- end to end on real data


def check_outputs(
    out: Path, name: str, methods: list[str], classes: list[str], preset: str
) -> dict:
    paths = [out / f"{name}.{ext}" for ext in ("json", "md", "png")]
    for p in paths:
        assert p.exists() and p.stat().st_size > 0, p
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(paths[0].read_text())
    assert list(data["methods"]) == methods
    assert data["preset"] == preset
    for key in ("command", "commit", "machine"):
        assert isinstance(data[key], str) and data[key]
    for m, r in data["methods"].items():
        assert set(r["dice"]) == {*classes, "mean"}, m
        assert set(r["hd95"]) == {*classes, "mean"}, m
        assert all(0.0 <= r["dice"][c] <= 1.0 for c in classes)
        assert r["dice"]["mean"] == pytest.approx(np.mean([r["dice"][c] for c in classes]))
        assert r["seconds"] > 0 and r["epochs"] == 1
    md = paths[1].read_text()
    for m in methods:
        assert f"| {m} |" in md
    assert data["command"] in md and data["commit"] in md
    return data


@pytest.mark.shared_data
def test_acdc_script_end_to_end_and_cached_rerun(tmp_path: Path) -> None:
    need_shared_data("acdc", "train_slices.list")
    from benchmarks import acdc

    argv = [
        "--preset",
        "smoke",
        "--out-dir",
        str(tmp_path / "out"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    acdc.main([*argv, "--jobs", "2"])  # two methods at a time, each in a child process
    data = check_outputs(
        tmp_path / "out", "acdc-smoke", list(acdc.METHODS), list(acdc.CLASSES), "smoke"
    )
    hold = data["methods"]["paper"]["bounds_hold_truth"]
    assert hold == {"RV": 1.0, "Myo": 1.0, "LV": 1.0}  # the paper's bounds come from the masks
    assert data["methods"]["sparse"]["hinted_slices"] >= 1
    assert "x 2 jobs" in data["machine"]
    # A rerun finds every method cached: identical figures, no training.
    again = acdc.main([*argv, "--methods", "full,ellipse", "--name", "again"])
    for m in ("full", "ellipse"):
        assert again["methods"][m] == data["methods"][m]
    # ellipse+sure: the ellipse method's drawings as the product takes them: the same class
    # bounds, a Myo+LV union row, sure maps; trained with the union (a smoke run).
    bench = acdc.Acdc(paths.DATA_ROOT, acdc.PRESETS["smoke"].with_overrides({}, 6, 1), 0)
    plain, product = bench.build_samples("ellipse"), bench.build_samples("ellipse+sure")
    assert bench.method_unions("ellipse+sure") == [(acdc.MYO, acdc.LV)]
    assert bench.method_unions("ellipse") == []
    for a, b in zip(plain, product, strict=True):
        assert np.allclose(a.lo, b.lo[: acdc.NUM_CLASSES], atol=1e-3, equal_nan=True)
        assert np.allclose(a.hi, b.hi[: acdc.NUM_CLASSES], atol=1e-3, equal_nan=True)
        assert b.lo.shape[0] == acdc.NUM_CLASSES + 1 and b.sure is not None
    # sparse+sure: a sample per slice; hinted slices as in ellipse+sure (within the priors'
    # ranges), the others the priors' bounds alone and no sure map.
    sparse = bench.build_samples("sparse+sure")
    assert len(sparse) == len(product) and bench.method_unions("sparse+sure") == [
        (acdc.MYO, acdc.LV)
    ]
    for name, a, b in zip(bench.train_names, product, sparse, strict=True):
        if name in bench.hinted:
            assert b.sure is not None and np.array_equal(b.sure, a.sure)
            assert (b.lo >= a.lo - 1e-6).all() and (b.hi <= a.hi + 1e-6).all()
        else:
            assert b.sure is None and np.isfinite(b.hi[1 : acdc.NUM_CLASSES, 0]).all()
    assert 1 <= bench.method_facts("sparse+sure")["hinted_slices"] < len(sparse)
    # paper+union: the paper's rows plus the filled epicardium's, which hold its true shape.
    paper, union = bench.build_samples("paper"), bench.build_samples("paper+union")
    assert bench.method_unions("paper+union") == [(acdc.MYO, acdc.LV)]
    for a, b in zip(paper, union, strict=True):
        assert b.lo.shape[0] == acdc.NUM_CLASSES + 1
        assert np.array_equal(a.lo, b.lo[: acdc.NUM_CLASSES], equal_nan=True)
    assert set(bench.method_facts("paper+union")["bounds_hold_truth"].values()) == {1.0}
    # Mask-derived bounds keep their mask for remeasure_bounds; drawn hints have none.
    for s, (_, lab) in zip(union, bench.train, strict=True):
        assert np.array_equal(s.reference, lab)
    assert all(s.reference is None for s in plain)
    assert "Myo+LV" in bench.method_facts("paper+union")["bounds_hold_truth"]
    methods = "ellipse,ellipse+sure,sparse+sure,paper+union"
    sure = acdc.main([*argv, "--methods", methods, "--name", "sure"])
    assert sure["methods"]["ellipse"] == data["methods"]["ellipse"]
    assert sure["methods"]["paper+union"]["epochs"] == 1
    assert sure["methods"]["ellipse+sure"]["epochs"] == 1
    assert sure["methods"]["sparse+sure"]["hinted_slices"] >= 1


@pytest.mark.shared_data
def test_kvasir_script_end_to_end(tmp_path: Path) -> None:
    need_shared_data("kvasir_seg", "images")
    from benchmarks import kvasir

    kvasir.main(
        [
            "--preset",
            "smoke",
            "--out-dir",
            str(tmp_path),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    data_before = check_outputs(tmp_path, "kvasir-smoke", ["full", "ellipse"], ["polyp"], "smoke")
    assert data_before["hd95_unit"] == "px"
    train, val = kvasir.split(kvasir.list_images(paths.DATA_ROOT / "kvasir_seg"), 0)
    assert len(train) == 800 and len(val) == 200 and not set(train) & set(val)
    # ellipse+sure: the same ellipses' bounds, plus each drawing's sure map, trained with the
    # product's sure_weight (ellipse comes from the cache).
    smoke = kvasir.PRESETS["smoke"].with_overrides({}, 4, 1)
    data = kvasir.Kvasir(paths.DATA_ROOT, smoke, 0)
    plain, sure = data.build_samples("ellipse"), data.build_samples("ellipse+sure")
    for a, b in zip(plain, sure, strict=True):
        assert np.array_equal(a.lo, b.lo) and np.array_equal(a.hi, b.hi) and a.sure is None
        assert b.sure is not None and (b.sure == 1).any() and (b.sure == -1).any()
    both = kvasir.main(
        [
            *("--preset", "smoke", "--methods", "ellipse,ellipse+sure", "--name", "sure"),
            *("--out-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--no-progress"),
        ]
    )
    assert both["methods"]["ellipse"] == data_before["methods"]["ellipse"]
    assert "ellipse+sure" in both["methods"]


def test_ring_hint_holds_a_myocardium_that_an_ellipse_hint_contradicts() -> None:
    shape = (96, 96)
    epi = ellipse_mask(shape, 48.0, 47.0, 26.0, 22.0, 20.0)
    endo = ellipse_mask(shape, 49.0, 47.5, 17.0, 14.0, 30.0)
    myo = epi & ~endo
    exact = Annotator(jitter_px=(0.0, 0.0), axis_error=0.0, angle_error_deg=0.0, tolerance=0.1)
    rng = np.random.default_rng(0)
    hole = exact.draw(endo, rng)
    ring = exact.ring_bounds(epi, hole, rng)
    filled = exact.hint_bounds(myo, rng)  # the ring's own moment ellipse, filled
    v = measure(myo)
    lo, hi = ring.effective()
    assert np.all((v >= lo - 1e-6) & (v <= hi + 1e-6))
    assert not filled.size[0] <= v[0] <= filled.size[1]  # about 3x the ring's area
    # No hole drawn (or one that does not fit): the outer ellipse alone; nothing: absent.
    assert exact.ring_bounds(epi, None, rng).size == exact.hint_bounds(epi, rng).size
    assert exact.ring_bounds(np.zeros(shape, bool), hole, rng).present is False


@pytest.mark.shared_data
def test_acdc_centre_crop_keeps_labels_and_predictions_are_pasted_back() -> None:
    need_shared_data("acdc", "train_slices.list")
    from benchmarks import acdc

    root = paths.DATA_ROOT / "acdc"
    name = acdc.read_list(root / "train_slices.list")[0]
    image, label = acdc.read_h5(root / "data" / f"{name}.h5")
    img_c, lab_c = acdc.read_cropped(root / "data" / f"{name}.h5")
    rows, cols = acdc.centre_box(image.shape)
    assert img_c.shape == lab_c.shape == (rows.stop - rows.start, cols.stop - cols.start)
    assert img_c.shape[0] == round(image.shape[0] * acdc.CROP)
    assert np.array_equal(lab_c, label[rows, cols]) and lab_c.sum() == label.sum()


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(SystemExit, match="unknown method"):
        command_line.selected_methods("full,nope", ("full", "ellipse"))


def test_kvasir_service_run_scores_the_drawings_the_fitted_drawings_and_the_default(
    tmp_path: Path,
) -> None:
    """A service run on 4 hinted images: the drawings and the drawings fitted to the images
    as masks (no training), and the default with fitted hints for a couple of epochs."""
    need_shared_data("kvasir_seg", "images")
    from benchmarks import kvasir

    common = ("--limit", "4", "--val-limit", "1", "--no-progress", "--budget", "30")
    out = ("--out-dir", str(tmp_path), "--cache-dir", str(tmp_path / "cache"))
    data = kvasir.main(
        [
            *common,
            *out,
            *("--methods", "hints-as-masks,fitted-hints-as-masks,default"),
            *("--set", "epochs=2", "--set", "fit_hints=true", "--set", "grid=32"),
            *("--vote-weights", "0,0.5"),
        ]
    )
    methods = data["methods"]
    # The same model voted at other weights: 0 is the model alone, 1/2 the (fitted) drawing.
    alone, at_zero = methods["default (model alone)"], methods["default (hint_weight 0)"]
    assert at_zero["dice"]["mean"] == alone["dice"]["mean"]
    assert "default (hint_weight 0.5)" in methods
    drawn, fitted = methods["hints-as-masks"], methods["fitted-hints-as-masks"]
    assert 0.5 < drawn["dice"]["mean"] < 1.0 and 0.5 < fitted["dice"]["mean"] < 1.0
    assert fitted["dice"]["mean"] != drawn["dice"]["mean"]  # the cut moved the outlines
    assert "fitted-hints-as-masks [val]" not in methods  # nothing trained, nothing held out
    assert methods["default"]["config"]["fit_hints"] is True
    assert methods["default"]["epochs"] == 2 and "default [val]" in methods


def test_a_tuning_project_hints_other_items_than_the_scored_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--hinted-from``: Kvasir's images after the scored ones, ACDC's volumes further along
    the seeded order: disjoint from the default project, and named so in the results."""
    need_shared_data("kvasir_seg", "images")
    from benchmarks import acdc, kvasir

    volumes = [f"patient{i:03d}_frame01" for i in range(1, 41)]
    scored, tuning = acdc.choose(volumes, 5, 0), acdc.choose(volumes, 5, 0, 5)
    assert len(tuning) == 5 and not set(scored) & set(tuning)
    assert acdc.choose(volumes, 5, 0, 0) == scored  # the default project is unchanged

    def hinted(first: int) -> dict:
        argv = ["--methods", "hints-as-masks", "--limit", "3", "--val-limit", "0"]
        argv += ["--hinted-from", str(first), "--out-dir", str(tmp_path), "--no-progress"]
        return kvasir.main([*argv, "--cache-dir", str(tmp_path / "cache")])

    default, other = hinted(0), hinted(3)
    assert "hinted-from" not in default["preset"] and other["preset"].endswith("hinted-from=3")
    assert default["facts"]["hinted images"].startswith("images 0..2")
    assert other["facts"]["hinted images"].startswith("images 3..5")
    assert (tmp_path / "kvasir-service-budget=standard,hinted-from=3.md").exists()
    assert command_line.vote_weights("0, 0.25,1") == [0.0, 0.25, 1.0]
    for bad in ("2", "-0.1", "a,b"):
        with pytest.raises(SystemExit):  # argparse's usage error, before any data is read
            kvasir.main(["--methods", "default", "--vote-weights", bad])
    assert "--vote-weights" in capsys.readouterr().err


@pytest.mark.shared_data
def test_held_out_items_are_hinted_by_no_project_and_score_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_shared_data("acdc", "train_slices.list")
    need_shared_data("kvasir_seg", "images")
    import torch

    from benchmarks import acdc, held_out, kvasir
    from models.train import TrainConfig, TrainSample, train

    root = paths.DATA_ROOT / "acdc"
    volumes = sorted(
        {n.rsplit("_slice_", 1)[0] for n in acdc.read_list(root / "train_slices.list")}
    )
    projects = {*acdc.choose(volumes, 5, 0, 0), *acdc.choose(volumes, 5, 0, 5)}
    items = list(held_out.acdc_items(paths.DATA_ROOT, 3))
    assert len(items) == 3 and not projects & {name for name, _, _ in items}
    _, image, labels = items[0]
    assert image.ndim == 4 and image.shape[1] == 1 and labels.shape == image[:, 0].shape
    train_images, _ = kvasir.split(kvasir.list_images(paths.DATA_ROOT / "kvasir_seg"), 0)
    stems = [s for s, _, _ in held_out.kvasir_items(paths.DATA_ROOT, 2)]
    assert stems == train_images[300:302]  # after the scored, tuning and fit-tuning images
    # A tiny model scores in range, and an all-background one counts every class empty.
    img = image[0]
    lo, hi = np.zeros((4, 9), np.float32), np.zeros((4, 9), np.float32)
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 1, "grid": 16, "ce_weight": 1.0})
    sample = TrainSample(img, lo - np.inf, hi + np.inf, np.zeros(img.shape[1:], np.int64))
    res = train([sample], 4, cfg, device="cpu", out_dir=tmp_path)
    out = held_out.score(res.checkpoint, items[:1], 4)
    assert len(out["dice"]) == 3 and all(0.0 <= d <= 1.0 for d in out["dice"])  # type: ignore[union-attr]
    ck = torch.load(res.checkpoint, weights_only=False)
    last_bias = [k for k, v in ck["state_dict"].items() if k.endswith("bias") and v.shape == (4,)]
    ck["state_dict"][last_bias[-1]] = torch.tensor([1e4, 0.0, 0.0, 0.0])  # background only
    torch.save(ck, tmp_path / "background.pt")
    out = held_out.score(tmp_path / "background.pt", items[:1], 4)
    assert out["dice"] == [0.0, 0.0, 0.0] and out["mean"] == 0.0
    assert out["empty_where_present"] == [int((labels == k).any()) for k in (1, 2, 3)]
    # --tta / --no-tta override the checkpoint's config: the views it trained on (the preset's
    # flips) averaged in, or the slice alone.
    seen: list[tuple[bool, int]] = []
    monkeypatch.setattr(
        held_out, "score_predictor", lambda p, _i, _k: seen.append((p.tta, len(p.views))) or {}
    )
    for tta in (True, False, None):
        held_out.score(res.checkpoint, items[:1], 4, tta)
    assert seen == [(True, 3), (False, 3), (False, 3)]


def test_averaged_members_score_their_mean_softmax() -> None:
    """``benchmarks/ensemble.py``: the members' softmax averaged, then the argmax; two members
    that disagree on a pixel leave it to the one more sure."""
    from benchmarks.ensemble import Averaged
    from benchmarks.held_out import score_predictor

    class Fixed:
        def __init__(self, proba: np.ndarray) -> None:
            self.proba = proba

        def predict_proba(self, slices: np.ndarray) -> np.ndarray:
            return np.repeat(self.proba[None], len(slices), axis=0)

    a = np.array([[[0.9, 0.4]], [[0.1, 0.6]]], np.float32)  # (K=2, H=1, W=2)
    b = np.array([[[0.3, 0.7]], [[0.7, 0.3]]], np.float32)
    both = Averaged([Fixed(a), Fixed(b)])
    volume = np.zeros((3, 1, 1, 2), np.float32)
    np.testing.assert_allclose(both.predict_proba(volume)[0], (a + b) / 2)
    labels = both.predict_volume(volume)
    assert labels.shape == (3, 1, 2) and labels.dtype == np.uint8
    assert labels[:, 0].tolist() == [[0, 0]] * 3  # 0.6 vs 0.4, then 0.55 vs 0.45
    truth = np.zeros((3, 1, 2), np.uint8)
    truth[:, 0, 1] = 1
    out = score_predictor(both, [("v", volume, truth)], 2)
    assert out["dice"] == [0.0] and out["empty_where_present"] == [1]
    assert Averaged([Fixed(a)]).predict_volume(volume)[:, 0].tolist() == [[0, 1]] * 3


class _EchoPredictor:
    """Stands in for a trained network: predicts a fixed label map per call, in order."""

    def __init__(self, predictions: list[np.ndarray]) -> None:
        self.predictions = predictions

    def predict_proba(self, slices: np.ndarray) -> np.ndarray:
        labels = self.predictions.pop(0)
        if labels.ndim == 3:  # already probabilities (K, H, W)
            return labels[None]
        return np.moveaxis(np.eye(4, dtype=np.float32)[labels], -1, 0)[None]


def test_train_fit_pools_dice_confusion_and_contour_length(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from benchmarks import train_fit
    from models import infer

    truth = np.zeros((40, 40), np.uint8)
    truth[5:15, 5:15] = 1  # RV
    truth[20:34, 20:34] = 2  # Myo ring around the LV
    truth[24:30, 24:30] = 3
    items = [("a", np.zeros((1, 1, 40, 40), np.float32), truth[None])] * 2
    grown = truth.copy()
    grown[grown == 2] = 3  # the LV swallows its ring: Myo all predicted LV
    preds = [truth.copy(), grown]
    monkeypatch.setattr(infer, "load_predictor", lambda ck, dev: _EchoPredictor(preds))
    out = train_fit.fit_report(tmp_path / "any.pt", items, 4)
    assert out["dice"][0] == 1.0  # RV right on both slices
    assert out["dice"][1] == pytest.approx(
        2 * 160 / (320 + 160), abs=1e-4
    )  # Myo right on one of two
    assert out["confusion"][2] == [0.0, 0.0, 0.5, 0.5]  # type: ignore[index]
    length = out["length_error_px"]
    assert length[0] == 0.0 and length[2] > 10.0  # type: ignore[index]  # LV's contour grew
    # The second slice breaks the Myo's size (empty) and the LV's size and length.
    assert out["bounds_met"] == [1.0, 0.5, 0.5]
    broken = out["bounds_broken"]
    assert broken[0] == {"size": 0.0, "centroid": 0.0, "spread": 0.0, "length": 0.0}  # type: ignore[index]
    assert broken[1]["size"] == 0.5 and broken[2]["length"] == 0.5  # type: ignore[index]
    assert out["size_ratio"][1] == {"soft": 0.5, "argmax": 0.5}  # type: ignore[index]


def test_train_fit_tells_an_uncommitted_rim_from_a_missing_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from benchmarks import train_fit
    from models import infer

    truth = np.zeros((40, 40), np.uint8)
    truth[10:30, 10:30] = 2
    proba = np.zeros((4, 40, 40), np.float32)
    proba[0] = 1.0
    proba[:, 12:28, 12:28] = [[[0.0]], [[0.0]], [[1.0]], [[0.0]]]  # the core: Myo, committed
    rim = (truth == 2) & (proba[2] == 0)
    proba[0][rim], proba[2][rim] = 0.55, 0.45  # the rim: Myo at 0.45, background wins
    items = [("a", np.zeros((1, 1, 40, 40), np.float32), truth[None])]
    monkeypatch.setattr(infer, "load_predictor", lambda ck, dev: _EchoPredictor([proba]))
    out = train_fit.fit_report(tmp_path / "any.pt", items, 4)
    core, rim_px = 16 * 16, 400 - 16 * 16
    ratio = out["size_ratio"][1]  # type: ignore[index]
    assert ratio["argmax"] == pytest.approx(core / 400, abs=1e-4)
    assert ratio["soft"] == pytest.approx((core + 0.45 * rim_px) / 400, abs=1e-4)
    assert out["bounds_met"][1] == 0.0  # type: ignore[index]  # the argmax breaks the size bound


def test_broken_bounds_names_the_descriptor_a_prediction_breaks() -> None:
    from benchmarks.train_fit import BOUND_GROUPS, broken_bounds

    truth = np.zeros((120, 120), np.uint8)
    truth[10:30, 10:30] = 1
    truth[60:100, 60:70] = 2
    moved = np.zeros_like(truth)
    moved[40:60, 40:60] = 1  # the same square 30 px away: beyond the 20 px centroid margin
    moved[60:100, 60:70] = 2
    thinner = truth.copy()
    thinner[60:100, 68:70] = 0  # a fifth of class 2 lost: size below its 10 % margin
    groups = list(BOUND_GROUPS)
    assert not broken_bounds(truth, truth, 3).any()
    assert broken_bounds(moved, truth, 3)[1].tolist() == [g == "centroid" for g in groups]
    assert broken_bounds(moved, truth, 3)[2].tolist() == [False] * len(groups)
    assert broken_bounds(thinner, truth, 3)[2, groups.index("size")]
    assert not broken_bounds(thinner, truth, 3)[1].any()


@pytest.mark.shared_data
def test_train_fit_reads_seeded_training_slices_at_the_training_crop() -> None:
    need_shared_data("acdc", "train_slices.list")
    from benchmarks import acdc, train_fit

    items = train_fit.training_slices(paths.DATA_ROOT, 3)
    root = paths.DATA_ROOT / "acdc"
    assert [n for n, _, _ in items] == acdc.choose(acdc.read_list(root / "train_slices.list"), 3, 0)
    _, image, labels = items[0]
    full_image, _ = acdc.read_h5(root / "data" / f"{items[0][0]}.h5")
    rows, cols = acdc.centre_box(full_image.shape)
    assert image.shape == (1, 1, rows.stop - rows.start, cols.stop - cols.start)
    assert labels.shape == image[:, 0].shape
