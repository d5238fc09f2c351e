"""Project priors, review decisions and reference masks."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select

from tests.api_helpers import Api


def _label_png(labels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(labels.astype(np.uint8), "L").save(buf, format="PNG")
    return buf.getvalue()


def test_priors_roundtrip_replace_and_validation(api: Api) -> None:
    p = api.create_project(classes=("LV", "RV"))
    url = f"/api/projects/{p['id']}/priors"
    body = {
        "LV": {"presence": "always", "unit": "mm", "size": [300, 3000]},
        "RV": {"presence": "maybe"},
    }
    r = api.client.put(url, json=body, headers=api.headers)
    assert r.status_code == 200 and r.json()["priors"] == body
    r = api.client.put(url, json={"RV": {"presence": "never"}}, headers=api.headers)
    assert api.client.get(url, headers=api.headers).json()["priors"] == {
        "RV": {"presence": "never"}
    }
    for bad, word in [
        ({"XX": {}}, "XX"),
        ({"LV": {"presence": "often"}}, "presence"),
        ({"LV": {"size": [5, 1]}}, "lower bound"),
        ({"LV": {"ellipse": {"cx": 1}}}, "ellipse"),
    ]:
        r = api.client.put(url, json=bad, headers=api.headers)
        assert r.status_code == 422 and word in r.json()["detail"]["message"], (bad, r.text)
    assert api.client.get(url, headers=api.headers).json()["priors"] == {
        "RV": {"presence": "never"}
    }
    viewer = api.new_user("viewer", p["id"])
    assert api.client.get(url, headers=viewer).status_code == 200
    assert api.client.put(url, json={}, headers=viewer).status_code == 403


def test_review_history_and_roles(api: Api) -> None:
    p = api.create_project()
    img = api.upload_png(p["id"])
    url = f"/api/images/{img['id']}/review"
    assert api.client.get(url, headers=api.headers).json() == {
        "image_id": img["id"],
        "model_version_id": None,  # no prediction yet
        "status": None,
        "history": [],
    }
    api.client.put(
        url, json={"status": "needs-hints", "comment": "RV missing"}, headers=api.headers
    )
    r = api.client.put(url, json={"status": "accepted"}, headers=api.headers)
    state = r.json()
    assert state["status"] == "accepted"
    assert [h["status"] for h in state["history"]] == ["accepted", "needs-hints"]
    assert state["history"][1]["comment"] == "RV missing"
    assert (
        api.client.get(f"/api/images/{img['id']}", headers=api.headers).json()["review_status"]
        == "accepted"
    )
    assert api.client.put(url, json={"status": "great"}, headers=api.headers).status_code == 422
    viewer = api.new_user("viewer", p["id"])
    assert api.client.put(url, json={"status": "rejected"}, headers=viewer).status_code == 403


def test_reference_mask_upload_render_replace_delete(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    p = api.create_project(classes=("LV", "RV"))
    img = api.upload_png(p["id"], height=16, width=20)
    url = f"/api/images/{img['id']}/reference"
    assert api.client.get(url, headers=api.headers).status_code == 404
    labels = np.zeros((16, 20), np.uint8)
    labels[2:6, 3:9] = 1
    labels[10:14, 12:18] = 2
    files = [("file", ("ref.png", _label_png(labels), "image/png"))]
    r = api.client.put(url, files=files, headers=api.headers)
    assert r.status_code == 200, r.text
    assert r.json()["labels"] == [0, 1, 2]
    png = api.client.get(f"{url}/slices/0.png", headers=api.headers)
    assert png.status_code == 200
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(png.content))), labels)
    from store.tables import ReferenceMask

    with app.state.session_factory() as session:
        first_key = session.scalars(
            select(ReferenceMask.mask_key).where(ReferenceMask.image_id == img["id"])
        ).one()
    files = [("file", ("ref.png", _label_png(np.ones((16, 20))), "image/png"))]
    assert api.client.put(url, files=files, headers=api.headers).json()["labels"] == [1]
    assert not app.state.blobs.exists(first_key)  # the replaced mask's blob is gone
    assert api.client.delete(url, headers=api.headers).status_code == 204
    assert api.client.get(url, headers=api.headers).status_code == 404


def test_bad_reference_masks_are_422(api: Api) -> None:
    p = api.create_project(classes=("LV",))
    img = api.upload_png(p["id"], height=16, width=20)
    url = f"/api/images/{img['id']}/reference"
    cases = [
        (_label_png(np.zeros((10, 20))), "does not match"),
        (_label_png(np.full((16, 20), 2)), "0..1"),
        (b"not an image at all", "ref.png"),
    ]
    for data, word in cases:
        r = api.client.put(
            url, files=[("file", ("ref.png", data, "image/png"))], headers=api.headers
        )
        assert r.status_code == 422 and word in r.json()["detail"]["message"], r.text
    assert api.client.get(url, headers=api.headers).status_code == 404
