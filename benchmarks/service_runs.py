"""The service's default on real data: hints as the service stores them, through
``jobs.training_data.resolve_job_config`` at a time budget, and hints-as-masks.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.annotator import Annotator, Ellipse, unconstrained
from benchmarks.command_line import budget_value, command_line, git_commit, machine
from benchmarks.driver import logger
from benchmarks.method_training import fingerprint, read_json, train_method, write_json
from benchmarks.reporting import Scores, write_results
from models.bounds import stack

SERVICE_METHODS: tuple[str, ...] = ("hints-as-masks", "fitted-hints-as-masks", "full", "default")
"""Methods of a service run (:func:`is_service_run`): the
annotator's shapes scored as masks, as drawn and fitted to the image (``models.fitting``, no
model); cross-entropy on the masks and the service's default, both through
``jobs.training_data.resolve_job_config`` with the same budget and project facts."""
UNTRAINED: tuple[str, ...] = ("hints-as-masks", "fitted-hints-as-masks")


def is_service_run(methods: Sequence[str], hinted_from: int) -> bool:
    """Whether ``--methods`` and ``--hinted-from`` make a service run rather than a preset
    benchmark: a method only service runs have is named, or ``--hinted-from`` moves the project
    (a tuning project exists only as a service project, so ``full`` alone then trains on its
    items too, not on the preset benchmark's whole training split). SystemExit where a service
    run names a preset method."""
    service = hinted_from > 0 or any(m in SERVICE_METHODS and m != "full" for m in methods)
    if service and set(methods) - set(SERVICE_METHODS):
        raise SystemExit(
            f"a service run (--hinted-from, or naming hints-as-masks or default) takes only "
            f"{','.join(SERVICE_METHODS)}"
        )
    return service


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


def fitted_hints_as_labels(item: HintedItem) -> np.ndarray:
    """The hints of one slice fitted to its image (``models.fitting``; a fit that breaks its
    hint's bounds: the drawing) as a label map, painted as the hints' vote paints them."""
    from models.fitting import fitted_shapes
    from models.refine import hint_vote

    votes = [[], *[[h] for h in item.hints]]
    background = np.zeros((len(votes), *item.mask.shape), np.float32)
    background[0] = 1.0
    q = hint_vote(background, votes, fitted_shapes(item.image, votes))
    return np.zeros(item.mask.shape, np.uint8) if q is None else q.argmax(0).astype(np.uint8)


def hints_as_labels(item: HintedItem) -> np.ndarray:
    """The hints of one slice (class 1, 2, ...) rasterised as a label map with
    ``models.regions.ellipse_mask`` (a ring: outer minus hole); later classes paint over
    earlier ones where shapes overlap."""
    from models.regions import ellipse_mask

    hints, shape = item.hints, item.mask.shape

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
    items: Sequence[HintedItem],
    classes: Sequence[str],
    method: str,
    fit_targets: str | None = None,
) -> tuple[list, list[tuple[int, int]]]:
    """What ``worker/train_pipeline.py::train_job`` builds: per slice the hints' bounds
    (``parse_hint``, several classes stacked), the bounds on rings and the class in their hole
    together (``jobs.training_data.slice_unions``) and sure map; ``full``: the mask, no bounds,
    no sure map. ``fit_targets``: the sure maps' band labelled by the drawn shapes fitted to
    the images (``models.fitting.slice_sure_map``). Returns ``(samples, unions)`` (unions as
    pairs of class labels)."""
    from jobs.training_data import slice_unions
    from models.bounds import parse_hint
    from models.fitting import slice_sure_map
    from models.train import TrainSample

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
        sure = slice_sure_map(it.image, [[], *[[h] for h in it.hints]], fit_targets, (lo, hi))
        out.append(TrainSample(it.image, lo, hi, None, sure))
    label = {c: k for k, c in enumerate(classes, start=1)}
    return out, [(label[r], label[c]) for r, c in names]


FULL_AT_BUDGET = {"ce_weight": 1.0, "entropy_weight": 0.0, "sure_weight": 0.0, "fit_hints": False}
"""``full`` in a service run: the default's resolved grid, network and budget, learning from
cross-entropy on the masks only (``method_train``'s reasoning for dropping the entropy term);
no drawings to fit (its estimate then leaves the fitting time out; its training never had it)."""


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
    from jobs.training_data import resolve_job_config
    from models.budget import facts_from_bounds
    from models.infer import load_predictor

    log = logger()
    device = args.device or "cpu"
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    commit = git_commit()
    hinted, unions = service_samples(bench.items, bench.classes, "default")
    k = len(bench.classes) + 1
    facts = facts_from_bounds(
        [(s.lo[:k], s.hi[:k]) for s in hinted],
        [it.mask.shape for it in bench.items],
        max(it.image.shape[0] for it in bench.items),
    )
    names = [it.name for it in bench.items]
    results: dict[str, Any] = {}
    threads = None
    for method in methods:
        cfg, estimate = None, 0.0
        if method not in UNTRAINED:
            config = {"budget": budget_value(str(budget)), **overrides}
            if method == "full":
                config.update(FULL_AT_BUDGET)
            cfg, estimate = resolve_job_config(config, facts, device)
        key = {
            "bench": bench.key,
            "method": method,
            "items": names,
            "budget": budget,
            "overrides": dict(overrides),
            "seed": args.seed,
            "device": device,
            "val": bool(bench.score_val) and method not in UNTRAINED,
            **({"votes": args.vote_weights} if method == "default" and args.vote_weights else {}),
            "version": bench.version,
            "unions": [list(u) for u in unions] if method == "default" else [],
            "hinted slices scored": "with the hints' vote (models.refine)",
            # The resolved plan: a change of the product's defaults is a new run, not a cache hit.
            "config": None if cfg is None else cfg.to_dict(),
        }
        work = Path(args.cache_dir) / f"{bench.key}-service" / f"{method}-{fingerprint(key)}"
        if args.fresh:
            for p in work.iterdir() if work.exists() else ():
                p.unlink()
        cached = read_json(work / "result.json")
        if cached is not None:
            log(f"{method}: cached result from {work}")
            results[method] = cached
            continue
        work.mkdir(parents=True, exist_ok=True)
        write_json(work / "key.json", key)
        if method in UNTRAINED:
            t0 = time.monotonic()
            as_labels = hints_as_labels if method == "hints-as-masks" else fitted_hints_as_labels
            scores = bench.score_hinted(lambda i, f=as_labels: f(bench.items[i]))
            res = scores.summary(bench.classes)
            res.update(seconds=time.monotonic() - t0, train_seconds=0.0)
        else:
            assert cfg is not None
            threads = cfg.num_threads
            if method == "full":
                samples = service_samples(bench.items, bench.classes, "full")[0]
            elif cfg.training_fit is not None:  # as a job does, before training (not timed)
                fit = cfg.training_fit
                samples = service_samples(bench.items, bench.classes, "default", fit)[0]
            else:
                samples = hinted
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
            if method == "default" and cfg.hint_weight > 0:
                res = delivered_scores(
                    bench, predictor, cfg.hint_weight, cfg.fit_hints, args.vote_weights
                )
            else:
                res = bench.score_hinted(
                    lambda i, p=predictor: p.predict_image(bench.items[i].image)
                ).summary(bench.classes)
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
                train_metrics=timing.metrics,
                grid=ck.get("grid"),
                network=f"{ck.get('network')} {ck.get('network_kwargs')}",
                config={k: ck.get(k) for k in sorted({*config, "ce_weight", "entropy_weight"})},
            )
        write_json(work / "result.json", res)
        results[method] = res
        log(f"{method}: Dice {res['dice']['mean']:.3f} | {res['train_seconds']:.0f} s training")
    rows: dict[str, Any] = {m: results[m] for m in methods}
    for m in methods:
        if "model_alone" in results[m]:
            rows[f"{m} (model alone)"] = results[m]["model_alone"]
        for w, scores in results[m].get("votes", {}).items():
            rows[f"{m} (hint_weight {w})"] = scores
    for m in methods:  # validation rows, after the hinted ones
        if "val" in results[m]:
            rows[f"{m} [val]"] = {**results[m]["val"], "ratio_to": "full [val]"}
    payload = {
        "title": bench.title,
        "methods": rows,
        "preset": f"service budget={budget}"
        + "".join(f",{k}={v}" for k, v in sorted(overrides.items()))
        + (f",hinted-from={args.hinted_from}" if args.hinted_from else ""),
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


def delivered_scores(
    bench: ServiceBench,
    predictor: Any,
    hint_weight: float,
    fit: bool,
    vote_weights: Sequence[float] = (),
    fits: dict[int, Any] | None = None,
) -> dict[str, Any]:
    """Scores of what the user downloads for the slices they hinted: ``predictor``'s
    probabilities with the hints' vote at ``hint_weight`` (``models.refine``; the drawings
    fitted to the image when ``fit``), the model alone under ``"model_alone"`` and the vote at
    each of ``vote_weights`` under ``"votes"``. ``predictor``: anything with
    ``predict_proba((N, C, H, W)) -> (N, K, H, W)``; ``fits``: the fitted drawings by item,
    filled on first use (scoring several predictors on one bench fits each item once)."""
    from models.fitting import fitted_shapes
    from models.refine import hint_bounds, refine_labels

    inputs: dict[int, tuple] = {}
    fits = {} if fits is None else fits

    def refined(i: int, w: float) -> np.ndarray:
        it = bench.items[i]
        if i not in inputs:
            votes = [[], *[[h] for h in it.hints]]
            bounds = hint_bounds(votes, bench.classes, it.mask.shape)
            if fit and i not in fits:
                fits[i] = fitted_shapes(it.image, votes, bounds)
            fitted = fits.get(i) if fit else None
            inputs[i] = (predictor.predict_proba(it.image[None])[0], votes, bounds, fitted)
        proba, votes, bounds, fitted = inputs[i]
        voted = refine_labels(proba, votes, w, bounds, fitted) if w > 0 else None
        return proba.argmax(0).astype(np.uint8) if voted is None else voted[0]

    res = bench.score_hinted(lambda i: refined(i, hint_weight)).summary(bench.classes)
    res["model_alone"] = bench.score_hinted(lambda i: refined(i, 0.0)).summary(bench.classes)
    res["votes"] = {
        f"{w:.3g}": bench.score_hinted(lambda i, w=w: refined(i, w)).summary(bench.classes)
        for w in vote_weights
    }
    return res


def _torch_load_config(ckpt: Path) -> dict[str, Any]:
    import torch

    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    return {**(ck.get("config") or {}), "grid": ck.get("grid"), "network": ck.get("network")}
