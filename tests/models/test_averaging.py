"""Weight averaging (``TrainConfig.ema_decay``): the average itself, and what training saves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.train_fit import live_weights
from models import bounds as B
from models.averaging import averaged_network, warmed_decay
from models.infer import load_predictor
from models.synthetic import make_dataset
from models.train import TrainConfig, TrainSample, train


def test_warmed_decay_rises_to_the_decay() -> None:
    assert warmed_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmed_decay(0.999, 10**6) == 0.999
    assert warmed_decay(0.5, 50) == 0.5


def test_the_average_follows_parameters_and_batchnorm_statistics() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    assert averaged_network(net, 0.0) is None
    avg = averaged_network(net, 0.9)
    assert avg is not None
    seen = []
    for value in (1.0, 3.0, 7.0):
        with torch.no_grad():
            net[0].weight.fill_(value)
            net[1].running_mean.fill_(-value)
        avg.update_parameters(net)
        seen.append(value)
    # first update copies, then lerp with the warmed decays 2/11 and 3/12
    expect = 1.0
    for n, value in enumerate(seen[1:], start=1):
        d = warmed_decay(0.9, n)
        expect = d * expect + (1 - d) * value
    assert float(avg.module[0].weight[0, 0].detach()) == pytest.approx(expect)
    assert float(avg.module[1].running_mean[0]) == pytest.approx(-expect)
    assert float(net[0].weight[0, 0].detach()) == 7.0  # the live network is left alone


def _bounds_only(n: int) -> list[TrainSample]:
    out = []
    for img, m in make_dataset(n, 40, 1, seed=2):
        lo, hi = B.stack(B.from_mask(m, 2, {"size": 0.1, "centroid": 0.05}))
        out.append(TrainSample(img, lo, hi, None))
    return out


def _weights(path: Path, key: str = "state_dict") -> dict[str, torch.Tensor]:
    ck = torch.load(path, weights_only=False)
    return ck["resume"][key] if key == "train_state_dict" else ck[key]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_training_saves_the_average_and_resumes_it(tmp_path: Path) -> None:
    samples = _bounds_only(4)
    base = {"epochs": 3, "batch_size": 2, "grid": 32, "val_every": 1}
    plain = train(samples, 2, TrainConfig.from_dict(base), device="cpu", out_dir=tmp_path / "p")
    cfg = TrainConfig.from_dict({**base, "ema_decay": 0.9})
    res = train(samples, 2, cfg, device="cpu", out_dir=tmp_path / "e")
    last = res.checkpoint.parent / "last.pt"
    # Averaging does not change training: the live weights are the plain run's, bit for bit.
    assert _same(_weights(last, "train_state_dict"), _weights(plain.checkpoint))
    # What predicts (model.pt, and last.pt's weights) is the average, not the live network.
    averaged = _weights(res.checkpoint)
    assert _same(averaged, _weights(last))
    assert not _same(averaged, _weights(plain.checkpoint))
    # ``train_fit.py --live`` scores the live weights as a checkpoint of their own.
    live = live_weights(last, tmp_path / "live.pt")
    assert _same(_weights(live), _weights(plain.checkpoint))
    with pytest.raises(ValueError, match="no live weights"):
        live_weights(plain.checkpoint.parent / "last.pt", tmp_path / "none.pt")
    plain_last = torch.load(plain.checkpoint.parent / "last.pt", weights_only=False)
    assert "train_state_dict" not in plain_last["resume"]
    # Resumed past its end, the run saves the average it had, not the live weights.
    again = TrainConfig.from_dict({**cfg.to_dict(), "resume": True})
    res2 = train(samples, 2, again, device="cpu", init_checkpoint=last, out_dir=tmp_path / "r")
    assert _same(_weights(res2.checkpoint), averaged)
    # Resumed for one more epoch, it continues from both: the live network from the live
    # weights (as a plain run resumed the same way), the average from the saved average.
    more = TrainConfig.from_dict({**cfg.to_dict(), "epochs": 4, "resume": True})
    res3 = train(samples, 2, more, device="cpu", init_checkpoint=last, out_dir=tmp_path / "m")
    assert res3.metrics["steps"] == 8
    plain_more = TrainConfig.from_dict({**base, "epochs": 4, "resume": True})
    plain_last_path = plain.checkpoint.parent / "last.pt"
    res4 = train(
        samples,
        2,
        plain_more,
        device="cpu",
        init_checkpoint=plain_last_path,
        out_dir=tmp_path / "q",
    )
    live3 = _weights(res3.checkpoint.parent / "last.pt", "train_state_dict")
    assert _same(live3, _weights(res4.checkpoint))
    assert not _same(_weights(res3.checkpoint), averaged)
    assert not _same(_weights(res3.checkpoint), live3)
    assert load_predictor(res3.checkpoint, device="cpu").predict_image(
        make_dataset(1, 40, 1, seed=5)[0][0]
    ).shape == (40, 40)


def test_ema_decay_is_range_checked() -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig.from_dict({"ema_decay": 1.0})
    assert TrainConfig.from_dict({}).ema_decay == 0.0
