"""Ids beyond the database's INTEGER are a 422 naming the field, never a 500 (PostgreSQL raises
"integer out of range" if such a value reaches a query)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api_helpers import Api

TOO_BIG = 2**40


@pytest.mark.parametrize(
    "path",
    [
        f"/api/jobs/{TOO_BIG}",
        f"/api/jobs/{TOO_BIG}/events",
        f"/api/projects/{TOO_BIG}/jobs",
        f"/api/models/{TOO_BIG}",
        f"/api/projects/{TOO_BIG}/models",
        f"/api/projects/1/models/{TOO_BIG}",
        f"/api/images/{TOO_BIG}/prediction",
        f"/api/images/{TOO_BIG}/predictions",
        f"/api/projects/{TOO_BIG}/predictions.zip",
    ],
)
def test_huge_path_id_is_422(client: TestClient, admin_headers: dict[str, str], path: str) -> None:
    r = client.get(path, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["errors"][0]["loc"][0] == "path"


def test_huge_query_and_body_ids_are_422(client: TestClient, api: Api) -> None:
    project = api.create_project()
    image = api.upload_png(project["id"])
    r = client.post(
        f"/api/projects/{project['id']}/jobs",
        json={"kind": "predict", "config": {}, "model_version_id": TOO_BIG},
        headers=api.headers,
    )
    assert r.status_code == 422, r.text
    assert "model_version_id" in r.json()["detail"]["message"]
    for query in (f"prediction?model={TOO_BIG}", f"slices/0/hints?author={TOO_BIG}"):
        r = client.get(f"/api/images/{image['id']}/{query}", headers=api.headers)
        assert r.status_code == 422, (query, r.text)
