"""App-wide behaviour: one error body, OpenAPI and /docs, the web page, no torch in the API."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient

from tests.requirements import REPO_ROOT


def test_unknown_paths_and_methods_use_the_error_body(client: TestClient, admin_headers) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/no-such-thing", headers=admin_headers)
    assert r.status_code == 404
    assert r.json()["detail"]["code"] == "not_found"
    r = client.delete("/api/health")
    assert r.status_code == 405
    assert r.json()["detail"]["code"] == "method_not_allowed"
    r = client.get("/api/projects/abc", headers=admin_headers)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["code"] == "validation_error" and "project_id" in detail["message"]
    assert detail["errors"][0]["loc"] == ["path", "project_id"]
    r = client.get(f"/api/projects/{2**40}", headers=admin_headers)
    assert r.status_code == 422  # bounded ids: never an integer overflow in the database


def test_openapi_has_examples_security_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    put = spec["paths"]["/api/images/{image_id}/slices/{z}/hints"]["put"]
    examples = put["requestBody"]["content"]["application/json"]["examples"]
    assert {"intervals", "ellipse"} <= set(examples)
    upload = spec["paths"]["/api/projects/{project_id}/images"]["post"]
    assert (
        "files" in upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    )
    assert client.get("/docs").status_code == 200


def test_web_page_lists_projects_through_the_api(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert '<script type="module" src="js/main.js">' in r.text
    js = client.get("/js/api.js")
    assert js.status_code == 200
    assert "Authorization" in js.text and "X-CSRF-Token" in js.text
    assert "/api/projects" in client.get("/js/projects.js").text


def test_the_api_process_does_not_import_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys; from api.app import create_app; import shapehint.serve; "
        "from store.settings import Settings; "
        f"create_app(Settings(data_dir={str(tmp_path)!r})); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr


def test_units_table_is_models_units_and_public(client: TestClient) -> None:
    from models.units import COMPONENTS, unit_of

    r = client.get("/api/units")  # no credentials: constant metadata, like /api/health
    assert r.status_code == 200
    comps = r.json()["components"]
    assert [c["key"] for c in comps] == list(COMPONENTS)
    by_key = {c["key"]: c for c in comps}
    assert by_key["size"]["unit"] == {"px": unit_of("size", "px"), "mm": "mm^2"}
    assert by_key["centroid_x"]["descriptor"] == "centroid" and by_key["centroid_x"]["sub"] == "x"
    assert by_key["length"]["axes"] == "L" and by_key["cov_xy"]["axes"] == "xy"
    assert r.json()["systems"] == ["px", "mm"]
