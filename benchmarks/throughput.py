"""Training throughput (images/s) of ENet and the small UNet with the descriptor loss.

python benchmarks/throughput.py [--sizes 128 256] [--batch 8] [--steps 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_time import batch, sync

from models.losses import constraint_loss
from models.networks import build_network


def images_per_second(name: str, size: int, b: int, steps: int, dev: torch.device) -> float:
    torch.manual_seed(0)
    x, _, lo, hi = (t.to(dev) for t in batch(size, b))
    net = build_network(name, 1, 4).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)

    def step() -> None:
        loss, _ = constraint_loss(torch.softmax(net(x), 1), lo, hi, t=5.0)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(dev)
    return b * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"device={dev} threads={torch.get_num_threads()} batch={args.batch} steps={args.steps}")
    for name in ("enet", "unet"):
        for size in args.sizes:
            ips = images_per_second(name, size, args.batch, args.steps, dev)
            print(f"{name:5s} {size:4d}x{size:<4d} {ips:8.2f} images/s")


if __name__ == "__main__":
    main()
