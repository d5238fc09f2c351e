"""Reviews per (image, model version) and the zip of accepted masks only (issue 13)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from fastapi import FastAPI

from tests.api.test_predictions import _store
from tests.api_helpers import Api


def test_review_is_per_model_version_and_zip_keeps_accepted(api: Api, app: FastAPI) -> None:
    project = api.create_project(classes=("LV", "RV"))
    a = api.upload_png(project["id"], name="a.png", height=16, width=16)
    b = api.upload_png(project["id"], name="b.png", height=16, width=16)
    labels = {a["id"]: np.ones((1, 16, 16), np.uint8), b["id"]: np.ones((1, 16, 16), np.uint8)}
    v1 = _store(app, project["id"], 1, labels)

    def review(image_id: int, status: str, model: int | None = None) -> dict:
        body = {"status": status} | ({"model_version_id": model} if model else {})
        r = api.client.put(f"/api/images/{image_id}/review", json=body, headers=api.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def state(image_id: int, model: int | None = None) -> dict:
        params = {"model": model} if model else {}
        r = api.client.get(f"/api/images/{image_id}/review", params=params, headers=api.headers)
        assert r.status_code == 200, r.text
        return r.json()

    answer = review(a["id"], "accepted")  # default: the newest version that predicted it
    assert (answer["model_version_id"], answer["status"]) == (v1, "accepted")
    assert answer["history"][0]["model_version_id"] == v1
    review(b["id"], "rejected")

    def zip_names(**params: object) -> list[str] | int:
        r = api.client.get(
            f"/api/projects/{project['id']}/predictions.zip",
            params={"format": "png", **params},
            headers=api.headers,
        )
        if r.status_code != 200:
            return r.status_code
        return sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist())

    assert len(zip_names()) == 2  # type: ignore[arg-type]
    assert zip_names(accepted_only="true") == [n for n in zip_names() if n.startswith("a")]  # type: ignore[union-attr]

    # A second model: its masks are unreviewed, v1's decisions stay with v1.
    v2 = _store(app, project["id"], 2, labels)
    assert state(a["id"])["model_version_id"] == v2
    assert state(a["id"])["status"] is None
    assert state(a["id"], v1)["status"] == "accepted"
    assert zip_names(accepted_only="true") == 404
    assert zip_names(accepted_only="true", model=v1) == [
        n
        for n in zip_names(model=v1)  # type: ignore[union-attr]
        if n.startswith("a")
    ]
    review(a["id"], "rejected", v1)
    assert state(a["id"], v1)["status"] == "rejected"
    review(a["id"], "accepted")
    assert state(a["id"])["status"] == "accepted"
    image = api.client.get(f"/api/images/{a['id']}", headers=api.headers).json()
    assert image["review_status"] == "accepted"  # mirrors the current (newest) version
    r = api.client.put(
        f"/api/images/{a['id']}/review",
        json={"status": "accepted", "model_version_id": 999_999},
        headers=api.headers,
    )
    assert r.status_code == 404 and r.json()["detail"]["code"] == "no_prediction"
