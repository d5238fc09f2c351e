"""2D segmentation networks: ENet (Paszke et al. 2016, as in the paper's code), a lighter ENet
and a small UNet.

All map ``(B, C, H, W)`` images to ``(B, K, H, W)`` logits for any C and K. Inputs whose sides
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


def _conv_bn_act(
    cin: int,
    cout: int,
    kernel: int | tuple[int, int] = 1,
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
    bias: bool = True,
) -> nn.Sequential:
    """Conv, BatchNorm, PReLU (one slope): ``(B, cin, H, W)`` -> ``(B, cout, H', W')``."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias),
        nn.BatchNorm2d(cout),
        nn.PReLU(),
    )


class _Bottleneck(nn.Module):
    """Residual bottleneck ``(B, cin, H, W)`` -> ``(B, cout, H, W)``.

    Branch: 1x1 reduce to ``cin // 4``, a main conv (3x3, dilated 3x3 or 5x1 + 1x5), 1x1 expand,
    each with BatchNorm and PReLU, then dropout. Shortcut: identity when ``cin == cout``, else a
    ``shortcut``-sized conv (1: 1x1 conv-BN-PReLU; 3: a plain 3x3 conv).
    """

    def __init__(
        self,
        cin: int,
        cout: int | None = None,
        *,
        dilation: int = 1,
        asymmetric: bool = False,
        dropout: float = 0.1,
        shortcut: int = 1,
    ) -> None:
        super().__init__()
        cout = cin if cout is None else cout
        mid = max(1, cin // 4)
        if asymmetric:
            main: nn.Module = nn.Sequential(
                nn.Conv2d(mid, mid, (5, 1), padding=(2, 0)),
                nn.Conv2d(mid, mid, (1, 5), padding=(0, 2)),
                nn.BatchNorm2d(mid),
                nn.PReLU(),
            )
        else:
            main = _conv_bn_act(mid, mid, 3, padding=dilation, dilation=dilation)
        self.branch = nn.Sequential(
            _conv_bn_act(cin, mid), main, _conv_bn_act(mid, cout), nn.Dropout(dropout)
        )
        self.shortcut: nn.Module
        if cin == cout:
            self.shortcut = nn.Identity()
        elif shortcut == 3:
            self.shortcut = nn.Conv2d(cin, cout, 3, padding=1)
        else:
            self.shortcut = _conv_bn_act(cin, cout)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.branch(x))


class _Down(nn.Module):
    """Downsampling bottleneck ``(B, cin, H, W)`` -> ``(B, cout, H/2, W/2)`` and pool indices.

    Main path: 2x2 max-pool, zero channels appended up to ``cout``. Branch: 2x2 stride-2 conv to
    ``cin // 4``, 3x3 conv, 1x1 expand (each BN + PReLU), dropout. The indices ``(B, cin, H/2,
    W/2)`` are for the decoder's max-unpool.
    """

    def __init__(self, cin: int, cout: int, dropout: float = 0.01) -> None:
        super().__init__()
        mid = max(1, cin // 4)
        self.branch = nn.Sequential(
            _conv_bn_act(cin, mid, 2, stride=2),
            _conv_bn_act(mid, mid, 3, padding=1),
            _conv_bn_act(mid, cout),
            nn.Dropout(dropout),
        )
        self.extra = cout - cin
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        main, idx = F.max_pool2d(x, 2, return_indices=True)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra))  # zero channels up to cout
        return self.act(main + self.branch(x)), idx


