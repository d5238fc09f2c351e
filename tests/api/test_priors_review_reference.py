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


def _volume_image(api: Api, project_id: int, slices: int = 4) -> dict:
    import gzip

    import nibabel as nib

    vol = nib.Nifti1Image(np.zeros((20, 16, slices), np.int16), np.eye(4))  # x, y, z
    files = [("files", ("vol.nii.gz", gzip.compress(vol.to_bytes()), "application/gzip"))]
    r = api.client.post(f"/api/projects/{project_id}/images", files=files, headers=api.headers)
    assert r.status_code == 201, r.text
    return r.json()[0]


def test_reference_slices_from_review(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    """A slice corrected in Review becomes a reference slice; only labelled slices supervise."""
    from jobs.training_data import project_bounds

    p = api.create_project(classes=("LV", "RV"))
    img = _volume_image(api, p["id"])
    assert img["shape"] == [4, 1, 16, 20], img
    url = f"/api/images/{img['id']}/reference"
    none = api.client.get(f"{url}/slices", headers=api.headers)
    assert none.status_code == 200 and none.json()["exists"] is False
    labels = np.zeros((16, 20), np.uint8)
    labels[2:6, 3:9] = 2
    files = [("file", ("s.png", _label_png(labels), "image/png"))]
    r = api.client.put(f"{url}/slices/2", files=files, headers=api.headers)
    assert r.status_code == 200, r.text
    assert r.json()["slices"] == [2] and r.json()["labels"] == [0, 2]
    assert api.client.get(f"{url}/slices", headers=api.headers).json() == {
        "image_id": img["id"],
        "exists": True,
        "slices": [2],
    }
    # A browser canvas writes RGBA: grey and opaque is read as labels.
    rgba = np.zeros((16, 20, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[8:12, 4:8, :3] = 1
    buf = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buf, format="PNG")
    files = [("file", ("s.png", buf.getvalue(), "image/png"))]
    r = api.client.put(f"{url}/slices/0", files=files, headers=api.headers)
    assert r.status_code == 200, r.text
    assert r.json()["slices"] == [0, 2] and r.json()["labels"] == [0, 1, 2]
    png = api.client.get(f"{url}/slices/2.png", headers=api.headers)
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(png.content))), labels)

    # Training with references: the labelled slices join (with a mask), the others do not.
    with app.state.session_factory() as session:
        pb = project_bounds(session, p["id"], use_reference_masks=True)
        assert sorted((s.z, s.has_reference) for s in pb.slices) == [(0, True), (2, True)]
        assert project_bounds(session, p["id"]).slices == []

    # Bad input: 4xx, and nothing changed.
    rgba[0, 0, 3] = 10
    buf = io.BytesIO()
    PILImage.fromarray(rgba, "RGBA").save(buf, format="PNG")
    cases = [
        (f"{url}/slices/1", _label_png(np.zeros((10, 20))), 422, "does not match"),
        (f"{url}/slices/1", _label_png(np.full((16, 20), 3)), 422, "0..2"),
        (f"{url}/slices/1", b"GIF89a not a png", 422, "s.png"),
        (f"{url}/slices/1", buf.getvalue(), 422, "opaque"),
        (f"{url}/slices/4", _label_png(labels), 404, "slice 4"),
    ]
    for target, data, code, word in cases:
        r = api.client.put(
            target, files=[("file", ("s.png", data, "image/png"))], headers=api.headers
        )
        assert r.status_code == code and word in r.json()["detail"]["message"], (word, r.text)
    viewer = api.new_user("viewer", p["id"])
    r = api.client.put(
        f"{url}/slices/1",
        files=[("file", ("s.png", _label_png(labels), "image/png"))],
        headers=viewer,
    )
    assert r.status_code == 403
    assert api.client.get(url, headers=api.headers).json()["slices"] == [0, 2]

    # A whole uploaded volume labels every slice again.
    full = np.zeros((4, 16, 20), np.uint8)
    import gzip

    import nibabel as nib

    vol = nib.Nifti1Image(full.transpose(2, 1, 0), np.eye(4))
    files = [("file", ("ref.nii.gz", gzip.compress(vol.to_bytes()), "application/gzip"))]
    r = api.client.put(url, files=files, headers=api.headers)
    assert r.status_code == 200, r.text
    assert r.json()["slices"] is None
    r = api.client.put(
        f"{url}/slices/3",
        files=[("file", ("s.png", _label_png(labels), "image/png"))],
        headers=api.headers,
    )
    assert r.json()["slices"] is None and r.json()["labels"] == [0, 2]
