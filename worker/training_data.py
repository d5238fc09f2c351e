"""From stored hints and priors to bound arrays per training slice (numpy + models.bounds only).

The API calls :func:`project_bounds` at job submission to report conflicts before anything is
queued; the worker calls it again at training time (hints may have changed since) and adds the
pixels. No torch here.

Rules:
- the latest hint of each author counts (``payload`` None = withdrawn); the hints of several
  authors for the same (slice, class) are intersected, since every one of them must hold;
- project priors apply to every slice of every image and are intersected with the hints;
- training slices: every slice with a hint, every slice of every image when the project has a
  prior, and (with ``use_reference_masks``) every slice of an image with a reference mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.bounds import BoundsError, ClassBounds, intersect, parse_hint, parse_prior, stack
from store.hints import hints_by_slice, project_priors
from store.tables import Image, ProjectClass, ReferenceMask


@dataclass(frozen=True)
class SliceBounds:
    """Bounds of one training slice: ``lo``/``hi`` float32 ``(K, M)``, K = classes + background."""

    image_id: int
    z: int
    lo: np.ndarray
    hi: np.ndarray
    has_reference: bool = False


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
    referenced: set[int] = set()
    if use_reference_masks and image_ids:
        referenced = set(
            session.scalars(
                select(ReferenceMask.image_id).where(ReferenceMask.image_id.in_(image_ids))
            )
        )
    hinted_zs: dict[int, list[int]] = {}
    for image_id, z in sorted(hints):
        hinted_zs.setdefault(image_id, []).append(z)
    problems: list[BoundsProblem] = []
    slices: list[SliceBounds] = []
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
        if priors or image.id in referenced:
            zs = range(int(image.num_slices))
        else:
            zs = hinted_zs.get(image.id, [])
        for z in zs:
            if not 0 <= z < image.num_slices:
                continue  # a hint on a slice that no longer exists cannot constrain anything
            per_class: list[ClassBounds | None] = [None]
            ok = True
            slice_hints = hints.get((image.id, z), {})
            for cls in classes:
                bounds: ClassBounds | None = prior_bounds.get(cls.name)
                for payload in slice_hints.get(cls.name, []):
                    try:
                        hb = parse_hint(cls.name, payload, spacing=spacing, shape=shape)
                    except BoundsError as exc:
                        problems.append(
                            BoundsProblem(image.id, image.name, z, f"invalid hint: {exc}")
                        )
                        ok = False
                        break
                    try:
                        bounds = hb if bounds is None else intersect(bounds, hb, cls.name)
                    except BoundsError as exc:
                        what = (
                            "a hint and the project prior" if cls.name in prior_bounds else "hints"
                        )
                        problems.append(
                            BoundsProblem(
                                image.id, image.name, z, f"conflict between {what}: {exc}"
                            )
                        )
                        ok = False
                        break
                per_class.append(bounds)
            if ok:
                lo, hi = stack(per_class)
                slices.append(SliceBounds(image.id, z, lo, hi, image.id in referenced))
    return ProjectBounds(names, slices, problems, images)
