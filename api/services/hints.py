"""Hints per (image, slice, class, author) with full history, and project priors.

A PUT replaces the caller's hints on one slice: each class in the body gets a new history row
(unless unchanged), each class the caller had hinted before but left out gets a "withdrawn"
row. Validation goes through ``models.bounds`` only (one source of truth for descriptors).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import not_found, unprocessable
from api.schemas.hints import AuthorHint, HintChange, SliceHints, SliceSummary
from api.services.images import check_slice
from models.bounds import BoundsError, ClassBounds, combine_hints, describe, parse_hint, parse_prior
from store.db import utcnow
from store.hints import latest_hints, project_priors
from store.tables import Hint, Image, Prior, Project, ProjectClass, User


def _classes(project: Project) -> dict[str, ProjectClass]:
    return {c.name: c for c in project.classes}


def _unknown_classes(project: Project, names: list[str]) -> None:
    known = _classes(project)
    unknown = [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(known) or "none"
        raise unprocessable(
            f"unknown class(es) {unknown}; the project's classes are: {listed}",
            code="unknown_class",
        )


def _too_large_number(value: Any, where: str) -> str | None:
    """Where in a hint/prior JSON a number is not a finite float (JSON integers are unbounded;
    descriptors are floats), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _too_large_number(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _too_large_number(item, f"{where}[{i}]")
            if found:
                return found
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return where
    elif isinstance(value, float) and not math.isfinite(value):
        return where  # NaN / Infinity literals, which Python's JSON parser accepts
    return None


def _check_numbers(name: str, payload: Any, code: str) -> None:
    where = _too_large_number(payload, name)
    if where:
        raise unprocessable(
            f"class {name}: the number at {where} is too large or not finite",
            code=code,
            class_name=name,
        )


def slice_spacing(image: Image) -> tuple[float, float]:
    """``(row_mm, col_mm)`` of the image's slices."""
    return float(image.spacing[1]), float(image.spacing[2])


def validate_hints(image: Image, project: Project, body: dict[str, Any]) -> dict[str, ClassBounds]:
    """Parse every class's hint against the image geometry; 422 naming class and problem."""
    _unknown_classes(project, list(body))
    out = {}
    for name, hint in body.items():
        _check_numbers(name, hint, "invalid_hint")
        try:
            out[name] = parse_hint(
                name, hint, spacing=slice_spacing(image), shape=(image.height, image.width)
            )
        except BoundsError as exc:
            raise unprocessable(str(exc), code="invalid_hint", class_name=name) from None
    return out


def put_hints(
    session: Session, user: User, image: Image, project: Project, z: int, body: dict[str, Any]
) -> None:
    check_slice(image, z)
    validate_hints(image, project, body)
    classes = _classes(project)
    mine = {
        rec.class_name: rec.payload
        for rec in latest_hints(session, [image.id], z)
        if rec.author_id == user.id
    }
    now = utcnow()
    # New or changed hints are appended; classes left out of the body are withdrawn (None).
    changes = {name: hint for name, hint in body.items() if mine.get(name) != hint}
    changes |= {name: None for name in mine if name not in body}
    for name, payload in changes.items():
        session.add(
            Hint(
                image_id=image.id,
                z=z,
                class_id=classes[name].id,
                author_id=user.id,
                payload=payload,
                created_at=now,
            )
        )
    image_id = image.id  # readable after a rollback, unlike the expired row
    try:
        session.commit()
    except IntegrityError:
        # The image was deleted while this request ran (foreign key): it is gone, say so.
        session.rollback()
        if session.get(Image, image_id) is None:
            raise not_found("image", image_id) from None
        raise


def get_hints(
    session: Session, user: User, image: Image, project: Project, z: int, author_id: int | None
) -> SliceHints:
    check_slice(image, z)
    records = latest_hints(session, [image.id], z)
    who = user.id if author_id is None else author_id
    spacing = slice_spacing(image)
    derived: dict[str, dict[str, Any]] = {}
    conflicts: dict[str, str] = {}
    by_class: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_class.setdefault(rec.class_name, []).append(rec.payload)
    for name, payloads in by_class.items():
        try:
            cb = combine_hints(name, payloads, spacing=spacing)
        except BoundsError as exc:
            conflicts[name] = str(exc)
            continue
        if cb is not None:
            derived[name] = describe(cb, spacing)
    return SliceHints(
        image_id=image.id,
        z=z,
        hints={r.class_name: r.payload for r in records if r.author_id == who},
        entries=[
            AuthorHint(
                class_name=r.class_name,
                author_id=r.author_id,
                author=r.author,
                hint=r.payload,
                updated_at=r.created_at,
            )
            for r in records
        ],
        derived=derived,
        conflicts=conflicts,
    )


def hint_history(
    session: Session, image: Image, z: int, offset: int, limit: int
) -> tuple[list[HintChange], int]:
    check_slice(image, z)
    where = (Hint.image_id == image.id) & (Hint.z == z)
    total = session.scalar(select(func.count()).select_from(Hint).where(where)) or 0
    rows = session.execute(
        select(Hint, ProjectClass.name, User.username)
        .join(ProjectClass, ProjectClass.id == Hint.class_id)
        .join(User, User.id == Hint.author_id)
        .where(where)
        .order_by(Hint.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    items = [
        HintChange(
            id=h.id,
            class_name=name,
            author_id=h.author_id,
            author=username,
            hint=h.payload,
            created_at=h.created_at,
        )
        for h, name, username in rows
    ]
    return items, total


def hinted_slices(session: Session, image: Image) -> list[SliceSummary]:
    by_z: dict[int, tuple[set[str], set[int]]] = {}
    for rec in latest_hints(session, [image.id]):
        classes, authors = by_z.setdefault(rec.z, (set(), set()))
        classes.add(rec.class_name)
        authors.add(rec.author_id)
    return [
        SliceSummary(z=z, classes=sorted(c), authors=len(a)) for z, (c, a) in sorted(by_z.items())
    ]


# ------------------------------------------------------------------------------------ priors


def validate_priors(project: Project, body: dict[str, Any]) -> None:
    _unknown_classes(project, list(body))
    for name, prior in body.items():
        _check_numbers(name, prior, "invalid_prior")
        try:
            # Unit spacing checks the structure; mm values are converted per image at training.
            parse_prior(name, prior, spacing=(1.0, 1.0))
        except BoundsError as exc:
            raise unprocessable(str(exc), code="invalid_prior", class_name=name) from None


def put_priors(session: Session, user: User, project: Project, body: dict[str, Any]) -> None:
    """Replace the project's priors: classes left out lose theirs."""
    validate_priors(project, body)
    classes = _classes(project)
    existing = {
        p.class_id: p for p in session.scalars(select(Prior).where(Prior.project_id == project.id))
    }
    wanted = {classes[name].id: payload for name, payload in body.items()}
    for class_id, row in existing.items():
        if class_id not in wanted:
            session.delete(row)
    now = utcnow()
    for class_id, payload in wanted.items():
        row = existing.get(class_id)
        if row is None:
            session.add(
                Prior(
                    project_id=project.id,
                    class_id=class_id,
                    payload=payload,
                    updated_by=user.id,
                    updated_at=now,
                )
            )
        elif row.payload != payload:
            row.payload = payload
            row.updated_by = user.id
            row.updated_at = now
    session.commit()


def get_priors(session: Session, project: Project) -> dict[str, dict[str, Any]]:
    return project_priors(session, project.id)
