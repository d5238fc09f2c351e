"""2D segmentation networks: ENet (Paszke et al. 2016, the paper's network) and a small UNet.

Both map ``(B, C, H, W)`` images to ``(B, K, H, W)`` logits for any C and K. Inputs whose sides
are not multiples of the network's stride are padded (replicate) and the output cropped back.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _pad_to(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


# ------------------------------------------------------------------------------------ ENet


class _Initial(nn.Module):
    """Strided 3x3 conv concatenated with a max-pool of the input -> ``out`` channels at 1/2."""

    def __init__(self, cin: int, out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, out - cin, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out)
        self.act = nn.PReLU(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.conv(x), F.max_pool2d(x, 2)], 1)
        return self.act(self.bn(y))


class _Bottleneck(nn.Module):
    """ENet bottleneck: 1x1 reduce, main conv (regular / dilated / asymmetric), 1x1 expand."""

    def __init__(
        self,
        ch: int,
        *,
        dilation: int = 1,
        asymmetric: int = 0,
        dropout: float = 0.1,
        ratio: int = 4,
    ) -> None:
        super().__init__()
        mid = ch // ratio
        if asymmetric:
            k = asymmetric
            main: nn.Module = nn.Sequential(
                nn.Conv2d(mid, mid, (k, 1), padding=(k // 2, 0), bias=False),
                nn.Conv2d(mid, mid, (1, k), padding=(0, k // 2), bias=False),
            )
        else:
            main = nn.Conv2d(mid, mid, 3, padding=dilation, dilation=dilation, bias=False)
        self.branch = nn.Sequential(
            nn.Conv2d(ch, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            main,
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, ch, 1, bias=False),
            nn.BatchNorm2d(ch),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))


class _Down(nn.Module):
    """Downsampling bottleneck; returns the max-pool indices for the matching ``_Up``."""

    def __init__(self, cin: int, cout: int, dropout: float, ratio: int = 4) -> None:
        super().__init__()
        mid = cin // ratio
        self.branch = nn.Sequential(
            nn.Conv2d(cin, mid, 2, stride=2, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.Dropout2d(dropout),
        )
        self.extra = cout - cin
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, idx = F.max_pool2d(x, 2, return_indices=True)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra))  # zero channels to match cout
        return self.act(main + self.branch(x)), idx


class _Up(nn.Module):
    """Upsampling bottleneck: max-unpool of a 1x1-projected main path + transposed-conv branch."""

    def __init__(self, cin: int, cout: int, dropout: float, ratio: int = 4) -> None:
        super().__init__()
        mid = cin // ratio
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.branch = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.ConvTranspose2d(mid, mid, 2, stride=2, bias=False),
            nn.BatchNorm2d(mid),
            nn.PReLU(mid),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.Dropout2d(dropout),
        )
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        main = F.max_unpool2d(self.proj(x), idx, 2)
        return self.act(main + self.branch(x))


class ENet(nn.Module):
    """ENet for ``(B, C, H, W)`` -> ``(B, K, H, W)`` logits (~0.35 M parameters at width 16).

    ``width`` scales the channel counts (16, 64, 128 in the original).
    """

    stride = 8

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 4 * width, 8 * width
        if in_channels >= c1:
            raise ValueError(f"ENet width {width} too small for {in_channels} input channels")
        self.initial = _Initial(in_channels, c1)
        self.down1 = _Down(c1, c2, 0.01)
        self.stage1 = nn.Sequential(*[_Bottleneck(c2, dropout=0.01) for _ in range(4)])
        self.down2 = _Down(c2, c3, 0.1)

        def stage() -> nn.Sequential:
            return nn.Sequential(
                _Bottleneck(c3),
                _Bottleneck(c3, dilation=2),
                _Bottleneck(c3, asymmetric=5),
                _Bottleneck(c3, dilation=4),
                _Bottleneck(c3),
                _Bottleneck(c3, dilation=8),
                _Bottleneck(c3, asymmetric=5),
                _Bottleneck(c3, dilation=16),
            )

        self.stage2 = stage()
        self.stage3 = stage()
        self.up4 = _Up(c3, c2, 0.1)
        self.stage4 = nn.Sequential(_Bottleneck(c2), _Bottleneck(c2))
        self.up5 = _Up(c2, c1, 0.1)
        self.stage5 = _Bottleneck(c1)
        self.full = nn.ConvTranspose2d(c1, num_classes, 2, stride=2)

    @property
    def output_layer(self) -> nn.Module:
        """The last layer (its bias sets the initial class proportions)."""
        return self.full

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = _pad_to(x, self.stride)
        y = self.initial(x)
        y, i1 = self.down1(y)
        y = self.stage1(y)
        y, i2 = self.down2(y)
        y = self.stage3(self.stage2(y))
        y = self.stage4(self.up4(y, i2))
        y = self.stage5(self.up5(y, i1))
        return self.full(y)[..., :h, :w]


# ------------------------------------------------------------------------------------ UNet


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Small UNet: ``depth`` poolings, ``width`` channels at full resolution, doubling per level."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.stride = 2**depth
        chans = [width * 2**i for i in range(depth + 1)]
        self.enc = nn.ModuleList([_block(in_channels, chans[0])])
        self.enc.extend(_block(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.dec = nn.ModuleList(_block(2 * chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    @property
    def output_layer(self) -> nn.Module:
        """The last layer (its bias sets the initial class proportions)."""
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = _pad_to(x, self.stride)
        skips = []
        y = x
        for i, enc in enumerate(self.enc):
            y = enc(y if i == 0 else F.max_pool2d(y, 2))
            skips.append(y)
        skips.pop()
        for up, dec in zip(self.up, self.dec, strict=True):
            y = dec(torch.cat([up(y), skips.pop()], 1))
        return self.head(y)[..., :h, :w]


NETWORKS: dict[str, type[nn.Module]] = {"enet": ENet, "unet": UNet}


def build_network(name: str, in_channels: int, num_classes: int, **kwargs: Any) -> nn.Module:
    """Instantiate a registered network by name (``"enet"`` | ``"unet"``)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose from {sorted(NETWORKS)}")
    return NETWORKS[name](in_channels, num_classes, **kwargs)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
