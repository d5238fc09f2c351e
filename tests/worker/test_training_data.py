"""Hints and priors -> bound arrays per training slice (jobs.training_data), on both databases."""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI

from jobs.training_data import project_bounds
from models.bounds import COMPONENTS
from tests.api_helpers import Api

SIZE = COMPONENTS.index("size")
CX = COMPONENTS.index("centroid_x")


def _put(api: Api, image_id: int, z: int, body: dict, headers: dict | None = None) -> None:
    r = api.client.put(
        f"/api/images/{image_id}/slices/{z}/hints", json=body, headers=headers or api.headers
    )
    assert r.status_code == 200, r.text


def _bounds(app: FastAPI, project_id: int):  # type: ignore[no-untyped-def]
    with app.state.session_factory() as session:
        return project_bounds(session, project_id)


def test_latest_hint_per_author_counts_and_authors_intersect(api: Api, app: FastAPI) -> None:
    project = api.create_project(classes=("LV", "RV"))
    image = api.upload_png(project["id"], height=32, width=48)
    _put(api, image["id"], 0, {"LV": {"size": [10, 500]}})
    _put(api, image["id"], 0, {"LV": {"size": [20, 400], "centroid": {"x": [5, 30], "y": [5, 20]}}})
    other = api.new_user("annotator", project["id"])
    _put(api, image["id"], 0, {"LV": {"size": [100, 800]}, "RV": {"present": False}}, other)

    pb = _bounds(app, project["id"])
    assert pb.classes == ["LV", "RV"] and not pb.problems
    assert [(s.image_id, s.z) for s in pb.slices] == [(image["id"], 0)]
    lo, hi = pb.slices[0].lo, pb.slices[0].hi
    assert lo.shape == (3, len(COMPONENTS)) and lo.dtype == np.float32
    # Admin's latest [20, 400] intersected with the annotator's [100, 800].
    assert (lo[1, SIZE], hi[1, SIZE]) == (100, 400)
    assert (lo[1, CX], hi[1, CX]) == (5, 30)
    assert (lo[2, SIZE], hi[2, SIZE]) == (0, 0)  # RV absent
    assert np.isinf(lo[0]).all() and np.isinf(hi[0]).all()  # background unconstrained

    # Withdrawing (PUT {}) removes the admin's hint; the annotator's alone remains.
    _put(api, image["id"], 0, {})
    lo, hi = _bounds(app, project["id"]).slices[0].lo, _bounds(app, project["id"]).slices[0].hi
    assert (lo[1, SIZE], hi[1, SIZE]) == (100, 800)


def test_priors_apply_to_every_slice_and_conflicts_are_named(api: Api, app: FastAPI) -> None:
    project = api.create_project(classes=("LV",))
    first = api.upload_png(project["id"], name="a.png", height=32, width=32)
    second = api.upload_png(project["id"], name="b.png", height=32, width=32, seed=1)
    r = api.client.put(
        f"/api/projects/{project['id']}/priors",
        json={"LV": {"presence": "always", "unit": "px", "size": [50, 300]}},
        headers=api.headers,
    )
    assert r.status_code == 200, r.text
    pb = _bounds(app, project["id"])
    assert {s.image_id for s in pb.slices} == {first["id"], second["id"]}
    assert all((s.lo[1, SIZE], s.hi[1, SIZE]) == (50, 300) for s in pb.slices)

    _put(api, second["id"], 0, {"LV": {"size": [400, 500]}})
    pb = _bounds(app, project["id"])
    assert [s.image_id for s in pb.slices] == [first["id"]]
    (problem,) = pb.problems
    assert problem.image_id == second["id"] and problem.z == 0
    assert "LV" in problem.message and "size" in problem.message and "prior" in problem.message


def test_a_ring_whose_hole_is_another_class_bounds_the_pair(api: Api, app: FastAPI) -> None:
    project = api.create_project(classes=("RV", "Myo", "LV"))
    image = api.upload_png(project["id"], height=64, width=64)
    lv = {"cx": 32.0, "cy": 30.0, "a": 11.0, "b": 10.0, "angle": 0.0}
    myo = {"ellipse": {"cx": 32.0, "cy": 30.0, "a": 15.0, "b": 14.0, "angle": 0.0}, "hole": lv}
    _put(api, image["id"], 0, {"LV": {"ellipse": lv}, "Myo": myo, "RV": {"present": False}})
    # Slice 0 only: a second image whose ring hole is not the LV ellipse adds no pair.
    other = api.upload_png(project["id"], name="b.png", height=64, width=64, seed=2)
    moved = {**myo, "hole": {**lv, "cx": 28.0}}
    _put(api, other["id"], 0, {"LV": {"ellipse": lv}, "Myo": moved})

    pb = _bounds(app, project["id"])
    assert not pb.problems and pb.unions == [(2, 3)]  # Myo + LV, as class labels
    linked, unlinked = pb.slices
    ulo, uhi = linked.union_lo, linked.union_hi
    assert ulo is not None and uhi is not None and ulo.shape == (1, len(COMPONENTS))
    filled = np.pi * 15 * 14  # the outer ellipse bounds Myo and LV together
    assert ulo[0, SIZE] < filled < uhi[0, SIZE] < filled * 1.2**2 + 1
    assert linked.rows()[0].shape == (5, len(COMPONENTS))  # background, 3 classes, 1 union
    assert np.isinf(unlinked.union_lo).all() and np.isinf(unlinked.union_hi).all()
