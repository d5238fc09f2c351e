"""store.hints: the latest hint per (image, slice, class, author) and project priors."""

from __future__ import annotations

from tests.api_helpers import Api


def test_latest_hints_per_author_and_withdrawals(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    from store.hints import hints_by_slice, latest_hints, project_priors

    p = api.create_project(classes=("LV", "RV"))
    img = api.upload_png(p["id"])
    other = api.new_user("annotator", p["id"])
    url = f"/api/images/{img['id']}/slices/0/hints"
    api.client.put(
        url, json={"LV": {"size": [1, 9]}, "RV": {"present": False}}, headers=api.headers
    )
    api.client.put(url, json={"LV": {"size": [2, 8]}}, headers=api.headers)  # RV withdrawn
    api.client.put(url, json={"LV": {"size": [3, 7]}}, headers=other)
    api.client.put(
        f"/api/projects/{p['id']}/priors", json={"RV": {"presence": "maybe"}}, headers=api.headers
    )
    with app.state.session_factory() as session:
        records = latest_hints(session, [img["id"]])
        assert [(r.class_name, r.payload["size"]) for r in records] == [
            ("LV", [2, 8]),
            ("LV", [3, 7]),
        ]
        assert {r.class_index for r in records} == {1}
        assert hints_by_slice(session, [img["id"]]) == {
            (img["id"], 0): {"LV": [{"size": [2, 8]}, {"size": [3, 7]}]}
        }
        assert latest_hints(session, [img["id"]], z=1) == []
        assert latest_hints(session, []) == []
        assert project_priors(session, p["id"]) == {"RV": {"presence": "maybe"}}
