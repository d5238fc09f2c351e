"""Projects, classes, members and the role rules on them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from sqlalchemy import event

from tests.api_helpers import Api


@contextmanager
def count_statements(app: FastAPI) -> Iterator[list[str]]:
    """SQL statements the app's engine runs inside the block."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    engine = app.state.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_create_list_get_project(api: Api) -> None:
    p = api.create_project(classes=("LV", "RV", "Myo"), name="cardiac")
    assert [c["index"] for c in p["classes"]] == [1, 2, 3]
    assert [c["name"] for c in p["classes"]] == ["LV", "RV", "Myo"]
    assert all(c["color"].startswith("#") for c in p["classes"])
    assert p["role"] == "owner" and p["image_count"] == 0
    got = api.client.get(f"/api/projects/{p['id']}", headers=api.headers).json()
    assert got == p
    page = api.client.get("/api/projects", headers=api.headers).json()
    assert p["id"] in [x["id"] for x in page["items"]]


def test_project_list_paginates(api: Api) -> None:
    for _ in range(3):
        api.create_project()
    first = api.client.get("/api/projects?limit=2", headers=api.headers).json()
    second = api.client.get("/api/projects?limit=2&offset=2", headers=api.headers).json()
    assert len(first["items"]) == 2 and first["total"] >= 3
    assert not {x["id"] for x in first["items"]} & {x["id"] for x in second["items"]}
    assert api.client.get("/api/projects?limit=0", headers=api.headers).status_code == 422


def test_project_list_reads_roles_and_counts_per_page_not_per_project(
    api: Api, app: FastAPI
) -> None:
    annotated, viewed = api.create_project(), api.create_project()
    api.upload_png(annotated["id"])
    api.upload_png(annotated["id"], seed=1)
    user = api.new_user("annotator", annotated["id"])
    r = api.client.post(
        f"/api/projects/{viewed['id']}/members",
        json={
            "username": api.client.get("/api/auth/me", headers=user).json()["username"],
            "role": "viewer",
        },
        headers=api.headers,
    )
    assert r.status_code == 201, r.text
    with count_statements(app) as few:
        page = api.client.get("/api/projects?limit=2", headers=user).json()
    by_id = {p["id"]: p for p in page["items"]}
    assert by_id[annotated["id"]]["role"] == "annotator"
    assert by_id[annotated["id"]]["image_count"] == 2
    assert by_id[viewed["id"]]["role"] == "viewer"
    assert by_id[viewed["id"]]["image_count"] == 0
    for _ in range(5):
        api.create_project()
    with count_statements(app) as many:
        page = api.client.get("/api/projects?limit=7", headers=api.headers).json()
    assert len(page["items"]) == 7
    assert len(many) <= len(few), many


def test_bad_project_bodies_are_422_naming_the_field(api: Api) -> None:
    cases = [
        ({"name": "x", "classes": []}, "classes"),
        ({"name": "x", "classes": [{"name": "A"}], "extra": 1}, "extra"),
        ({"name": "x", "classes": [{"name": "A", "color": "red"}]}, "color"),
    ]
    for body, field in cases:
        r = api.client.post("/api/projects", json=body, headers=api.headers)
        assert r.status_code == 422, body
        assert field in r.json()["detail"]["message"]
    r = api.client.post(
        "/api/projects",
        json={"name": "x", "classes": [{"name": "A"}, {"name": "A"}]},
        headers=api.headers,
    )
    assert r.status_code == 422 and "twice" in r.json()["detail"]["message"]


def test_non_members_see_404_and_roles_are_enforced(api: Api) -> None:
    p = api.create_project()
    pid = p["id"]
    outsider = api.new_user()
    viewer = api.new_user("viewer", pid)
    annotator = api.new_user("annotator", pid)
    assert api.client.get(f"/api/projects/{pid}", headers=outsider).status_code == 404
    assert pid not in [
        x["id"] for x in api.client.get("/api/projects", headers=outsider).json()["items"]
    ]
    assert api.client.get(f"/api/projects/{pid}", headers=viewer).json()["role"] == "viewer"
    for headers in (viewer, annotator):
        r = api.client.patch(f"/api/projects/{pid}", json={"name": "renamed"}, headers=headers)
        assert r.status_code == 403 and "owner" in r.json()["detail"]["message"]
        r = api.client.post(f"/api/projects/{pid}/classes", json={"name": "New"}, headers=headers)
        assert r.status_code == 403
    r = api.client.patch(f"/api/projects/{pid}", json={"name": "renamed"}, headers=api.headers)
    assert r.status_code == 200 and r.json()["name"] == "renamed"


def test_classes_append_and_rename_keep_labels(api: Api) -> None:
    p = api.create_project(classes=("A",))
    pid = p["id"]
    r = api.client.post(
        f"/api/projects/{pid}/classes", json={"name": "B", "color": "#00ff00"}, headers=api.headers
    )
    assert r.status_code == 201 and r.json()["index"] == 2 and r.json()["color"] == "#00ff00"
    dup = api.client.post(f"/api/projects/{pid}/classes", json={"name": "A"}, headers=api.headers)
    assert dup.status_code == 409
    cid = p["classes"][0]["id"]
    r = api.client.patch(
        f"/api/projects/{pid}/classes/{cid}", json={"name": "Apex"}, headers=api.headers
    )
    assert r.json() == {"id": cid, "index": 1, "name": "Apex", "color": p["classes"][0]["color"]}
    names = [
        c["name"]
        for c in api.client.get(f"/api/projects/{pid}/classes", headers=api.headers).json()
    ]
    assert names == ["Apex", "B"]


def test_members_roles_and_last_owner(api: Api) -> None:
    p = api.create_project()
    pid = p["id"]
    viewer = api.new_user("viewer", pid)
    members = api.client.get(f"/api/projects/{pid}/members", headers=viewer).json()["items"]
    assert sorted(m["role"] for m in members) == ["owner", "viewer"]
    viewer_id = next(m["user_id"] for m in members if m["role"] == "viewer")
    owner_id = next(m["user_id"] for m in members if m["role"] == "owner")
    r = api.client.patch(
        f"/api/projects/{pid}/members/{viewer_id}", json={"role": "annotator"}, headers=api.headers
    )
    assert r.status_code == 200 and r.json()["role"] == "annotator"
    r = api.client.patch(
        f"/api/projects/{pid}/members/{owner_id}", json={"role": "viewer"}, headers=api.headers
    )
    assert r.status_code == 409 and r.json()["detail"]["code"] == "last_owner"
    r = api.client.post(
        f"/api/projects/{pid}/members",
        json={"username": "nobody-here", "role": "viewer"},
        headers=api.headers,
    )
    assert r.status_code == 422 and "nobody-here" in r.json()["detail"]["message"]
    assert (
        api.client.delete(
            f"/api/projects/{pid}/members/{viewer_id}", headers=api.headers
        ).status_code
        == 204
    )
    assert api.client.get(f"/api/projects/{pid}", headers=viewer).status_code == 404
