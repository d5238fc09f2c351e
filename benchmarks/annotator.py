"""The simulated annotator: the moment ellipse of a mask, perturbed the way a person drawing it
would be off, and the bounds it gives.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import astuple, dataclass

import numpy as np

from models.bounds import ClassBounds, from_ellipse, from_ring, measure, stack
from models.units import COMPONENTS

M = len(COMPONENTS)


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
