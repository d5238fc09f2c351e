"""Does a prediction honour the hints it was trained from? (numpy only, no torch)

After training, every hinted slice's predicted label map is measured (``models.bounds.measure``)
and compared with that slice's bounds. Per class this gives the number of hinted slices, how
many of them meet every finite bound, and on how many the class is predicted empty although it
was hinted present. :func:`report` sums them and words warnings a user can act on, so a run
that learned nothing for a class never passes as a success. On the images nobody hinted there
are no bounds; :func:`missing_where_expected` flags those where a class the user hinted in
every hinted image is predicted nowhere (a model that does not carry to other scans).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.bounds import measure
from models.units import COMPONENT_INDEX

SIZE = COMPONENT_INDEX["size"]
RELATIVE_SLACK = 0.05
"""A binary prediction's descriptor may miss a bound by this fraction of the bound's magnitude
(at least ``ABSOLUTE_SLACK`` px): the bounds were met by soft maps, the argmax rounds them."""
ABSOLUTE_SLACK = 0.5
LOW_FRACTION = 0.5
"""Below this fraction of hinted slices meeting their bounds a class gets a warning."""
LISTED_IMAGES = 10
"""A warning names at most this many images (then how many more)."""


@dataclass
class ClassTally:
    """One class over some slices: ``hinted_slices`` with any finite bound for it,
    ``meeting_bounds`` of those whose prediction meets them all, ``present_slices`` hinted
    present and ``empty_where_present`` of those predicted empty."""

    hinted_slices: int = 0
    meeting_bounds: int = 0
    present_slices: int = 0
    empty_where_present: int = 0

    def add(self, other: ClassTally) -> None:
        self.hinted_slices += other.hinted_slices
        self.meeting_bounds += other.meeting_bounds
        self.present_slices += other.present_slices
        self.empty_where_present += other.empty_where_present

    def to_dict(self) -> dict[str, float | int | None]:
        frac = self.meeting_bounds / self.hinted_slices if self.hinted_slices else None
        return {
            "hinted_slices": self.hinted_slices,
            "meeting_bounds": self.meeting_bounds,
            "fraction_meeting_bounds": frac,
            "present_slices": self.present_slices,
            "empty_where_present": self.empty_where_present,
        }


def broken_components(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which bounds a binary prediction breaks: ``(M,)`` bool for ``mask (H, W)`` against one
    class's ``lo``/``hi`` ``(M,)`` px, each end with the argmax's slack
    (``RELATIVE_SLACK``, at least ``ABSOLUTE_SLACK``); open ends never break. An empty mask
    has no centroid or spread: only its size is checked."""
    d = measure(mask)
    slack_lo = np.maximum(ABSOLUTE_SLACK, RELATIVE_SLACK * np.abs(lo))
    slack_hi = np.maximum(ABSOLUTE_SLACK, RELATIVE_SLACK * np.abs(hi))
    broken = (np.isfinite(lo) & (d < lo - slack_lo)) | (np.isfinite(hi) & (d > hi + slack_hi))
    if d[SIZE] <= 0:
        only_size = np.zeros_like(broken)
        only_size[SIZE] = broken[SIZE]
        return only_size
    return broken


def slice_tallies(labels: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[ClassTally]:
    """Tallies of one slice: ``labels (H, W)`` integer prediction, ``lo``/``hi`` ``(K, M)``
    bounds in px of that grid (row 0 the background, not checked). Returns K - 1 tallies."""
    out = []
    for k in range(1, lo.shape[0]):
        t = ClassTally()
        finite = np.isfinite(lo[k]) | np.isfinite(hi[k])
        if finite.any():
            t.hinted_slices = 1
            mask = labels == k
            present = lo[k, SIZE] > 0
            t.present_slices = int(present)
            t.empty_where_present = int(present and not mask.any())
            t.meeting_bounds = int(not broken_components(mask, lo[k], hi[k]).any())
        out.append(t)
    return out


def _warnings(per_class: Mapping[str, ClassTally]) -> list[str]:
    out = []
    for name, t in per_class.items():
        if t.empty_where_present:
            out.append(
                f"{name}: predicted empty on {t.empty_where_present} of {t.present_slices} "
                "hinted slices where it was hinted present"
            )
        elif t.hinted_slices and t.meeting_bounds / t.hinted_slices < LOW_FRACTION:
            out.append(
                f"{name}: only {t.meeting_bounds} of {t.hinted_slices} hinted slices "
                f"({round(100 * t.meeting_bounds / t.hinted_slices)} %) meet the hint's bounds"
            )
    return out


def report(
    per_image: Mapping[int, Sequence[ClassTally]], class_names: Sequence[str]
) -> tuple[dict[str, dict[str, dict[str, float | int | None]]], list[str]]:
    """``per_image``: each image's tallies per class (summed over its hinted slices) ->
    ``({"classes": {name: tally}, "images": {image_id: {name: tally}}}, warnings)``: plain
    dicts for a job result, and sentences for the classes a user should look at."""
    total = {name: ClassTally() for name in class_names}
    images = {}
    for image_id, tallies in per_image.items():
        images[str(image_id)] = {n: t.to_dict() for n, t in zip(class_names, tallies, strict=True)}
        for name, t in zip(class_names, tallies, strict=True):
            total[name].add(t)
    summary = {"classes": {n: t.to_dict() for n, t in total.items()}, "images": images}
    return summary, _warnings(total)


def missing_where_expected(
    hinted_present: Mapping[int, Collection[str]],
    predicted_present: Mapping[int, Collection[str]],
    class_names: Sequence[str],
) -> tuple[dict[str, list[int]], list[str]]:
    """Classes a model misses on the images nobody hinted.

    ``hinted_present``: per hinted image, the classes hinted present on any of its slices;
    ``predicted_present``: per predicted image, the classes predicted on any of its slices.
    A class hinted present in *every* hinted image is expected in each image without hints;
    where the model predicts it nowhere, the image is listed. Nothing is expected when no
    image was hinted. Returns ``({class: [image ids]}, warnings)``, only classes with misses.
    """
    expected = [
        name
        for name in class_names
        if hinted_present and all(name in present for present in hinted_present.values())
    ]
    unhinted = sorted(set(predicted_present) - set(hinted_present))
    missing = {
        name: ids
        for name in expected
        if (ids := [i for i in unhinted if name not in predicted_present[i]])
    }
    warnings = []
    for name, ids in missing.items():
        listed = ", ".join(str(i) for i in ids[:LISTED_IMAGES])
        more = f" and {len(ids) - LISTED_IMAGES} more" if len(ids) > LISTED_IMAGES else ""
        warnings.append(
            f"{name}: predicted nowhere in {len(ids)} of {len(unhinted)} images without hints "
            f"(image ids {listed}{more}), though hinted present in every hinted image: "
            "review them, or hint a slice of each and train again"
        )
    return missing, warnings
