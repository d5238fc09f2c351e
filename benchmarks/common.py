"""Shared machinery of the real-data benchmarks (``benchmarks/acdc.py``, ``benchmarks/kvasir.py``).

What lives here: the simulated annotator (moment ellipse of a mask, perturbed the way a person
drawing it would be off), the benchmark presets, training one method with progress and resume,
result aggregation, and writing ``benchmarks/results/<name>.md|.json|.png``.

Resume: every method of a run owns a folder ``<cache>/<name>/<method>-<fingerprint>/`` where the
fingerprint hashes everything that shapes its result (preset, overrides, limits, seed). Inside:
``last.pt`` (written by ``models.train`` at its checkpoint epochs), ``elapsed.json`` (training
seconds at each checkpoint epoch), ``train.json`` (training finished) and ``result.json``
(evaluated). A rerun of the same command skips finished methods, evaluates trained ones and
continues interrupted training from ``last.pt``.

The real data is read from ``../shared/data`` only; nothing derived from it is written except
checkpoints under the ignored cache folder and the aggregate figures under ``results/``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # ``python benchmarks/acdc.py`` puts benchmarks/ first
    sys.path.insert(0, str(REPO_ROOT))

from models.bounds import ClassBounds, from_ellipse, from_ring, measure, stack  # noqa: E402
from models.units import COMPONENTS  # noqa: E402

DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
CACHE_DIR = REPO_ROOT / "benchmarks" / "cache"  # ignored by git (.gitignore)
M = len(COMPONENTS)


# ---------------------------------------------------------------- simulated annotator


@dataclass(frozen=True)
class Ellipse:
    """A drawn ellipse in image pixels: centre ``(cx, cy)`` (x = column, y = row), semi-axes
    ``a >= b`` (px), ``angle`` of the ``a`` axis in degrees from +x towards +y."""

    cx: float
    cy: float
    a: float
    b: float
    angle: float

    def bounds(self, tolerance: float) -> ClassBounds:
        """``models.bounds.from_ellipse`` of this ellipse (px of the image it was drawn on)."""
        return from_ellipse(self.cx, self.cy, self.a, self.b, self.angle, tolerance)


MIN_SEMI_AXIS = 0.5
"""px; a one-pixel structure is drawn as a dot of this radius rather than a zero-area ellipse."""


def moment_ellipse(mask: np.ndarray) -> Ellipse | None:
    """The ellipse with the same centroid and second moments as a binary ``(H, W)`` mask.

    Uniform ellipse with semi-axes a, b has covariance eigenvalues a^2/4, b^2/4, so
    ``a = 2 sqrt(lambda_max)``, ``b = 2 sqrt(lambda_min)`` (population moments of pixel centres,
    the definition ``models.descriptors`` uses). None for an empty mask.
    """
    ys, xs = np.nonzero(np.asarray(mask, dtype=bool))
    if len(xs) == 0:
        return None
    x, y = xs.astype(np.float64), ys.astype(np.float64)
    cx, cy = float(x.mean()), float(y.mean())
    dx, dy = x - cx, y - cy
    cov = np.array([[np.mean(dx * dx), np.mean(dx * dy)], [np.mean(dx * dy), np.mean(dy * dy)]])
    evals, evecs = np.linalg.eigh(cov)  # ascending
    major = evecs[:, 1]
    angle = math.degrees(math.atan2(major[1], major[0])) % 180.0
    a = max(2.0 * math.sqrt(max(evals[1], 0.0)), MIN_SEMI_AXIS)
    b = max(2.0 * math.sqrt(max(evals[0], 0.0)), MIN_SEMI_AXIS)
    return Ellipse(cx, cy, a, b, angle)


@dataclass(frozen=True)
class Annotator:
    """How far a person's drawn ellipse is from the structure's moment ellipse (all "up to",
    drawn uniformly): centroid moved by up to ``jitter_px`` (x, y radii of an elliptical disc, px
    of the image drawn on), each semi-axis scaled by a factor in ``[1 - axis_error,
    1 + axis_error]``, the angle off by up to ``angle_error_deg``. ``tolerance``: what the
    person declares with the hint (``from_ellipse``'s relative uncertainty)."""

    jitter_px: tuple[float, float]
    axis_error: float = 0.2
    angle_error_deg: float = 15.0
    tolerance: float = 0.2

    def draw(self, mask: np.ndarray, rng: np.random.Generator) -> Ellipse | None:
        """The ellipse drawn for binary ``(H, W)`` ``mask``; None when the structure is absent."""
        e = moment_ellipse(mask)
        if e is None:
            return None
        # Uniform in the disc: radius ~ sqrt(U) so the density is flat over the area.
        r, phi = math.sqrt(rng.random()), rng.uniform(0.0, 2.0 * math.pi)
        cx = e.cx + r * math.cos(phi) * self.jitter_px[0]
        cy = e.cy + r * math.sin(phi) * self.jitter_px[1]
        a = e.a * rng.uniform(1.0 - self.axis_error, 1.0 + self.axis_error)
        b = e.b * rng.uniform(1.0 - self.axis_error, 1.0 + self.axis_error)
        angle = e.angle + rng.uniform(-self.angle_error_deg, self.angle_error_deg)
        if b > a:  # keep a as the major axis, as a person would label it
            a, b, angle = b, a, angle + 90.0
        return Ellipse(cx, cy, max(a, MIN_SEMI_AXIS), max(b, MIN_SEMI_AXIS), angle % 180.0)

    def hint_bounds(self, mask: np.ndarray, rng: np.random.Generator) -> ClassBounds:
        """Bounds of one class on one slice: the drawn ellipse's, or absent."""
        e = self.draw(mask, rng)
        return ClassBounds.absent() if e is None else e.bounds(self.tolerance)

    def ring_bounds(
        self, filled: np.ndarray, hole: Ellipse | None, rng: np.random.Generator
    ) -> ClassBounds:
        """Bounds of a ring-shaped class (e.g. myocardium): the person draws the outer contour
        around ``filled`` (the ring and what it encloses) and reuses the ellipse already drawn
        for the enclosed structure as the inner contour (``hole``; None, or too big to fit:
        the outer ellipse alone). Absent when ``filled`` is empty."""
        outer = self.draw(filled, rng)
        if outer is None:
            return ClassBounds.absent()
        if hole is None or hole.a * hole.b >= outer.a * outer.b:
            return outer.bounds(self.tolerance)
        return from_ring(astuple(outer), astuple(hole), self.tolerance)


def item_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (e.g. slice name, class), so the
    simulated hints of a slice do not change with ``--limit`` or the order of loading."""
    words = [int(seed)] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(words)


def bounds_hold(cb: ClassBounds, mask: np.ndarray) -> bool:
    """Whether the reference mask's own descriptors satisfy ``cb`` (after presence rules)."""
    lo, hi = cb.effective()
    v = measure(mask)
    if cb.present is False:
        return not mask.any()
    if not mask.any():
        return cb.present is not True
    return bool(np.all((v >= lo - 1e-6) & (v <= hi + 1e-6)))


def unconstrained(num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(K, M)`` bounds that constrain nothing (full supervision uses only the mask)."""
    return stack([None] * num_classes)


# ---------------------------------------------------------------- presets


def log_barrier_mu(epochs: int, t0: float = 1.0, t_max: float = 50.0) -> float:
    """Growth of the log-barrier's t so it reaches ``t_max`` after 70 % of the epochs (as
    ``models.train.default_config`` does for short CPU runs)."""
    return float((t_max / t0) ** (1.0 / max(1, int(0.7 * epochs))))


def cpu_train(epochs: int, grid: int, **extra: Any) -> dict[str, Any]:
    """The benchmarks' CPU recipe: ``cpu-fast`` (one thread per training, entropy term, bias
    initialised from the size bounds) with a UNet of width 16 and the constraint loss in length
    units (``models.losses.to_length``): in the paper's units a 10 % size error outweighs a
    centroid or spread error of the structure's whole radius, and on ACDC at 96 px the
    descriptor methods learned one input-independent blob (Dice < 0.01 after 500 steps, 0.20
    in length units). Contour length weighted 0.1: the calibrated length of a soft map is far
    from that of its argmax early on and its lower bound otherwise dominates the loss."""
    return {
        "preset": "cpu-fast",
        "loss_units": "length",
        "weights": {"length": 0.1},
        "network": "unet",
        "network_kwargs": {"width": 16, "depth": 3},
        "grid": grid,
        "epochs": epochs,
        "batch_size": 8,
        "lr": 2e-3,
        "lr_schedule": "cosine",
        "mu": round(log_barrier_mu(epochs), 4),
        "t_max": 50.0,
        "val_every": max(1, math.ceil(epochs / 4)),
        **extra,
    }


def method_train(method: str) -> dict[str, Any]:
    """Per-method overrides of a preset: ``full`` learns from cross-entropy on its masks and
    drops the entropy term, which only exists to make descriptor-only maps commit (on full
    masks it held RV at Dice 0 for the first 500 steps at 96 px)."""
    return {"ce_weight": 1.0, "entropy_weight": 0.0} if method == "full" else {}


# The same training settings for every benchmark's GPU and test presets.
PAPER_TRAIN: dict[str, Any] = {"preset": "paper", "val_every": 10}
SMOKE_TRAIN: dict[str, Any] = {
    "preset": "cpu-fast",
    "network": "unet",
    "network_kwargs": {"width": 4, "depth": 2},
    "grid": 32,
    "epochs": 1,
    "batch_size": 4,
    "val_every": 1,
    "progress_every": 1,
}


@dataclass(frozen=True)
class Preset:
    """A benchmark setting: ``train`` = ``models.train.TrainConfig.from_dict`` input (the same for
    every method), plus how much data to use (None = all) and why it was chosen."""

    name: str
    train: dict[str, Any]
    train_limit: int | None = None
    val_limit: int | None = None
    device: str = "auto"
    note: str = ""

    def with_overrides(
        self,
        overrides: Mapping[str, Any],
        train_limit: int | None,
        val_limit: int | None,
    ) -> Preset:
        train = {**self.train, **overrides}
        return Preset(
            self.name,
            train,
            self.train_limit if train_limit is None else train_limit,
            self.val_limit if val_limit is None else val_limit,
            self.device,
            self.note,
        )

    def label(self, overrides: Mapping[str, Any], limits_changed: bool) -> str:
        """The preset name, marked when the command changed it (results stay honest)."""
        extra = [f"{k}={v}" for k, v in sorted(overrides.items())]
        if limits_changed:
            extra.append(f"limit={self.train_limit},val-limit={self.val_limit}")
        label = self.name if not extra else f"{self.name}+{','.join(extra)}"
        # The label names result files: keep it to a safe character set.
        return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", label)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["epochs=3", "grid=64"]`` -> ``{"epochs": 3, "grid": 64}`` (values parsed as JSON when
    they are JSON, else kept as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


# ---------------------------------------------------------------- command line


def add_common_args(
    p: argparse.ArgumentParser,
    presets: Mapping[str, Preset],
    methods: Sequence[str],
    default: Sequence[str] | None = None,
) -> None:
    default = methods if default is None else default
    p.add_argument("--preset", choices=sorted(presets), default="cpu")
    p.add_argument(
        "--methods",
        default=",".join(default),
        help=f"comma-separated subset of {','.join(methods)} (default: {','.join(default)}); "
        "naming hints-as-masks or default makes a service run (--budget; full then trains "
        "at the same budget)",
    )
    p.add_argument("--limit", type=int, default=None, help="use at most N training items")
    p.add_argument("--val-limit", type=int, default=None, help="use at most N evaluation items")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TrainConfig field (e.g. --set epochs=3); recorded in the preset label",
    )
    p.add_argument("--name", default=None, help="result file stem (default: <bench>-<preset>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=DATA_ROOT)
    p.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    p.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: the preset's)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many methods at once, each in its own process (each uses the "
        "preset's threads: cpu presets use 1, so --jobs 2 fills 2 cores)",
    )
    # Internal: how run() starts one method per child process with --jobs > 1.
    p.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--slot", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--fresh", action="store_true", help="ignore cached checkpoints and results")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars (logs stay)")


def add_service_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget",
        default="standard",
        help="service runs: the job's budget, a name (quick, standard, thorough) or seconds "
        "(default: standard); --set fields are merged into the resolved default",
    )


def budget_value(raw: str) -> str | float:
    """``"240"`` -> 240.0; names stay strings."""
    try:
        return float(raw)
    except ValueError:
        return raw


def selected_methods(arg: str, methods: Sequence[str]) -> list[str]:
    chosen = [m.strip() for m in arg.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in methods]
    if unknown or not chosen:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {','.join(methods)}")
    return [m for m in methods if m in chosen]  # canonical order


def command_line(script: Path, argv: Sequence[str]) -> str:
    """How to rerun: ``python benchmarks/<script> <argv>`` (the script relative to the repo)."""
    return "python " + shlex.join([str(script.resolve().relative_to(REPO_ROOT)), *argv])


def git_commit() -> str:
    """HEAD's hash, with ``+dirty`` when the working tree differs (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def machine(threads: int | None = None, jobs: int = 1) -> str:
    """CPU model and count, torch threads per training (``threads``, default torch's) and how
    many trainings ran at once, torch version and the accelerator used (no host names)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = threads or torch.get_num_threads()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} CPUs ({threads} torch threads x {jobs} jobs), {gpu}, "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


# ---------------------------------------------------------------- training with resume


def fingerprint(d: Mapping[str, Any]) -> str:
    """Short stable hash of a JSON-able mapping (cache folder names)."""
    blob = json.dumps(d, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _write_json(path: Path, data: Any) -> None:
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
    done = _read_json(work_dir / "train.json")
    if done is not None and last.exists():
        log(f"{desc}: trained already ({done['epochs']} epochs), reusing {last.name}")
        return last, TrainTiming(**done["timing"])

    cfg = TrainConfig.from_dict(dict(train_cfg))
    elapsed: dict[str, float] = _read_json(work_dir / "elapsed.json") or {}
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
            _write_json(work_dir / "elapsed.json", elapsed)

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
    )
    _write_json(work_dir / "train.json", {"epochs": cfg.epochs, "timing": asdict(timing)})
    return last, timing


def _median_step_seconds(stamps: Sequence[tuple[float, int]]) -> float:
    """Median seconds per optimiser step between consecutive progress reports.

    Intervals that include an end-of-epoch validation or a load spike from other processes are
    outliers; the median ignores them, which a mean over the whole run would not.
    """
    rates = [(t1 - t0) / (s1 - s0) for (t0, s0), (t1, s1) in itertools.pairwise(stamps) if s1 > s0]
    return float(np.median(rates)) if rates else math.nan


# ---------------------------------------------------------------- results


@dataclass
class Scores:
    """Per evaluated item (volume or image), per class name: Dice and HD95."""

    dice: dict[str, list[float]] = field(default_factory=dict)
    hd95: dict[str, list[float]] = field(default_factory=dict)

    def add(self, dice: Mapping[str, float], hd95: Mapping[str, float]) -> None:
        for k, v in dice.items():
            self.dice.setdefault(k, []).append(float(v))
        for k, v in hd95.items():
            self.hd95.setdefault(k, []).append(float(v))

    def summary(self, classes: Sequence[str]) -> dict[str, Any]:
        """Means over items per class, then ``mean`` over classes. HD95 is undefined (NaN) where
        a class is predicted but absent from the reference or the other way round; such items are
        left out of its mean and counted in ``hd95_undefined``."""
        dice = {c: float(np.mean(self.dice[c])) for c in classes}
        dice["mean"] = float(np.mean([dice[c] for c in classes]))
        hd: dict[str, float | None] = {}
        undefined: dict[str, int] = {}
        for c in classes:
            vals = np.asarray(self.hd95[c], dtype=np.float64)
            ok = np.isfinite(vals)
            undefined[c] = int((~ok).sum())
            hd[c] = float(vals[ok].mean()) if ok.any() else None
        defined = [v for v in hd.values() if v is not None]
        hd["mean"] = float(np.mean(defined)) if defined else None
        return {
            "dice": dice,
            "hd95": hd,
            "hd95_undefined": undefined,
            "items": len(next(iter(self.dice.values()), [])),
        }


def write_results(
    out_dir: Path, name: str, payload: Mapping[str, Any], classes: Sequence[str]
) -> list[Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>.png``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.json", out_dir / f"{name}.md", out_dir / f"{name}.png"]
    _write_json(paths[0], payload)
    tmp = paths[1].with_suffix(".md.tmp")
    tmp.write_text(render_markdown(name, payload, classes))
    tmp.replace(paths[1])
    plot_dice(paths[2], name, payload, classes)
    return paths


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def render_markdown(name: str, payload: Mapping[str, Any], classes: Sequence[str]) -> str:
    """A method x class table of Dice and HD95 plus timing and provenance."""
    methods: Mapping[str, Any] = payload["methods"]
    unit = payload.get("hd95_unit", "mm")
    cols = [*classes, "mean"]
    lines = [
        f"# {payload.get('title', name)}",
        "",
        f"- preset: `{payload['preset']}`",
        f"- command: `{payload['command']}`",
        f"- commit: `{payload['commit']}`",
        f"- machine: {payload['machine']}",
        f"- date (UTC): {payload.get('date', '?')}",
    ]
    for k, v in payload.get("facts", {}).items():
        lines.append(f"- {k}: {v}")
    lines += [
        "",
        f"## Dice ({payload.get('dice_kind', 'Dice')}, higher is better)",
        "",
        "| method | " + " | ".join(cols) + " | mean / full |",
        "|---" * (len(cols) + 2) + "|",
    ]
    for m, r in methods.items():
        d = r["dice"]
        ref = methods.get(r.get("ratio_to", "full"), {}).get("dice", {}).get("mean")
        ratio = d["mean"] / ref if ref else None
        cells = [_fmt(d.get(c)) for c in cols] + [_fmt(ratio, 2)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## HD95 ({unit}, lower is better; undefined items left out, their count in brackets)",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for m, r in methods.items():
        h, und = r["hd95"], r.get("hd95_undefined", {})
        cells = [_fmt(h.get(c), 1) + (f" ({und[c]})" if und.get(c) else "") for c in classes] + [
            _fmt(h.get("mean"), 1)
        ]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    full_epoch = methods.get("full", {}).get("seconds_per_epoch")
    lines += [
        "",
        "## Time (seconds)",
        "",
        "| method | total | training | evaluation | per epoch (median step x steps) "
        "| epoch / full |",
        "|---|---|---|---|---|---|",
    ]
    for m, r in methods.items():
        spe = r.get("seconds_per_epoch")
        ratio = spe / full_epoch if spe and full_epoch else None
        lines.append(
            f"| {m} | {_fmt(r.get('seconds'), 0)} | {_fmt(r.get('train_seconds'), 0)} | "
            f"{_fmt(r.get('eval_seconds'), 0)} | {_fmt(spe, 2)} | {_fmt(ratio, 3)} |"
        )
    notes = payload.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def plot_dice(path: Path, name: str, payload: Mapping[str, Any], classes: Sequence[str]) -> None:
    """Grouped bars: Dice per class (and mean), one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(payload["methods"])
    cols = [*classes, "mean"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(cols) + 0.5 * len(methods)), 3.6))
    width = 0.8 / max(1, len(methods))
    xs = np.arange(len(cols))
    for i, m in enumerate(methods):
        vals = [payload["methods"][m]["dice"].get(c) or 0.0 for c in cols]
        ax.bar(xs + (i - (len(methods) - 1) / 2) * width, vals, width, label=m)
    ax.set_xticks(xs, cols)
    ax.set_ylim(0, 1)
    ax.set_ylabel(payload.get("dice_kind", "Dice"))
    ax.set_title(f"{name} ({payload['preset']})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(len(methods), 3), loc="lower right")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


# ---------------------------------------------------------------- the driver


@dataclass
class Benchmark:
    """What a dataset script provides to ``run``.

    - ``build_samples(method) -> list[TrainSample]``: training samples of a method;
    - ``evaluate(checkpoint, show_progress) -> Scores`` on the evaluation items;
    - ``method_facts(method) -> dict``: extra per-method figures (e.g. hint statistics).
    """

    key: str  # "acdc" | "kvasir"
    title: str
    classes: tuple[str, ...]
    num_classes: int
    build_samples: Callable[[str], list[Any]]
    evaluate: Callable[[Path, bool], Scores]
    facts: dict[str, Any]
    notes: list[str]
    hd95_unit: str
    dice_kind: str
    method_facts: Callable[[str], dict[str, Any]] = lambda _m: {}
    method_train: Callable[[str], dict[str, Any]] = lambda _m: {}
    """Per-method TrainConfig overrides on top of the preset (full: ``ce_weight``)."""
    version: int = 1
    """Part of every cache key: bump when the data preparation changes (e.g. a crop)."""


def run(
    bench: Benchmark,
    methods: Iterable[str],
    preset: Preset,
    preset_label: str,
    args: argparse.Namespace,
    argv: Sequence[str],
    script: Path,
) -> dict[str, Any]:
    """Train and evaluate every method (resuming what a previous run left), write the results.

    ``script``: the benchmark's own file; with ``--jobs N > 1`` each method runs in a fresh
    ``python script --methods <m> --train-only`` process (N at a time) that leaves its result in
    the cache, from which this process then writes the result files."""
    log = _logger()
    name = args.name or f"{bench.key}-{preset_label}"
    cache = Path(args.cache_dir) / bench.key  # keyed by content (fingerprint), not by --name
    device = args.device or preset.device
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    commit = git_commit()  # at the start: the code that ran, whatever changes meanwhile
    keys = {m: _method_key(bench, m, preset, args.seed) for m in methods}
    works = {m: cache / f"{m}-{fingerprint(k)}" for m, k in keys.items()}
    if args.fresh:
        for work in works.values():
            for p in work.iterdir() if work.exists() else ():
                p.unlink()
    todo = [m for m in methods if _read_json(works[m] / "result.json") is None]
    jobs = max(1, min(int(getattr(args, "jobs", 1)), len(todo)))
    run_one = functools.partial(
        _run_method, preset=preset, device=device, show_progress=not args.no_progress
    )
    if jobs == 1:
        for method in todo:
            run_one(bench, method, keys[method], works[method], int(getattr(args, "slot", 0)))
    else:
        _run_children(script, args, todo, jobs, log)
    if getattr(args, "train_only", False):
        return {}
    results: dict[str, Any] = {}
    for method in methods:
        results[method] = _read_json(works[method] / "result.json")
        if method not in todo:
            log(f"{method}: cached result from {works[method]}")
    payload = {
        "title": bench.title,
        "methods": results,
        "preset": preset_label,
        "preset_config": {
            "train": preset.train,
            "train_limit": preset.train_limit,
            "val_limit": preset.val_limit,
            "note": preset.note,
        },
        "command": command_line(script, argv),
        "commit": commit,
        "machine": machine(_preset_threads(preset), jobs),
        "date": started,
        "seed": args.seed,
        "classes": list(bench.classes),
        "hd95_unit": bench.hd95_unit,
        "dice_kind": bench.dice_kind,
        "facts": bench.facts,
        "notes": bench.notes,
    }
    paths = write_results(Path(args.out_dir), name, payload, bench.classes)
    log("wrote " + ", ".join(str(p) for p in paths))
    return payload


def _preset_threads(preset: Preset) -> int | None:
    from models.config import TrainConfig

    return TrainConfig.from_dict(dict(preset.train)).num_threads


TIMING_NOTE = (
    "Seconds per epoch = median step time x steps per epoch; other processes on the machine add "
    "noise to every timing. With --jobs 2 two methods train at once, one per core, and which "
    "core a job gets shifts its time by up to ~12 %: benchmarks/step_time.py measures the "
    "descriptor overhead side by side in one process."
)


def _child_argv(args: argparse.Namespace, method: str, slot: int) -> list[str]:
    """The command-line arguments of one method's child process (same data, preset, cache)."""
    argv = ["--preset", args.preset, "--methods", method, "--jobs", "1", "--train-only"]
    argv += ["--slot", str(slot), "--seed", str(args.seed)]
    argv += ["--data-dir", str(args.data_dir), "--cache-dir", str(args.cache_dir)]
    for flag, value in (("--limit", args.limit), ("--val-limit", args.val_limit)):
        if value is not None:
            argv += [flag, str(value)]
    for item in args.overrides:
        argv += ["--set", item]
    if args.device:
        argv += ["--device", args.device]
    if args.no_progress:
        argv.append("--no-progress")
    return argv


def _run_children(
    script: Path,
    args: argparse.Namespace,
    methods: Sequence[str],
    jobs: int,
    log: Callable[[str], None],
) -> None:
    """Run ``methods`` as child processes of ``script``, ``jobs`` at a time. Fresh interpreters
    rather than forks: a fork of a process whose torch thread pool has started can deadlock."""
    pending = list(methods)
    running: dict[subprocess.Popen[bytes], tuple[str, int]] = {}
    failed: list[str] = []
    free = list(range(jobs))
    while pending or running:
        while pending and free:
            method, slot = pending.pop(0), free.pop(0)
            cmd = [sys.executable, str(script), *_child_argv(args, method, slot)]
            running[subprocess.Popen(cmd, cwd=REPO_ROOT)] = (method, slot)
        time.sleep(0.2)
        for proc in [p for p in running if p.poll() is not None]:
            method, slot = running.pop(proc)
            free.append(slot)
            if proc.returncode != 0:
                failed.append(method)
                log(f"{method}: child process failed (exit {proc.returncode})")
    if failed:
        raise SystemExit(f"method(s) failed: {', '.join(failed)}")


def _method_key(bench: Benchmark, method: str, preset: Preset, seed: int) -> dict[str, Any]:
    """Everything that shapes one method's result (its cache folder is named by its hash)."""
    return {
        "bench": bench.key,
        "method": method,
        "train": {**preset.train, **bench.method_train(method)},
        "train_limit": preset.train_limit,
        "val_limit": preset.val_limit,
        "seed": seed,
        "version": bench.version,
    }


def _run_method(
    bench: Benchmark,
    method: str,
    key: Mapping[str, Any],
    work: Path,
    slot: int,
    *,
    preset: Preset,
    device: str,
    show_progress: bool,
) -> None:
    """Train (or resume) and evaluate one method; writes ``work/result.json``. ``slot``: the
    line of its progress bar when several methods run at once."""
    log = _logger()
    work.mkdir(parents=True, exist_ok=True)
    _write_json(work / "key.json", key)
    t_build = time.monotonic()
    samples = bench.build_samples(method)
    build_seconds = time.monotonic() - t_build
    log(f"{method}: {len(samples)} training samples ({build_seconds:.0f} s to prepare)")
    ckpt, timing = train_method(
        samples,
        bench.num_classes,
        key["train"],
        work,
        desc=f"{bench.key}/{method}",
        device=device,
        show_progress=show_progress,
        log=log,
        position=slot,
    )
    del samples
    t_eval = time.monotonic()
    scores = bench.evaluate(ckpt, show_progress)
    eval_seconds = time.monotonic() - t_eval
    res = scores.summary(bench.classes)
    res.update(
        seconds=timing.seconds + eval_seconds + build_seconds,
        train_seconds=timing.seconds,
        eval_seconds=eval_seconds,
        prepare_seconds=build_seconds,
        seconds_per_epoch=timing.seconds_per_epoch,
        seconds_per_step=timing.seconds_per_step,
        epochs=timing.epochs,
        steps=timing.steps,
        **bench.method_facts(method),
    )
    _write_json(work / "result.json", res)
    d = res["dice"]
    log(
        f"{method}: Dice "
        + ", ".join(f"{c} {d[c]:.3f}" for c in (*bench.classes, "mean"))
        + f" | {res['seconds']:.0f} s, {timing.seconds_per_epoch:.2f} s/epoch"
    )


def _logger() -> Callable[[str], None]:
    from tqdm import tqdm

    def log(msg: str) -> None:
        tqdm.write(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr)

    return log


# ---------------------------------------------------------------- the service's default


SERVICE_METHODS: tuple[str, ...] = ("hints-as-masks", "full", "default")
"""Methods of a service run (``--methods`` naming ``hints-as-masks`` or ``default``): the
annotator's shapes scored as masks; cross-entropy on the masks and the service's default, both
through ``worker.training_data.resolve_job_config`` with the same budget and project facts."""


def ellipse_payload(e: Ellipse) -> dict[str, float]:
    return {"cx": e.cx, "cy": e.cy, "a": e.a, "b": e.b, "angle": e.angle}


def hint_payload(annotator: Annotator, mask: np.ndarray, rng: np.random.Generator) -> dict:
    """The hint JSON a person gives for one class on one slice (``Annotator.hint_bounds``'s
    ellipse, same draws): ``{"ellipse": ..., "tolerance": t}`` or ``{"present": false}``."""
    e = annotator.draw(mask, rng)
    if e is None:
        return {"present": False}
    return {"ellipse": ellipse_payload(e), "tolerance": annotator.tolerance}


def ring_payload(
    annotator: Annotator, filled: np.ndarray, hole: Ellipse | None, rng: np.random.Generator
) -> dict:
    """``Annotator.ring_bounds`` as hint JSON: the outer ellipse, with ``hole`` when it fits."""
    outer = annotator.draw(filled, rng)
    if outer is None:
        return {"present": False}
    out: dict[str, Any] = {"ellipse": ellipse_payload(outer), "tolerance": annotator.tolerance}
    if hole is not None and hole.a * hole.b < outer.a * outer.b:
        out["hole"] = ellipse_payload(hole)
    return out


def _ellipse_tuple(d: Mapping[str, float]) -> tuple[float, float, float, float, float]:
    return (d["cx"], d["cy"], d["a"], d["b"], d.get("angle", 0.0))


def hints_as_labels(hints: Sequence[Mapping[str, Any]], shape: tuple[int, int]) -> np.ndarray:
    """The hints of one slice (class 1, 2, ...) rasterised as a label map with
    ``models.regions.ellipse_mask`` (a ring: outer minus hole); later classes paint over
    earlier ones where shapes overlap."""
    from models.regions import ellipse_mask

    labels = np.zeros(shape, dtype=np.uint8)
    for k, hint in enumerate(hints, start=1):
        if hint.get("present", True) is False or hint.get("ellipse") is None:
            continue
        inside = ellipse_mask(shape, _ellipse_tuple(hint["ellipse"]))
        if hint.get("hole") is not None:
            inside &= ~ellipse_mask(shape, _ellipse_tuple(hint["hole"]))
        labels[inside] = k
    return labels


@dataclass
class HintedItem:
    """One hinted training slice: ``image (C, H, W)`` native, reference ``mask (H, W)``, and per
    class (background excluded) the hint payload the simulated person gave."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    hints: list[dict[str, Any]]


@dataclass
class ServiceBench:
    """What a dataset provides to :func:`run_service`. ``score_hinted(predict) -> Scores`` and
    ``score_val(predictor) -> Scores`` evaluate; ``predict(item_index) -> (H, W)`` labels of a
    hinted item (the scorer groups slices into volumes where it needs to)."""

    key: str
    title: str
    classes: tuple[str, ...]
    items: list[HintedItem]
    score_hinted: Callable[[Callable[[int], np.ndarray]], Scores]
    score_val: Callable[[Any], Scores] | None
    facts: dict[str, Any]
    notes: list[str]
    hd95_unit: str
    dice_kind: str
    version: int = 1


def service_samples(
    items: Sequence[HintedItem], classes: Sequence[str], method: str
) -> tuple[list, list[tuple[int, int]]]:
    """What ``worker/runner.py::train_job`` builds: per slice the hints' bounds (``parse_hint``,
    several classes stacked), the bounds on rings and the class in their hole together
    (``worker.training_data.slice_unions``) and sure map; ``full``: the mask, no bounds, no sure
    map. Returns ``(samples, unions)`` (unions as pairs of class labels)."""
    from models.bounds import parse_hint
    from models.regions import sure_map
    from models.train import TrainSample
    from worker.training_data import slice_unions

    if method == "full":
        lo, hi = unconstrained(len(classes) + 1)
        return [TrainSample(it.image, lo, hi, it.mask, None) for it in items], []
    pairs = [slice_unions({c: [h] for c, h in zip(classes, it.hints, strict=True)}) for it in items]
    names = sorted({pair for p in pairs for pair in p})
    out = []
    for it, p in zip(items, pairs, strict=True):
        shape = it.mask.shape
        per_class = [parse_hint(c, h, shape=shape) for c, h in zip(classes, it.hints, strict=True)]
        lo, hi = stack([None, *per_class, *[p.get(pair) for pair in names]])
        sure = sure_map([[], *[[h] for h in it.hints]], shape)
        out.append(TrainSample(it.image, lo, hi, None, sure))
    label = {c: k for k, c in enumerate(classes, start=1)}
    return out, [(label[r], label[c]) for r, c in names]


FULL_AT_BUDGET = {"ce_weight": 1.0, "entropy_weight": 0.0, "sure_weight": 0.0}
"""``full`` in a service run: the default's resolved grid, network and budget, learning from
cross-entropy on the masks only (``method_train``'s reasoning for dropping the entropy term)."""


def run_service(
    bench: ServiceBench,
    methods: Sequence[str],
    budget: str | float,
    overrides: Mapping[str, Any],
    args: argparse.Namespace,
    argv: Sequence[str],
    script: Path,
) -> dict[str, Any]:
    """Score the hints as masks, and train ``full`` / ``default`` the way a job does
    (``resolve_job_config({"budget": budget, **overrides}, facts, device)``); write results.

    ``overrides``: config fields merged into the default (ablations, e.g. ``sure_weight=0``);
    ``full`` keeps the same ones except its own :data:`FULL_AT_BUDGET`."""
    from models.budget import facts_from_bounds
    from models.infer import load_predictor
    from models.refine import hint_bounds, refine_labels
    from worker.training_data import resolve_job_config

    log = _logger()
    device = args.device or "cpu"
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    commit = git_commit()
    hinted, unions = service_samples(bench.items, bench.classes, "default")
    k = len(bench.classes) + 1
    facts = facts_from_bounds(
        [(s.lo[:k], s.hi[:k]) for s in hinted], [it.mask.shape for it in bench.items]
    )
    names = [it.name for it in bench.items]
    results: dict[str, Any] = {}
    threads = None
    for method in methods:
        key = {
            "bench": bench.key,
            "method": method,
            "items": names,
            "budget": budget,
            "overrides": dict(overrides),
            "seed": args.seed,
            "device": device,
            "val": bool(bench.score_val) and method != "hints-as-masks",
            "version": bench.version,
            "unions": [list(u) for u in unions] if method == "default" else [],
            "hinted slices scored": "with the hints' vote (models.refine)",
        }
        work = Path(args.cache_dir) / f"{bench.key}-service" / f"{method}-{fingerprint(key)}"
        if args.fresh:
            for p in work.iterdir() if work.exists() else ():
                p.unlink()
        cached = _read_json(work / "result.json")
        if cached is not None:
            log(f"{method}: cached result from {work}")
            results[method] = cached
            continue
        work.mkdir(parents=True, exist_ok=True)
        _write_json(work / "key.json", key)
        if method == "hints-as-masks":
            t0 = time.monotonic()
            scores = bench.score_hinted(
                lambda i: hints_as_labels(bench.items[i].hints, bench.items[i].mask.shape)
            )
            res = scores.summary(bench.classes)
            res.update(seconds=time.monotonic() - t0, train_seconds=0.0)
        else:
            config = {"budget": budget_value(str(budget)), **overrides}
            if method == "full":
                config.update(FULL_AT_BUDGET)
            cfg, estimate = resolve_job_config(config, facts, device)
            threads = cfg.num_threads
            samples = (
                hinted
                if method == "default"
                else service_samples(bench.items, bench.classes, "full")[0]
            )
            ckpt, timing = train_method(
                samples,
                len(bench.classes) + 1,
                cfg.to_dict(),
                work,
                desc=f"{bench.key}/{method}",
                device=device,
                show_progress=not args.no_progress,
                log=log,
                unions=unions if method == "default" else (),
            )
            predictor = load_predictor(ckpt, device)
            t_eval = time.monotonic()
            cache: dict[int, np.ndarray] = {}

            def predict(i: int, p: Any = predictor, c: dict = cache) -> np.ndarray:
                if i not in c:
                    c[i] = p.predict_image(bench.items[i].image)
                return c[i]

            res = bench.score_hinted(predict).summary(bench.classes)
            if method == "default" and cfg.hint_weight > 0:
                # What the user downloads for the slices they hinted (models.refine); the
                # model alone is kept beside it.
                alone = res

                def refined(i: int, p: Any = predictor, w: float = cfg.hint_weight) -> np.ndarray:
                    it = bench.items[i]
                    proba = p.predict_proba(it.image[None])[0]
                    votes = [[], *[[h] for h in it.hints]]
                    bounds = hint_bounds(votes, bench.classes, it.mask.shape)
                    voted = refine_labels(proba, votes, w, bounds)
                    return proba.argmax(0).astype(np.uint8) if voted is None else voted[0]

                res = bench.score_hinted(refined).summary(bench.classes)
                res["model_alone"] = alone
            if bench.score_val is not None:
                res["val"] = bench.score_val(predictor).summary(bench.classes)
            ck = _torch_load_config(ckpt)
            res.update(
                seconds=timing.seconds + time.monotonic() - t_eval,
                train_seconds=timing.seconds,
                eval_seconds=time.monotonic() - t_eval,
                seconds_per_epoch=timing.seconds_per_epoch,
                seconds_per_step=timing.seconds_per_step,
                epochs=timing.epochs,
                steps=timing.steps,
                estimated_train_seconds=round(estimate, 1),
                grid=ck.get("grid"),
                network=f"{ck.get('network')} {ck.get('network_kwargs')}",
                config={k: ck.get(k) for k in sorted({*config, "ce_weight", "entropy_weight"})},
            )
        _write_json(work / "result.json", res)
        results[method] = res
        log(f"{method}: Dice {res['dice']['mean']:.3f} | {res['train_seconds']:.0f} s training")
    rows: dict[str, Any] = {m: results[m] for m in methods}
    for m in methods:
        if "model_alone" in results[m]:
            rows[f"{m} (model alone)"] = results[m]["model_alone"]
    for m in methods:  # validation rows, after the hinted ones
        if "val" in results[m]:
            rows[f"{m} [val]"] = {**results[m]["val"], "ratio_to": "full [val]"}
    payload = {
        "title": bench.title,
        "methods": rows,
        "preset": f"service budget={budget}"
        + "".join(f",{k}={v}" for k, v in sorted(overrides.items())),
        "budget": budget,
        "overrides": dict(overrides),
        "project_facts": asdict(facts),
        "command": command_line(script, argv),
        "commit": commit,
        "machine": machine(threads, 1),
        "date": started,
        "seed": args.seed,
        "classes": list(bench.classes),
        "hd95_unit": bench.hd95_unit,
        "dice_kind": bench.dice_kind,
        "facts": {**bench.facts, "project facts (models.budget)": asdict(facts)},
        "notes": bench.notes,
    }
    name = args.name or f"{bench.key}-" + re.sub(
        r"[^A-Za-z0-9_.,=+-]", "_", payload["preset"].replace("service ", "service-")
    )
    paths = write_results(Path(args.out_dir), name, payload, bench.classes)
    log("wrote " + ", ".join(str(p) for p in paths))
    return payload


def _torch_load_config(ckpt: Path) -> dict[str, Any]:
    import torch

    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    return {**(ck.get("config") or {}), "grid": ck.get("grid"), "network": ck.get("network")}