class _Fuse(nn.Module):
    """Decoder branch on ``cat(unpooled, skip)``: ``(B, 2 * ch, H, W)`` -> ``(B, ch, H, W)``.

    3x3 conv to ``ch // 2``, 3x3 conv, 1x1 expand to ``ch`` (each BN + PReLU), dropout.
    """

    def __init__(self, ch: int, dropout: float = 0.01) -> None:
        super().__init__()
        mid = max(1, ch // 2)
        self.branch = nn.Sequential(
            _conv_bn_act(2 * ch, mid, 3, padding=1),
            _conv_bn_act(mid, mid, 3, padding=1),
            _conv_bn_act(mid, ch),
            nn.Dropout(dropout),
        )

    def forward(self, unpooled: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.branch(torch.cat([unpooled, skip], 1))


class ENet(nn.Module):
    """ENet as in the paper's code (Kervadec et al.): ``(B, C, H, W)`` -> ``(B, K, H, W)`` logits.

    At width 16, 1 channel in, 2 classes: 0.46 M parameters, 2.07 GFLOP per 256 x 256 forward
    (``torch.utils.flop_counter``, a multiply-add counted as 2). With ``c1, c2, c3 = w, 4w, 8w``:

    - initial ``(C, H)`` -> ``(c1, H/2)``: strided 3x3 conv to ``c1 - C`` channels + max-pool;
    - ``down1`` -> ``(c2, H/4)``, 4 bottlenecks; ``down2`` -> ``(c3, H/8)``;
    - two groups of 8 bottlenecks (regular, dilated 2, asymmetric 5, dilated 4, regular,
      dilated 8, asymmetric 5, dilated 16); the last one maps to ``c2``;
    - max-unpool -> ``(c2, H/4)``, fused with the ``H/4`` encoder features, 2 bottlenecks to
      ``c1``; max-unpool -> ``(c1, H/2)``, fused with the initial features, 1 bottleneck;
    - nearest 2x upsampling and two 3x3 conv-BN-PReLU at full resolution, 1x1 conv to K.

    Sides that are not multiples of 8 are padded (replicate) and the output cropped back.
    """

    stride = 8

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 4 * width, 8 * width
        if in_channels >= c1:
            raise ValueError(f"ENet width {width} too small for {in_channels} input channels")
        self.initial = nn.Conv2d(in_channels, c1 - in_channels, 3, stride=2, padding=1)
        self.down1 = _Down(c1, c2)
        self.stage1 = nn.Sequential(*[_Bottleneck(c2, dropout=0.01) for _ in range(4)])
        self.down2 = _Down(c2, c3)

        def group(last: int) -> nn.Sequential:
            return nn.Sequential(
                _Bottleneck(c3),
                _Bottleneck(c3, dilation=2, dropout=0.01),
                _Bottleneck(c3, asymmetric=True),
                _Bottleneck(c3, dilation=4, dropout=0.01),
                _Bottleneck(c3),
                _Bottleneck(c3, dilation=8, dropout=0.01),
                _Bottleneck(c3, asymmetric=True),
                _Bottleneck(c3, last, dilation=16, dropout=0.01, shortcut=3),
            )

        self.stage2 = group(c3)
        self.stage3 = group(c2)
        self.fuse4 = _Fuse(c2)
        self.act4 = nn.PReLU()
        self.stage4 = nn.Sequential(_Bottleneck(c2), _Bottleneck(c2, c1))
        self.fuse5 = _Fuse(c1)
        self.stage5 = _Bottleneck(c1)
        self.act5 = nn.PReLU()
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            _conv_bn_act(c1, c1, 3, padding=1, bias=False),
            _conv_bn_act(c1, c1, 3, padding=1, bias=False),
        )
        self.final = nn.Conv2d(c1, num_classes, 1)

    @property
    def output_layer(self) -> nn.Module:
        """The last layer (its bias sets the initial class proportions)."""
        return self.final

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, (h, w) = _pad_to(x, self.stride)
        y0 = torch.cat([self.initial(x), F.max_pool2d(x, 2)], 1)  # (B, c1, H/2, W/2)
        y, i1 = self.down1(y0)
        y1 = self.stage1(y)  # (B, c2, H/4, W/4)
        y, i2 = self.down2(y1)
        y = self.stage3(self.stage2(y))  # (B, c2, H/8, W/8)
        u = F.max_unpool2d(y, i2, 2, output_size=y1.shape[-2:])
        y = self.stage4(self.act4(u + self.fuse4(u, y1)))  # (B, c1, H/4, W/4)
        u = F.max_unpool2d(y, i1, 2, output_size=y0.shape[-2:])
        y = self.act5(u + self.stage5(self.fuse5(u, y0)))  # (B, c1, H/2, W/2)
        return self.final(self.head(y))[..., :h, :w]

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """As ``nn.Module``'s; a checkpoint of the earlier ``"enet"`` layout gets a clear error."""
        if legacy_network_name("enet", state_dict) == "enet-light":
            raise ValueError(
                "this state dict is the earlier, lighter ENet's (saved as 'enet' before the "
                "switch to the paper's ENet): build it as 'enet-light' (see legacy_network_name)"
            )
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


# ------------------------------------------------------------------------- ENet (light)


class _LightInitial(nn.Module):
    """Strided 3x3 conv concatenated with a max-pool of the input -> ``out`` channels at 1/2."""

    def __init__(self, cin: int, out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, out - cin, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out)
        self.act = nn.PReLU(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.conv(x), F.max_pool2d(x, 2)], 1)
        return self.act(self.bn(y))


