"""From stored hints and priors to bound arrays per training slice (numpy + models.bounds only).

The API calls :func:`project_bounds` at job submission to report conflicts before anything is
queued; the worker calls it again at training time (hints may have changed since) and adds the
pixels. No torch here.

Rules:
- the latest hint of each author counts (``payload`` None = withdrawn); the hints of several
  authors for the same (slice, class) are intersected, since every one of them must hold;
- project priors apply to every slice of every image and are intersected with the hints;
- training slices: every slice with a hint, every slice of every image when the project has a
  prior, and (with ``use_reference_masks``) every slice of an image with a reference mask;
- a ring whose hole is the ellipse of another class on the slice (the Myo hole linked to the LV)
  also bounds the two classes together (``models.bounds.hole_fillers``): the project's pairs
  are ``ProjectBounds.unions``, each slice's bounds on them ``SliceBounds.union_lo/hi``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.bounds import (
    BoundsError,
    ClassBounds,
    HintConflict,
    combine_hints,
    hole_fillers,
    intersect,
    parse_prior,
    stack,
)
from models.budget import ProjectFacts, facts_from_bounds, resolve_config
from models.config import TrainConfig
from store.hints import hints_by_slice, project_priors
from store.tables import Image, ProjectClass, ReferenceMask

JOB_OPTIONS: dict[str, type] = {"use_reference_masks": bool}
"""Job-level options of a train config (the worker's, not ``TrainConfig`` fields) and types."""


def job_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The job options of a train config, each with its default (false) when not given."""
    return {key: typ(config.get(key, typ())) for key, typ in JOB_OPTIONS.items()}


@dataclass(frozen=True)
class SliceBounds:
    """Bounds of one training slice: ``lo``/``hi`` float32 ``(K, M)``, K = classes + background."""

    image_id: int
    z: int
    lo: np.ndarray
    hi: np.ndarray
    has_reference: bool = False
    # Per class (background excluded) the hint payloads of this slice: what models.regions
    # reads the sure pixels from.
    hints: tuple[tuple[Mapping[str, Any], ...], ...] = ()
    shape: tuple[int, int] = (0, 0)
    # Bounds on the project's class unions (``ProjectBounds.unions``), float32 ``(U, M)``;
    # unconstrained rows where this slice says nothing about a union.
    union_lo: np.ndarray | None = None
    union_hi: np.ndarray | None = None

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """What the trainer constrains: the classes' bounds, then the unions', ``(K + U, M)``."""
        if self.union_lo is None or self.union_hi is None:
            return self.lo, self.hi
        return np.concatenate([self.lo, self.union_lo]), np.concatenate([self.hi, self.union_hi])


@dataclass(frozen=True)
class BoundsProblem:
    """A hint or prior that cannot be used; ``message`` names the class and the descriptor."""

    image_id: int | None
    image_name: str | None
    z: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "image": self.image_name,
            "z": self.z,
            "message": self.message,
        }


@dataclass(frozen=True)
class ProjectBounds:
    classes: list[str]
    slices: list[SliceBounds]
    problems: list[BoundsProblem]
    images: list[Image]
    # Pairs of class labels (1-based, as in the label maps) bounded together on some slice.
    unions: list[tuple[int, int]] = field(default_factory=list)


def slice_unions(
    slice_hints: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[tuple[str, str], ClassBounds]:
    """Bounds on (ring, filling class) pairs of one slice; several authors' are intersected
    (pairs that turn out contradictory are left out: the classes' own bounds report those)."""
    out: dict[tuple[str, str], ClassBounds] = {}
    bad: set[tuple[str, str]] = set()
    for ring, ring_hints in slice_hints.items():
        for other, other_hints in slice_hints.items():
            if other == ring:
                continue
            for a, b in itertools.product(ring_hints, other_hints):
                for r, c, cb in hole_fillers({ring: a, other: b}):
                    key = (r, c)
                    try:
                        out[key] = cb if key not in out else intersect(out[key], cb, f"{r}+{c}")
                    except BoundsError:
                        bad.add(key)
    return {k: v for k, v in out.items() if k not in bad}


def project_classes(session: Session, project_id: int) -> list[ProjectClass]:
    """Classes in label order (label k = ``index`` k)."""
    return list(
        session.scalars(
            select(ProjectClass)
            .where(ProjectClass.project_id == project_id)
            .order_by(ProjectClass.index)
        )
    )


def project_bounds(
    session: Session, project_id: int, *, use_reference_masks: bool = False
) -> ProjectBounds:
    """All training slices of a project with their bounds, and every problem found on the way."""
    classes = project_classes(session, project_id)
    names = [c.name for c in classes]
    images = list(
        session.scalars(select(Image).where(Image.project_id == project_id).order_by(Image.id))
    )
    image_ids = [im.id for im in images]
    hints = hints_by_slice(session, image_ids)
    priors = project_priors(session, project_id)
    # image id -> its labelled slices (None = every slice; a list = slices corrected in Review)
    referenced: dict[int, set[int] | None] = {}
    if use_reference_masks and image_ids:
        referenced = {
            r.image_id: None if r.slices is None else {int(z) for z in r.slices}
            for r in session.scalars(
                select(ReferenceMask).where(ReferenceMask.image_id.in_(image_ids))
            )
        }
    hinted_zs: dict[int, list[int]] = {}
    for image_id, z in sorted(hints):
        hinted_zs.setdefault(image_id, []).append(z)
    problems: list[BoundsProblem] = []
    slices: list[SliceBounds] = []
    pair_bounds: dict[int, dict[tuple[str, str], ClassBounds]] = {}  # slice index -> pairs
    for image in images:
        spacing = (float(image.spacing[1]), float(image.spacing[2]))
        shape = (int(image.height), int(image.width))
        prior_bounds: dict[str, ClassBounds] = {}
        for cls in classes:
            if cls.name in priors:
                try:
                    prior_bounds[cls.name] = parse_prior(
                        cls.name, priors[cls.name], spacing=spacing
                    )
                except BoundsError as exc:
                    problems.append(BoundsProblem(image.id, image.name, None, f"prior: {exc}"))
        labelled = referenced.get(image.id, set())
        if priors or (image.id in referenced and labelled is None):
            zs = range(int(image.num_slices))
        else:
            zs = sorted({*hinted_zs.get(image.id, []), *(labelled or ())})
        for z in zs:
            if not 0 <= z < image.num_slices:
                continue  # a hint on a slice that no longer exists cannot constrain anything
            per_class: list[ClassBounds | None] = [None]
            ok = True
            slice_hints = hints.get((image.id, z), {})
            payloads = tuple(tuple(slice_hints.get(cls.name, [])) for cls in classes)
            for cls in classes:
                bounds: ClassBounds | None = None
                try:
                    bounds = combine_hints(
                        cls.name,
                        slice_hints.get(cls.name, []),
                        spacing=spacing,
                        shape=shape,
                        start=prior_bounds.get(cls.name),
                    )
                except HintConflict as exc:
                    what = "a hint and the project prior" if cls.name in prior_bounds else "hints"
                    message = f"conflict between {what}: {exc}"
                    problems.append(BoundsProblem(image.id, image.name, z, message))
                    ok = False
                except BoundsError as exc:
                    message = f"invalid hint: {exc}"
                    problems.append(BoundsProblem(image.id, image.name, z, message))
                    ok = False
                per_class.append(bounds)
            if ok:
                lo, hi = stack(per_class)
                has_ref = image.id in referenced and (labelled is None or z in labelled)
                slices.append(SliceBounds(image.id, z, lo, hi, has_ref, payloads, shape))
                pairs = slice_unions({n: slice_hints[n] for n in names if n in slice_hints})
                if pairs:
                    pair_bounds[len(slices) - 1] = pairs
    label = {name: k + 1 for k, name in enumerate(names)}
    union_names = sorted({pair for pairs in pair_bounds.values() for pair in pairs})
    if union_names:
        for i, sb in enumerate(slices):
            pairs = pair_bounds.get(i, {})
            ulo, uhi = stack([pairs.get(pair) for pair in union_names])
            slices[i] = replace(sb, union_lo=ulo, union_hi=uhi)
    unions = [(label[r], label[c]) for r, c in union_names]
    return ProjectBounds(names, slices, problems, images, unions)


class NotTrainable(ValueError):
    """A project that cannot be trained as it is. ``code``: ``hint_conflict`` (``problems``
    lists them), ``no_hints`` (no training slice) or ``class_mismatch`` (the warm-start model's
    classes, ``warm_classes``, are not the project's now). The API and the worker word it for
    their readers (a 422, a failed job)."""

    def __init__(
        self,
        code: str,
        problems: Sequence[BoundsProblem] = (),
        warm_classes: Sequence[str] = (),
    ) -> None:
        super().__init__(code)
        self.code, self.problems, self.warm_classes = code, list(problems), list(warm_classes)


def check_trainable(pb: ProjectBounds) -> None:
    """The preconditions of training: every hint and prior usable, at least one training slice.
    Raises :class:`NotTrainable` (``hint_conflict`` before ``no_hints``)."""
    if pb.problems:
        raise NotTrainable("hint_conflict", pb.problems)
    if not pb.slices:
        raise NotTrainable("no_hints")


def check_warm_start(warm_classes: Sequence[str], classes: Sequence[str]) -> None:
    """A model warm-starts a training only with the project's classes, in label order.
    Raises :class:`NotTrainable` (``class_mismatch``)."""
    if list(warm_classes) != list(classes):
        raise NotTrainable("class_mismatch", warm_classes=warm_classes)


def project_facts(pb: ProjectBounds) -> ProjectFacts:
    """What the default training run is sized by (``models.budget``)."""
    hinted = {sb.image_id for sb in pb.slices}
    channels = max((im.channels for im in pb.images if im.id in hinted), default=1)
    return facts_from_bounds(
        [(sb.lo, sb.hi) for sb in pb.slices], [sb.shape for sb in pb.slices], channels
    )


WARM_START_KEPT = ("network", "network_kwargs")
"""What a warm start takes from its model version's config: the weights only fit the network
they were trained in, whatever the time budget or preset would pick for a fresh run."""


def resolve_job_config(
    config: Mapping[str, Any],
    facts: ProjectFacts,
    device: str,
    warm_config: Mapping[str, Any] | None = None,
) -> tuple[TrainConfig, float]:
    """A train job's config -> ``(TrainConfig, estimated training seconds)``.

    The job options are checked and set aside, the rest resolved by
    :func:`models.budget.resolve_config` (the time budget's default, explicit fields replacing
    it one by one). Reference masks are used through the cross-entropy term only, so
    ``use_reference_masks`` switches it on unless ``ce_weight`` is given. ``warm_config``: the
    stored config of the model version a warm start begins from; its network
    (``WARM_START_KEPT``) replaces the plan's, and a config that asks for another one is
    refused. ValueError / TypeError name a bad field.
    """
    for key, typ in JOB_OPTIONS.items():
        if key in config and not isinstance(config[key], typ):
            raise ValueError(f"{key} must be a {typ.__name__}")
    overrides = {k: v for k, v in config.items() if k not in JOB_OPTIONS}
    kept = {k: warm_config[k] for k in WARM_START_KEPT if k in (warm_config or {})}
    asked = {k: overrides[k] for k in kept if k in overrides and overrides[k] != kept[k]}
    if asked:
        raise ValueError(
            f"a warm start keeps its model's network ({_network_text(kept)}); this config asks "
            f"for {_network_text(asked)}: leave {' and '.join(sorted(asked))} out, or train "
            "from scratch"
        )
    cfg, seconds = resolve_config({**overrides, **kept}, facts, device)
    uses_references = job_options(config)["use_reference_masks"]
    if uses_references and "ce_weight" not in overrides and cfg.ce_weight <= 0:
        cfg.ce_weight = 1.0
    return cfg, seconds


def _network_text(fields: Mapping[str, Any]) -> str:
    """``{"network": "unet", "network_kwargs": {"width": 8}}`` -> ``unet, width 8``."""
    parts = [str(fields["network"])] if "network" in fields else []
    kwargs = fields.get("network_kwargs")
    if isinstance(kwargs, Mapping):
        parts += [f"{k} {v}" for k, v in kwargs.items()]
    elif "network_kwargs" in fields:
        parts.append(f"network_kwargs {kwargs!r}")
    return ", ".join(parts)
