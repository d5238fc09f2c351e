"""The benchmarks' shared command line options and the facts recorded with every result
(command, git commit, machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.paths import CACHE_DIR, DATA_ROOT, REPO_ROOT, RESULTS_DIR
from benchmarks.presets import Preset


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
        "naming hints-as-masks or default, or giving --hinted-from, makes a service run "
        "(--budget; full then trains at the same budget on the same items)",
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
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the simulated annotator and the data subsets; the network's own seed is "
        "--set seed=N (mask-derived methods such as paper train the same under any --seed)",
    )
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
    p.add_argument(
        "--hinted-from",
        type=int,
        default=0,
        help="service runs: hint the items after the first N of the seeded order instead "
        "(a tuning project disjoint from the scored one; default 0: the scored one)",
    )
    p.add_argument(
        "--vote-weights",
        type=vote_weights,
        default=[],
        help="service runs: also score the default's hinted items voted with each of these "
        "hint_weight values (comma-separated; the same trained model)",
    )


def vote_weights(raw: str) -> list[float]:
    """``--vote-weights``: ``"0,0.5"`` -> ``[0.0, 0.5]`` (each a ``hint_weight`` in [0, 1])."""
    try:
        out = [float(w) for w in raw.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {raw!r}") from None
    if any(not 0.0 <= w <= 1.0 for w in out):
        raise argparse.ArgumentTypeError(f"each weight must lie in [0, 1], got {raw!r}")
    return out


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