class _LightBottleneck(nn.Module):
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


class _LightDown(nn.Module):
    """Downsampling bottleneck; returns the max-pool indices for the matching ``_LightUp``."""

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


class _LightUp(nn.Module):
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


class ENetLight(nn.Module):
    """The project's earlier, lighter ENet (``"enet-light"``): ``(B, C, H, W)`` -> ``(B, K, H, W)``.

    0.35 M parameters and 0.92 GFLOP per 256 x 256 forward at width 16 (``ENet``: 0.46 M,
    2.07 GFLOP): no encoder-decoder skips, a 2x2 transposed conv as the full-resolution head.
    Its state-dict layout is that of checkpoints saved as ``"enet"`` before the switch.
    """

    stride = 8

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 4 * width, 8 * width
        if in_channels >= c1:
            raise ValueError(f"ENet width {width} too small for {in_channels} input channels")
        self.initial = _LightInitial(in_channels, c1)
        self.down1 = _LightDown(c1, c2, 0.01)
        self.stage1 = nn.Sequential(*[_LightBottleneck(c2, dropout=0.01) for _ in range(4)])
        self.down2 = _LightDown(c2, c3, 0.1)

        def stage() -> nn.Sequential:
            return nn.Sequential(
                _LightBottleneck(c3),
                _LightBottleneck(c3, dilation=2),
                _LightBottleneck(c3, asymmetric=5),
                _LightBottleneck(c3, dilation=4),
                _LightBottleneck(c3),
                _LightBottleneck(c3, dilation=8),
                _LightBottleneck(c3, asymmetric=5),
                _LightBottleneck(c3, dilation=16),
            )

        self.stage2 = stage()
        self.stage3 = stage()
        self.up4 = _LightUp(c3, c2, 0.1)
        self.stage4 = nn.Sequential(_LightBottleneck(c2), _LightBottleneck(c2))
        self.up5 = _LightUp(c2, c1, 0.1)
        self.stage5 = _LightBottleneck(c1)
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


NETWORKS: dict[str, type[nn.Module]] = {"enet": ENet, "enet-light": ENetLight, "unet": UNet}


def legacy_network_name(name: str, state_dict: Any) -> str:
    """The network a checkpoint's ``state_dict`` was saved from, given its recorded ``name``.

    Checkpoints saved as ``"enet"`` before ``ENet`` became the paper's network hold the light
    variant's layout: for those, ``"enet-light"``; otherwise ``name`` unchanged.
    """
    if name == "enet" and "stage1.0.branch.0.weight" in state_dict:
        return "enet-light"
    return name


def build_network(name: str, in_channels: int, num_classes: int, **kwargs: Any) -> nn.Module:
    """Instantiate a registered network by name (``"enet"`` | ``"enet-light"`` | ``"unet"``)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose from {sorted(NETWORKS)}")
    return NETWORKS[name](in_channels, num_classes, **kwargs)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
