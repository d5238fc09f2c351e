"""Trainer, checkpoint, predictor, metrics and CLI on tiny synthetic data."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from models import bounds as B
from models.infer import load_predictor
from models.metrics import dice, hd95
from models.networks import build_network
from models.synthetic import CLASS_NAMES, make_dataset, make_hints
from models.train import (
    Progress,
    TrainConfig,
    TrainingStopped,
    TrainSample,
    prepare,
    train,
)


def _samples(n: int, size: int, nc: int, seed: int = 0, masks: bool = True) -> list[TrainSample]:
    out = []
    for i, (img, m) in enumerate(make_dataset(n, size, nc, seed=seed)):
        h = make_hints(m, nc, seed=seed * 1000 + i)
        per_class = [None] + [B.parse_hint(c, h[c], shape=m.shape) for c in CLASS_NAMES[:nc]]
        lo, hi = B.stack(per_class)
        out.append(TrainSample(img, lo, hi, m if masks else None))
    return out


@pytest.mark.parametrize("name", ["enet", "unet"])
@pytest.mark.parametrize("channels", [1, 3])
def test_networks_any_size_classes_channels(name: str, channels: int) -> None:
    net = build_network(name, channels, 5)
    y = net(torch.randn(2, channels, 40, 52))
    assert y.shape == (2, 5, 40, 52)


def test_config_presets_and_unknown_fields() -> None:
    cfg = TrainConfig.from_dict({"preset": "paper"})
    assert cfg.network == "enet" and cfg.grid == 256 and cfg.epochs == 200 and cfg.lr == 5e-4
    # Blur and scale as in the paper; no flips or transposes (nor turns: ablations-rotation.md).
    assert (cfg.p_blur, cfg.p_zoom, cfg.p_rotate) == (0.5, 0.5, 0.0)
    assert cfg.p_flip == 0.0 and cfg.p_transpose == 0.0
    assert TrainConfig.from_dict({}).p_rotate == 0.0
    with pytest.raises(ValueError, match="rotate_max"):
        TrainConfig.from_dict({"rotate_max": 400})
    with pytest.raises(ValueError, match="p_rotate"):
        TrainConfig.from_dict({"p_rotate": 1.5})
    cfg = TrainConfig.from_dict({"preset": "cpu-fast", "epochs": 3})
    assert cfg.epochs == 3
    with pytest.raises(ValueError, match="bogus"):
        TrainConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.from_dict({"preset": "slow"})


def test_prepare_rescales_bounds_to_grid() -> None:
    img, m = make_dataset(1, 48, 2, seed=3)[0]
    lo, hi = B.stack(B.from_mask(m, 3, {"size": 0.0, "centroid": 0.0}))
    data = prepare([TrainSample(img, lo, hi, m)], 3, 96)
    assert data.images.shape == (1, 1, 96, 96)
    assert float(data.images.min()) >= 0.0 and float(data.images.max()) <= 1.0
    assert float(data.lo[0, 1, 0]) == pytest.approx(lo[1, 0] * 4)
    assert float(data.lo[0, 1, 1]) == pytest.approx((lo[1, 1] + 0.5) * 2 - 0.5)
    with pytest.raises(ValueError, match="bounds"):
        prepare([TrainSample(img, lo[:2], hi[:2], m)], 3, 64)


def test_train_progress_stop_resume_and_predict(tmp_path: Path) -> None:
    samples = _samples(4, 40, 1)
    cfg = TrainConfig.from_dict(
        {"epochs": 3, "batch_size": 2, "grid": 32, "val_every": 1, "progress_every": 1}
    )
    seen: list[Progress] = []
    res = train(samples, 2, cfg, device="cpu", progress=seen.append, out_dir=tmp_path / "a")
    assert res.checkpoint.exists() and res.epochs == 3
    assert seen[-1].epoch == 3 and seen[-1].step == seen[-1].steps == 6
    assert {"size", "centroid"} <= set(seen[-1].terms)
    assert math.isfinite(seen[-1].loss) and "val_dice" in seen[-1].metrics
    # What the chart plots: the share of the hints' bounds broken, per descriptor (0..1).
    violation = seen[-1].metrics["violation"]
    assert {"size", "centroid"} <= set(violation) and all(0 <= v <= 1 for v in violation.values())
    # Stop callback: raised at the first step where it says so.
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(TrainingStopped):
        train(samples, 2, cfg, device="cpu", should_stop=stop, out_dir=tmp_path / "b")
    assert calls["n"] == 3
    # Resume continues after the saved epoch; warm start reuses the weights.
    more = TrainConfig.from_dict({**cfg.to_dict(), "epochs": 4, "resume": True})
    res2 = train(
        samples,
        2,
        more,
        device="cpu",
        init_checkpoint=tmp_path / "a" / "last.pt",
        out_dir=tmp_path / "c",
    )
    assert res2.metrics["steps"] == 8
    # Its seconds timed the 2 steps since the resume (models.budget.px_seconds reads both).
    assert res2.metrics["resumed_at_step"] == 6 and "resumed_at_step" not in res.metrics
    # Seeded: the same run twice gives the same weights.
    res3 = train(samples, 2, cfg, device="cpu", out_dir=tmp_path / "d")
    a = torch.load(res.checkpoint, weights_only=False)["state_dict"]
    b = torch.load(res3.checkpoint, weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The predictor maps back to each image's own grid, for 2D slices and volumes.
    pred = load_predictor(res.checkpoint, device="cpu")
    vol = np.stack([make_dataset(1, 50, 1, seed=9)[0][0]] * 3)  # (3, 1, 50, 50)
    labels = pred.predict_volume(vol)
    assert labels.shape == (3, 50, 50) and labels.dtype == np.uint8 and labels.max() <= 1
    assert pred.predict_image(np.random.rand(1, 37, 61).astype(np.float32)).shape == (37, 61)
    with pytest.raises(ValueError, match="expected slices"):
        pred.predict_slices(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="does not match"):
        other = TrainConfig.from_dict({**cfg.to_dict(), "network": "enet", "network_kwargs": {}})
        train(
            samples, 2, other, device="cpu", init_checkpoint=res.checkpoint, out_dir=tmp_path / "e"
        )
    # Same network, other width: refused by name, not by a torch size-mismatch dump.
    wider = TrainConfig.from_dict({**cfg.to_dict(), "network_kwargs": {"width": 16, "depth": 3}})
    with pytest.raises(ValueError, match=r"does not match: unet \{'width': 8"):
        train(
            samples, 2, wider, device="cpu", init_checkpoint=res.checkpoint, out_dir=tmp_path / "f"
        )


def test_metrics_dice_hd95() -> None:
    ref = np.zeros((40, 40), np.uint8)
    ref[10:20, 10:20] = 1
    pred = np.zeros_like(ref)
    pred[10:20, 12:22] = 1
    d = dice(pred, ref, 3)
    assert d[1] == pytest.approx(2 * 80 / 200) and d[2] == 1.0
    h = hd95(pred, ref, 3, (1.0, 0.5))
    assert h[1] == pytest.approx(1.0) and h[2] == 0.0  # 2 px along columns of 0.5 mm
    assert math.isnan(hd95(pred, np.zeros_like(ref), 2)[1])
    vol = np.stack([ref, ref])
    assert dice(vol, vol, 2)[1] == 1.0 and hd95(vol, vol, 2, (2.0, 1.0, 1.0))[1] == 0.0


def test_end_to_end_hints_only_reaches_dice(tmp_path: Path) -> None:
    """Seeded training on synthetic data with size + centroid hints only (no masks)."""
    train_set = _samples(24, 48, 1, seed=0, masks=False)
    # cpu-fast with a shorter schedule (about 120 steps) to keep the suite quick.
    cfg = TrainConfig.from_dict(
        {"preset": "cpu-fast", "grid": 48, "epochs": 40, "mu": 1.15, "val_every": 40}
    )
    res = train(train_set, 2, cfg, device="cpu", out_dir=tmp_path)
    pred = load_predictor(res.checkpoint, device="cpu")
    test = make_dataset(8, 48, 1, seed=123)
    labels = pred.predict_slices(np.stack([img for img, _ in test]))
    scores = [dice(lab, m, 2)[1] for lab, (_, m) in zip(labels, test, strict=True)]
    assert float(np.mean(scores)) > 0.8, scores


def test_cli_train_and_evaluate(tmp_path: Path) -> None:
    from PIL import Image

    from models.cli import app

    imgs, masks = tmp_path / "img", tmp_path / "masks"
    imgs.mkdir()
    masks.mkdir()
    hints: dict = {"classes": ["LV"], "images": {}}
    for i, (img, m) in enumerate(make_dataset(4, 40, 1, seed=5)):
        name = f"s{i}.png"
        Image.fromarray((img[0] * 255).astype(np.uint8)).save(imgs / name)
        Image.fromarray(m).save(masks / name)
        hints["images"][name] = make_hints(m, 1, seed=i)
    (tmp_path / "hints.json").write_text(json.dumps(hints))
    runner = CliRunner()
    out = tmp_path / "model"
    r = runner.invoke(
        app,
        [
            "train",
            str(imgs),
            str(tmp_path / "hints.json"),
            "--out",
            str(out),
            "--preset",
            "cpu-fast",
            "--config",
            '{"epochs": 2, "grid": 32}',
            "--device",
            "cpu",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (out / "model.pt").exists()
    r = runner.invoke(
        app, ["evaluate", str(out / "model.pt"), str(imgs), str(masks), "--device", "cpu"]
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.output.strip().splitlines()[-1])
    assert report["images"] == 4 and 0.0 <= report["classes"]["1"]["dice"] <= 1.0
    # Without a preset the budget's plan fits the drawings to the images before training.
    planned = tmp_path / "planned"
    r = runner.invoke(
        app,
        [
            *("train", str(imgs), str(tmp_path / "hints.json"), "--out", str(planned)),
            *("--budget", "quick", "--config", '{"epochs": 1, "grid": 32}', "--device", "cpu"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "fitting the drawn hints" in r.output and (planned / "model.pt").exists()

    def planned_intensity(output: str) -> float:
        line = next(x for x in output.splitlines() if x.startswith("training about"))
        return json.loads(line.split(": ", 1)[1])["p_intensity"]

    # Grey images change their intensities on every sample from the standard budget up (on
    # half at quick), colour ones on half; grey saved as RGB (three equal channels) is grey.
    assert planned_intensity(r.output) == 0.5
    for kind, tint in (("grey-rgb", 0), ("colour", 40)):
        folder = tmp_path / kind
        folder.mkdir()
        for f in imgs.iterdir():
            rgb = np.asarray(Image.open(f).convert("RGB")).copy()
            rgb[..., 2] = np.clip(rgb[..., 2].astype(int) + tint, 0, 255).astype(np.uint8)
            Image.fromarray(rgb).save(folder / f.name)
        r = runner.invoke(
            app,
            [
                *("train", str(folder), str(tmp_path / "hints.json"), "--out", str(planned)),
                *("--budget", "standard", "--config", '{"epochs": 1, "grid": 32}'),
                *("--device", "cpu"),
            ],
        )
        assert r.exit_code == 0, r.output
        assert planned_intensity(r.output) == (1.0 if tint == 0 else 0.5), kind
    bad = dict(hints)
    bad["images"] = {"s0.png": {"LV": {"size": [50, 10]}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    r = runner.invoke(app, ["train", str(imgs), str(tmp_path / "bad.json"), "--out", str(out)])
    assert r.exit_code != 0 and "LV" in r.output and "size" in r.output


def test_a_union_of_classes_is_constrained_by_its_own_row(tmp_path: Path) -> None:
    """Classes 1 and 2 carry no bounds of their own; only their sum is bounded (a ring and
    the class in its hole): training must bring the two classes' joint area into it."""
    img, _ = make_dataset(1, 32, 2, seed=4)[0]
    free = B.ClassBounds(present=None)
    joint = B.ClassBounds(present=True).with_interval("size", 60.0, 90.0)
    lo, hi = B.stack([None, free, free, joint])
    cfg = TrainConfig.from_dict(
        {"epochs": 40, "batch_size": 1, "grid": 32, "lr": 5e-3, "augment": False, "seed": 1}
    )
    with pytest.raises(ValueError, match="bounds must be"):
        train([TrainSample(img, lo, hi)], 3, cfg, device="cpu", out_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="union"):
        train(
            [TrainSample(img, lo, hi)],
            3,
            cfg,
            device="cpu",
            out_dir=tmp_path / "y",
            unions=[[0, 1]],
        )
    joint_area = {}
    for name, rows, unions in (("with", 4, [[1, 2]]), ("without", 3, [])):
        sample = TrainSample(img, lo[:rows], hi[:rows])
        res = train([sample], 3, cfg, device="cpu", out_dir=tmp_path / name, unions=unions)
        labels = load_predictor(res.checkpoint, device="cpu").predict_image(img)
        joint_area[name] = int((labels > 0).sum())
    # The flag that turns the union rows off (an ablation) trains as without them.
    off = TrainConfig.from_dict({**cfg.to_dict(), "ring_unions": False})
    res = train(
        [TrainSample(img, lo, hi)], 3, off, device="cpu", out_dir=tmp_path / "off", unions=[[1, 2]]
    )
    joint_area["off"] = int(
        (load_predictor(res.checkpoint, device="cpu").predict_image(img) > 0).sum()
    )
    # Of 1024 px: unconstrained, the two classes take most of the image.
    assert joint_area["with"] <= 130 < 400 <= min(joint_area["without"], joint_area["off"]), (
        joint_area
    )


