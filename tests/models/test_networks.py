"""ENet of the ``paper`` preset vs the paper's code; the light variant; odd input sizes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.config import PRESETS
from models.networks import ENet, ENetLight, build_network, legacy_network_name

# The ENet of the paper's code (LIVIAETS/boundary-loss networks.py + models/enet.py), rebuilt and
# measured on a (1, 1, 256, 256) image with 2 classes: parameters of the modules its forward
# calls, and FlopCounterMode FLOPs (a multiply-add counts as 2).
REFERENCE_PARAMS = 458_247
REFERENCE_GFLOP = 2.0786


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # On a shared 2-core machine two OpenMP threads spin against each other (~100x slower).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _used_params_and_flops(net: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """Parameters of the modules one forward of ``x`` calls, and that forward's FLOPs."""
    called: set[nn.Module] = set()
    hooks = [m.register_forward_pre_hook(lambda m, _a: called.add(m)) for m in net.modules()]
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return sum(p.numel() for m in called for p in m.parameters(recurse=False)), fc.get_total_flops()


def _paper_enet() -> nn.Module:
    cfg = PRESETS["paper"]
    return build_network(cfg.network, 1, 2, **cfg.network_kwargs).eval()


def test_paper_enet_matches_reference_params_and_flops() -> None:
    net = _paper_enet()
    assert isinstance(net, ENet)
    params, flops = _used_params_and_flops(net, torch.rand(1, 1, 256, 256))
    assert params == sum(p.numel() for p in net.parameters())  # no unused modules
    assert abs(params / REFERENCE_PARAMS - 1) < 0.10
    assert abs(flops / 1e9 / REFERENCE_GFLOP - 1) < 0.10


@pytest.mark.parametrize(
    ("name", "channels", "hw"),
    [("enet", 3, (33, 47)), ("enet", 1, (7, 9)), ("enet-light", 1, (7, 9))],
)
def test_any_size_and_backward(name: str, channels: int, hw: tuple[int, int]) -> None:
    net = build_network(name, channels, 3)
    x = torch.randn(2, channels, *hw, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 3, *hw)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert net.output_layer.bias is not None  # the trainer sets it to the class prior


def test_light_variant_loads_earlier_enet_checkpoints() -> None:
    light = build_network("enet-light", 1, 4)
    assert isinstance(light, ENetLight)
    assert sum(p.numel() for p in light.parameters()) < 0.8 * REFERENCE_PARAMS
    state = light.state_dict()  # the layout of checkpoints saved as "enet" before the switch
    assert legacy_network_name("enet", state) == "enet-light"
    assert legacy_network_name("enet", build_network("enet", 1, 4).state_dict()) == "enet"
    assert legacy_network_name("unet", state) == "unet"
    with pytest.raises(ValueError, match="enet-light"):
        build_network("enet", 1, 4).load_state_dict(state)
    build_network("enet-light", 1, 4).load_state_dict(state)


def test_too_many_channels_for_width() -> None:
    with pytest.raises(ValueError, match="too small"):
        build_network("enet", 16, 2, width=16)


def test_a_checkpoint_saved_as_enet_before_the_paper_enet_still_predicts(tmp_path: Path) -> None:
    from models.infer import load_predictor
    from models.synthetic import make_dataset
    from models.train import TrainConfig, TrainSample, train

    img, m = make_dataset(1, 32, 1, seed=2)[0]
    lo, hi = np.full((2, 9), -np.inf, np.float32), np.full((2, 9), np.inf, np.float32)
    cfg = TrainConfig.from_dict(
        {"epochs": 1, "batch_size": 1, "grid": 32, "network": "enet-light", "network_kwargs": {}}
    )
    res = train([TrainSample(img, lo, hi, m)], 2, cfg, device="cpu", out_dir=tmp_path)
    ck = torch.load(res.checkpoint, weights_only=False)
    expected = load_predictor(res.checkpoint, device="cpu").predict_image(img)
    ck["network"] = "enet"  # what such a checkpoint recorded before
    old = tmp_path / "old.pt"
    torch.save(ck, old)
    assert np.array_equal(load_predictor(old, device="cpu").predict_image(img), expected)
