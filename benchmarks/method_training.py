"""Training one method with progress and resume.

Every method of a run owns a folder ``<cache>/<name>/<method>-<fingerprint>/`` where the
fingerprint hashes everything that shapes its result (preset, overrides, limits, seed). Inside:
``last.pt`` (written by ``models.train`` at its checkpoint epochs), ``elapsed.json`` (training
seconds at each checkpoint epoch), ``train.json`` (training finished) and ``result.json``
(evaluated). A rerun of the same command skips finished methods, evaluates trained ones and
continues interrupted training from ``last.pt``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def _canonical(v: Any) -> Any:
    """``v`` with whole floats as ints, so that ``--set p_flip=0`` and a preset's ``0.0`` name
    the same run."""
    if isinstance(v, Mapping):
        return {str(k): _canonical(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_canonical(x) for x in v]
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def fingerprint(d: Mapping[str, Any]) -> str:
    """Short stable hash of a JSON-able mapping (cache folder names); equal numbers hash alike
    whether written as ints or floats."""
    blob = json.dumps(_canonical(d), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    tmp.replace(path)  # atomic: an interruption never leaves half a file


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@dataclass
class TrainTiming:
    """Wall-clock facts of one training run (seconds)."""

    seconds: float
    epochs: int
    steps: int
    seconds_per_step: float  # median over progress intervals (robust to validation and load)
    seconds_per_epoch: float  # seconds_per_step * steps per epoch
    # the trainer's scalar end-of-run metrics (e.g. pseudo_masks: slices self-training accepted)
    metrics: dict[str, float] = field(default_factory=dict)


def train_method(
    samples: Sequence[Any],
    num_classes: int,
    train_cfg: Mapping[str, Any],
    work_dir: Path,
    *,
    desc: str,
    device: str = "auto",
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    should_stop: Callable[[], bool] | None = None,
    position: int = 0,
    unions: Sequence[Sequence[int]] = (),
) -> tuple[Path, TrainTiming]:
    """Train (or resume, or reuse) one method's network; returns ``(checkpoint, timing)``.

    ``samples``: ``models.train.TrainSample`` list; ``work_dir`` holds ``last.pt`` etc. The
    evaluated checkpoint is ``last.pt`` (the final epoch's weights) for every method: no model
    selection, so no method looks at masks it is not supposed to have. ``should_stop`` is passed
    to ``models.train.train`` (an interruption: the next call resumes from ``last.pt``).
    """
    import torch
    from tqdm import tqdm

    from models.train import LAST_NAME, Progress, TrainConfig, train

    work_dir.mkdir(parents=True, exist_ok=True)
    last = work_dir / LAST_NAME
    done = read_json(work_dir / "train.json")
    if done is not None and last.exists():
        log(f"{desc}: trained already ({done['epochs']} epochs), reusing {last.name}")
        return last, TrainTiming(**done["timing"])

    cfg = TrainConfig.from_dict(dict(train_cfg))
    elapsed: dict[str, float] = read_json(work_dir / "elapsed.json") or {}
    start_epoch = 0
    if last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        start_epoch = int(ck.get("resume", {}).get("epoch", 0))
        del ck
    base = float(elapsed.get(str(start_epoch), 0.0)) if start_epoch else 0.0
    if start_epoch:
        cfg.resume = True
        log(f"{desc}: resuming at epoch {start_epoch}/{cfg.epochs} from {last}")

    stamps: list[tuple[float, int]] = []
    t0 = time.monotonic()
    bar = tqdm(
        desc=desc,
        unit="step",
        disable=not show_progress,
        dynamic_ncols=True,
        leave=True,
        position=position,
    )

    def on_progress(p: Progress) -> None:
        now = time.monotonic()
        stamps.append((now, p.step))
        if bar.total != p.steps:
            bar.total = p.steps
            bar.n = p.step
        bar.update(p.step - bar.n)
        post = {"epoch": f"{p.epoch}/{p.epochs}", "loss": f"{p.loss:.4g}"}
        if "val_dice" in p.metrics:
            post["train-set dice"] = f"{p.metrics['val_dice']:.3f}"
        bar.set_postfix(post, refresh=False)
        steps_per_epoch = max(1, p.steps // max(1, p.epochs))
        if p.step % steps_per_epoch == 0 and last.exists():
            # Seconds spent so far, keyed by the epoch last.pt holds, for an honest total later.
            ck_epoch = p.step // steps_per_epoch
            elapsed[str(ck_epoch)] = base + (now - t0)
            write_json(work_dir / "elapsed.json", elapsed)

    try:
        result = train(
            samples,
            num_classes,
            cfg,
            device=device,
            progress=on_progress,
            should_stop=should_stop,
            init_checkpoint=last if start_epoch else None,
            out_dir=work_dir,
            unions=unions,
        )
    finally:
        bar.close()
    seconds = base + (time.monotonic() - t0)
    steps_per_epoch = max(1, result.metrics.get("steps", 0) // max(1, cfg.epochs))
    per_step = _median_step_seconds(stamps)
    timing = TrainTiming(
        seconds=seconds,
        epochs=cfg.epochs,
        steps=int(result.metrics.get("steps", 0)),
        seconds_per_step=per_step,
        seconds_per_epoch=per_step * steps_per_epoch,
        metrics={
            k: float(v)
            for k, v in result.metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        },
    )
    write_json(work_dir / "train.json", {"epochs": cfg.epochs, "timing": asdict(timing)})
    return last, timing


def _median_step_seconds(stamps: Sequence[tuple[float, int]]) -> float:
    """Median seconds per optimiser step between consecutive progress reports.

    Intervals that include an end-of-epoch validation or a load spike from other processes are
    outliers; the median ignores them, which a mean over the whole run would not.
    """
    rates = [(t1 - t0) / (s1 - s0) for (t0, s0), (t1, s1) in itertools.pairwise(stamps) if s1 > s0]
    return float(np.median(rates)) if rates else math.nan