def test_training_re_measures_mask_derived_bounds_on_turned_samples(tmp_path: Path) -> None:
    """``remeasure_bounds``: samples carry the mask their bounds were measured around (the
    paper's setting, with a union row) and train with turns; a reference that is not the
    image's label map is refused by name."""
    samples = []
    for img, m in make_dataset(4, 32, 2, seed=5):
        filled = (m > 0).astype(np.uint8)
        lo, hi = B.stack([*B.from_mask(m, 3), B.from_mask(filled, 2)[1]])
        samples.append(TrainSample(img, lo, hi, reference=m))
    cfg = TrainConfig.from_dict(
        {"epochs": 2, "batch_size": 2, "grid": 32, "p_rotate": 1.0, "remeasure_bounds": True}
    )
    res = train(samples, 3, cfg, device="cpu", out_dir=tmp_path / "ok", unions=[[1, 2]])
    assert res.checkpoint.exists() and res.epochs == 2
    bad = TrainSample(samples[0].image, samples[0].lo, samples[0].hi, reference=np.zeros((5, 5)))
    with pytest.raises(ValueError, match="reference"):
        train([bad], 3, cfg, device="cpu", out_dir=tmp_path / "bad", unions=[[1, 2]])


def test_training_moves_scheduled_loss_weights_step_by_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``weights_end``: the constraint loss sees each scheduled term's weight rise from
    ``weights`` to ``weights_end`` by 70 % of the steps; without it the weights stay put.
    ``upper_only`` and ``narrow_t`` reach the constraint loss at every step, and with
    ``hard_length`` the argmax as a one-hot map (none without it)."""
    from models import train as train_module

    seen: list[dict[str, float]] = []
    open_below: list[tuple[str, ...]] = []
    hards: list[bool] = []
    narrow: list[bool] = []
    real = train_module.constraint_loss

    def recording(*args: object, **kwargs: object) -> object:
        seen.append(dict(kwargs["weights"]))  # type: ignore[call-overload]
        open_below.append(tuple(kwargs["upper_only"]))  # type: ignore[call-overload]
        hard = kwargs["hard"]
        if hard is not None:
            assert isinstance(hard, torch.Tensor) and hard.shape == args[0].shape  # type: ignore[attr-defined]
            assert torch.equal(hard.sum(1), torch.ones_like(hard[:, 0]))  # one class per pixel
            assert torch.equal(hard.argmax(1), args[0].argmax(1))  # type: ignore[attr-defined]
        hards.append(hard is not None)
        narrow.append(bool(kwargs["narrow_t"]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "constraint_loss", recording)
    samples = _samples(2, 32, 2, seed=6)
    base = {"epochs": 10, "batch_size": 2, "grid": 32, "augment": False, "weights": {"length": 0.1}}
    train(samples, 3, TrainConfig.from_dict(base), device="cpu", out_dir=tmp_path / "flat")
    assert [w["length"] for w in seen] == [0.1] * 10 and open_below == [()] * 10
    assert hards == [False] * 10 and narrow == [False] * 10
    seen.clear()
    open_below.clear()
    hards.clear()
    narrow.clear()
    ramp = TrainConfig.from_dict(
        {
            **base,
            "weights_end": {"length": 1.0},
            "upper_only": ["length"],
            "hard_length": True,
            "narrow_t": True,
        }
    )
    train(samples, 3, ramp, device="cpu", out_dir=tmp_path / "ramp")
    lengths = [w["length"] for w in seen]
    assert lengths[0] == pytest.approx(0.1) and lengths[7:] == pytest.approx([1.0] * 3)
    assert all(a < b for a, b in itertools.pairwise(lengths[:8]))
    assert open_below == [("length",)] * 10 and hards == [True] * 10 and narrow == [True] * 10


def test_bounds_open_where_the_sure_map_labels_every_pixel(tmp_path: Path) -> None:
    """``labelled_bounds=false``: a class whose sure map labels its whole slice (a fitted
    drawing) loses its bounds there, and so does a union of such classes; a class with any
    unlabelled pixel, a slice without a sure map and the background keep theirs."""
    from models.samples import open_labelled_bounds

    img, m = make_dataset(1, 32, 2, seed=5)[0]
    per_class = B.from_mask(m, 3, {"size": 0.2, "centroid": 2.0})
    joint = B.ClassBounds(present=True).with_interval("size", 10.0, 900.0)
    lo, hi = B.stack([*per_class, joint])
    sure = np.zeros((3, 32, 32), np.int8)
    sure[1] = np.where(m == 1, 1, -1)  # class 1: every pixel labelled
    sure[2] = np.where(m == 2, 1, 0)  # class 2: its inside only
    samples = [TrainSample(img, lo, hi, None, sure), TrainSample(img, lo, hi)]
    data = prepare(samples, 3, 32, num_unions=1)
    unions = torch.tensor([[0.0, 1.0, 1.0]])
    olo, ohi = open_labelled_bounds(data, unions)
    assert torch.isinf(olo[0, 1]).all() and torch.isinf(ohi[0, 1]).all()
    assert torch.equal(olo[0, 2], data.lo[0, 2]) and torch.equal(ohi[0, 3], data.hi[0, 3])
    assert torch.equal(olo[1], data.lo[1]) and torch.equal(ohi[1], data.hi[1])
    sure[2] = np.where(m == 2, 1, -1)  # both members labelled: the union opens too
    data = prepare([TrainSample(img, lo, hi, None, sure)], 3, 32, num_unions=1)
    olo, ohi = open_labelled_bounds(data, unions)
    assert torch.isinf(olo[0, 1:]).all() and torch.isinf(ohi[0, 1:]).all()
    assert torch.equal(olo[0, 0], data.lo[0, 0])
    # Training takes the flag (validated as a boolean like the others).
    cfg = TrainConfig.from_dict(
        {"epochs": 1, "batch_size": 1, "grid": 32, "labelled_bounds": False, "sure_weight": 1.0}
    )
    res = train(samples[:1], 3, cfg, device="cpu", out_dir=tmp_path / "open", unions=[[1, 2]])
    assert res.checkpoint.exists()
    with pytest.raises(ValueError, match="labelled_bounds"):
        TrainConfig.from_dict({"labelled_bounds": "no"})


def test_the_checkpoint_carries_its_normalisation(tmp_path: Path) -> None:
    samples = _samples(2, 40, 1)
    cfg = TrainConfig.from_dict(
        {"epochs": 1, "batch_size": 2, "grid": 32, "normalisation": "percentile"}
    )
    res = train(samples, 2, cfg, device="cpu", out_dir=tmp_path / "a")
    ck = torch.load(res.checkpoint, weights_only=False)
    assert ck["normalisation"] == "percentile"
    assert load_predictor(res.checkpoint, device="cpu").normalisation == "percentile"
    # A bright flare in a new image changes nothing for this predictor.
    img = samples[0].image.copy()
    flared = img.copy()
    flared[0, 0, :3] = img.max() * 50
    pred = load_predictor(res.checkpoint, device="cpu")
    a, b = pred.predict_proba(img[None]), pred.predict_proba(flared[None])
    assert np.abs(a[..., 4:, :] - b[..., 4:, :]).max() < 0.05
    # Files from before the choice were min-max; an unknown method is refused by name.
    del ck["normalisation"]
    torch.save(ck, tmp_path / "old.pt")
    assert load_predictor(tmp_path / "old.pt", device="cpu").normalisation == "minmax"
    for bad in ("zscore", "auto"):  # "auto" is resolved before any checkpoint is written
        ck["normalisation"] = bad
        torch.save(ck, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match=bad):
            load_predictor(tmp_path / "bad.pt", device="cpu")
    # "auto": colour images by their percentiles, one-channel scans by min and max.
    auto = TrainConfig.from_dict({**cfg.to_dict(), "normalisation": "auto"})
    res = train(samples, 2, auto, device="cpu", out_dir=tmp_path / "gray")
    assert load_predictor(res.checkpoint, device="cpu").normalisation == "minmax"
    colour = [TrainSample(np.repeat(s.image, 3, axis=0), s.lo, s.hi, s.mask) for s in samples]
    auto = TrainConfig.from_dict({**cfg.to_dict(), "normalisation": "auto"})
    res = train(colour, 2, auto, device="cpu", out_dir=tmp_path / "colour")
    assert torch.load(res.checkpoint, weights_only=False)["normalisation"] == "percentile"
    assert auto.normalisation == "percentile"  # the config as trained, as a re-plan leaves it


def test_tta_averages_only_the_views_the_network_trained_on(tmp_path: Path) -> None:
    from models.budget import ProjectFacts, default_for
    from models.infer import Predictor, tta_views

    flips = (("flip", 1.0), ("flip", 2.0), ("flip", 3.0))
    assert tta_views({"p_flip": 0.5}) == flips
    turns = tta_views({"p_flip": 0.0, "p_rotate": 0.5, "rotate_max": 30.0})
    assert turns == (("turn", -math.radians(15.0)), ("turn", math.radians(15.0)))
    assert tta_views({"p_flip": 0.0, "p_rotate": 0.0}) == ()
    # The product's plan trains with turns and no flips: its tta averages turns only.
    facts = ProjectFacts(num_slices=40, max_side=256, smallest_structure=30.0)
    assert tta_views(default_for(facts, "cpu", "standard").to_dict()) == turns

    # A checkpoint's views come from its own training config.
    samples = _samples(2, 40, 1)
    cfg = {"epochs": 1, "batch_size": 2, "grid": 32, "tta": True, "p_flip": 0.0}
    turned_cfg = TrainConfig.from_dict({**cfg, "p_rotate": 0.5})
    res = train(samples, 2, turned_cfg, device="cpu", out_dir=tmp_path)
    pred = load_predictor(res.checkpoint, device="cpu")
    assert pred.tta and pred.views == turns

    # Turned views map back onto the slice: a per-pixel network (class 1 where the image is
    # bright) predicts a disc the same with or without them, and every pixel's probabilities
    # still sum to 1 where a turned view did not see it (the grid's corners).
    net = torch.nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        net.weight[:] = torch.tensor([-10.0, 10.0]).view(2, 1, 1, 1)
        net.bias[:] = torch.tensor([5.0, -5.0])
    yy, xx = np.mgrid[:32, :32]
    disc = (((yy - 15.5) ** 2 + (xx - 15.5) ** 2) < 100).astype(np.float32)[None, None]
    plain = Predictor(net, 2, 1, 32, torch.device("cpu")).predict_proba(disc)
    turned = Predictor(net, 2, 1, 32, torch.device("cpu"), tta=True, views=turns)
    avg = turned.predict_proba(disc)
    assert np.allclose(avg.sum(1), 1.0, atol=1e-5)
    assert (avg.argmax(1) == plain.argmax(1)).mean() > 0.98
    # A view the network never saw changes what it predicts: a network that knows where the
    # left is (class 1 on the left half, whatever the image) loses it under flips.
    left = _LeftHalf()
    flipped = Predictor(left, 2, 1, 32, torch.device("cpu"), tta=True, views=flips)
    assert (flipped.predict_proba(disc)[0, 1] > 0.5).mean() < 0.1
    assert (
        Predictor(left, 2, 1, 32, torch.device("cpu")).predict_proba(disc)[0, 1] > 0.5
    ).mean() == 0.5


class _LeftHalf(torch.nn.Module):
    """A network that ignores its image: logits ``(N, 2, G, G)`` for class 1 on the left half of
    the grid, class 0 on the right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.shape[-1]
        side = ((torch.arange(g) < g // 2).float() * 10 - 5).view(1, 1, 1, g)
        return torch.cat([-side, side], 1).expand(x.shape[0], 2, g, g)
