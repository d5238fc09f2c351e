"""Parameters, FLOPs and CPU training-step time of the registered networks, side by side.

- params used: parameters of the modules a forward pass actually calls (forward pre-hooks);
- GFLOP: one forward of a (1, C, S, S) image, counted by ``torch.utils.flop_counter``
  (convolutions and matmuls; a multiply-add counts as 2 FLOPs; BN, PReLU, pooling not counted);
- ms / step: median over interleaved repetitions (one process, so machine load hits all
  networks alike) of forward + cross-entropy + backward + Adam step on a (B, C, S, S) batch in
  training mode, and its ratio to the first network's.

Reference: the ENet of the paper's code (LIVIAETS/boundary-loss, ``networks.py`` ENet with the
blocks of ``models/enet.py``) measures 458,247 used parameters and 2.079 GFLOP per forward of a
(1, 1, 256, 256) image with 2 classes, counted the same way (rebuilt outside this repository).

    python benchmarks/network_flops.py [--size 256] [--batch 8] [--reps 5] [--threads 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.networks import build_network

REFERENCE = {"params": 458_247, "gflop": 2.0786}  # see the module docstring
NETWORKS: dict[str, dict[str, int]] = {
    "enet": {"width": 16},  # the paper preset's
    "enet-light": {"width": 16},
    "unet": {"width": 8, "depth": 3},  # the cpu-fast preset's
}
OUT = Path(__file__).resolve().parent / "results" / "network-flops.md"


def used_parameters(net: nn.Module, x: torch.Tensor) -> int:
    """Number of parameters owned by the modules that ``net(x)`` calls."""
    called: set[nn.Module] = set()
    hooks = [m.register_forward_pre_hook(lambda m, _a: called.add(m)) for m in net.modules()]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    params = {id(p): p for m in called for p in m.parameters(recurse=False)}
    return sum(p.numel() for p in params.values())


def forward_flops(net: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward of ``x`` (``FlopCounterMode``: a multiply-add is 2 FLOPs)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return int(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    one = torch.rand(1, args.channels, args.size, args.size)
    xb = torch.rand(args.batch, args.channels, args.size, args.size)
    yb = torch.randint(0, args.classes, (args.batch, args.size, args.size))

    nets = {n: build_network(n, args.channels, args.classes, **kw) for n, kw in NETWORKS.items()}
    rows: dict[str, dict[str, float]] = {}
    for name, net in nets.items():
        net.eval()
        rows[name] = {
            "params": used_parameters(net, one),
            "total": sum(p.numel() for p in net.parameters()),
            "gflop": forward_flops(net, one) / 1e9,
        }
    opts = {n: torch.optim.Adam(net.parameters(), lr=1e-4) for n, net in nets.items()}

    def step(name: str) -> float:
        net, opt = nets[name], opts[name]
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xb), yb).backward()
        opt.step()
        return time.perf_counter() - t

    times: dict[str, list[float]] = {n: [] for n in nets}
    for net in nets.values():
        net.train()
    for name in nets:  # warm-up
        step(name)
    for _ in range(args.reps):
        for name in nets:
            times[name].append(step(name))
    base = statistics.median(times["enet"])

    cmd = "python " + shlex.join(["benchmarks/network_flops.py", *sys.argv[1:]])
    s, b, c, k = args.size, args.batch, args.channels, args.classes
    lines = [
        "# Networks: parameters, FLOPs, CPU training-step time",
        "",
        f"`{cmd}` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, torch {torch.__version__}, "
        f"{platform.machine()} CPU, {torch.get_num_threads()} threads, {args.reps} interleaved "
        "repetitions (medians; a shared machine, so the ratios matter more than the ms).",
        "",
        f"GFLOP: one forward of a (1, {c}, {s}, {s}) image, {k} classes, counted by "
        "`torch.utils.flop_counter.FlopCounterMode` (a multiply-add = 2 FLOPs; convolutions "
        "only). Params used: of the modules the forward calls. Step: forward + cross-entropy + "
        f"backward + Adam on a ({b}, {c}, {s}, {s}) batch.",
        "",
        "| network | params used | GFLOP / forward | CPU ms / step | step time vs enet |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        med = statistics.median(times[name])
        lines.append(
            f"| {name} {NETWORKS[name]} | {int(r['params']):,} | {r['gflop']:.3f} "
            f"| {1000 * med:.0f} | {med / base:.2f} |"
        )
    if (s, c, k) == (256, 1, 2):  # the setting the reference was measured in
        lines.append(
            f"| reference ENet (LIVIAETS/boundary-loss) | {REFERENCE['params']:,} "
            f"| {REFERENCE['gflop']:.3f} | - | - |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
