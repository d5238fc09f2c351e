"""Training-step time with the four descriptor constraints vs plain cross-entropy.

Same network (ENet), batch (B=8), grid (256 x 256) and K=4 classes, on CPU by default.
Repetitions of the two steps are interleaved in one process so that machine load affects both
alike; the report gives medians, their ratio (target <= 1.05) and the descriptor loss's own
forward + backward time.

    python benchmarks/step_time.py [--size 256] [--batch 8] [--reps 5] [--device cpu]
    python benchmarks/step_time.py --network unet --size 96 --threads 1 --units length --reps 40
        # the ACDC/Kvasir cpu preset's network, grid, thread count and loss units
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from models import bounds as B
from models.losses import constraint_loss
from models.networks import build_network
from models.synthetic import make_dataset

TERMS = {"size": 0.1, "centroid": 20.0, "spread": 20.0, "length": 0.1}  # the paper's four


def batch(size: int, b: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    data = make_dataset(b, size, 3, seed=seed)
    x = torch.from_numpy(np.stack([img for img, _ in data]))
    y = torch.from_numpy(np.stack([m for _, m in data]).astype(np.int64))
    lo, hi = zip(*(B.stack(B.from_mask(m, 4, TERMS)) for _, m in data), strict=True)
    return x, y, torch.from_numpy(np.stack(lo)), torch.from_numpy(np.stack(hi))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    ap.add_argument("--network", choices=("enet", "enet-light", "unet"), default="enet")
    ap.add_argument("--width", type=int, default=16, help="UNet/ENet width")
    ap.add_argument("--units", choices=("paper", "length"), default="paper", help="loss units")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    x, y, lo, hi = (t.to(dev) for t in batch(args.size, args.batch))
    kwargs = {"width": args.width, "depth": 3} if args.network == "unet" else {"width": args.width}
    net = build_network(args.network, 1, 4, **kwargs).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)

    def ce_step() -> None:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def descriptor_step() -> None:
        probs = torch.softmax(net(x), 1)
        loss, _ = constraint_loss(probs, lo, hi, t=5.0, units=args.units)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def descriptor_only() -> None:
        logits = torch.randn(args.batch, 4, args.size, args.size, device=dev, requires_grad=True)
        probs = torch.softmax(logits, 1).detach().requires_grad_(True)
        sync(dev)
        t0 = time.perf_counter()
        loss, _ = constraint_loss(probs, lo, hi, t=5.0, units=args.units)
        loss.backward()
        sync(dev)
        desc_ms.append(1000 * (time.perf_counter() - t0))

    def timed(fn: object, out: list[float]) -> None:
        sync(dev)
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        sync(dev)
        out.append(time.perf_counter() - t0)

    ce_s: list[float] = []
    de_s: list[float] = []
    desc_ms: list[float] = []
    ce_step()  # warm-up both paths (allocator, kernels)
    descriptor_step()
    for i in range(args.reps):
        # Alternate which step goes first so drifting load does not favour either.
        pair = [(ce_step, ce_s), (descriptor_step, de_s)]
        for fn, out in pair if i % 2 == 0 else pair[::-1]:
            timed(fn, out)
        descriptor_only()
    ce_med, de_med = statistics.median(ce_s), statistics.median(de_s)
    ce_all = [round(v * 1000) for v in ce_s]
    de_all = [round(v * 1000) for v in de_s]
    print(
        f"device={dev} threads={torch.get_num_threads()} {args.network} B={args.batch} "
        f"{args.size}x{args.size} K=4 reps={args.reps}"
    )
    print(f"cross-entropy step   median {ce_med * 1000:8.1f} ms  (all: {ce_all})")
    print(f"descriptor step      median {de_med * 1000:8.1f} ms  (all: {de_all})")
    print(
        f"ratio descriptor/CE  {de_med / ce_med:.3f} of medians, "
        f"{min(de_s) / min(ce_s):.3f} of minima"
    )
    print("  (target <= 1.05; on a shared machine the minima are the less load-sensitive figure)")
    print(
        f"descriptor loss fwd+bwd median {statistics.median(desc_ms):.1f} ms, "
        f"min {min(desc_ms):.1f} ms"
    )


if __name__ == "__main__":
    main()
