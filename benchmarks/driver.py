"""The driver of a real-data benchmark (``benchmarks/acdc.py``, ``benchmarks/kvasir.py``): every
method in its own process, resumable, then the results written.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.command_line import command_line, git_commit, machine
from benchmarks.method_training import fingerprint, read_json, train_method, write_json
from benchmarks.paths import REPO_ROOT
from benchmarks.presets import Preset, merge_train
from benchmarks.reporting import Scores, write_results


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
    method_unions: Callable[[str], list[tuple[int, int]]] = lambda _m: []
    """Per method, after ``build_samples``: the class labels bounded together (``train(unions=
    ...)``); the samples then carry their rows after the classes'."""
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
    log = logger()
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
    todo = [m for m in methods if read_json(works[m] / "result.json") is None]
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
        results[method] = read_json(works[method] / "result.json")
        if method not in todo:
            log(f"{method}: cached result from {works[method]}")
    payload = {
        "title": bench.title,
        "methods": results,
        "preset": preset_label,
        "preset_config": {
            "train": preset.train,
            "per_method": preset.per_method,
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
        "train": merge_train(
            preset.train,
            bench.method_train(method),
            preset.per_method.get(method, {}),
            overrides=preset.overrides,
        ),
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
    log = logger()
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "key.json", key)
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
        unions=bench.method_unions(method),
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
    write_json(work / "result.json", res)
    d = res["dice"]
    log(
        f"{method}: Dice "
        + ", ".join(f"{c} {d[c]:.3f}" for c in (*bench.classes, "mean"))
        + f" | {res['seconds']:.0f} s, {timing.seconds_per_epoch:.2f} s/epoch"
    )


def logger() -> Callable[[str], None]:
    from tqdm import tqdm

    def log(msg: str) -> None:
        tqdm.write(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr)

    return log
