"""Hints: stored as given, derived bounds in px and mm, history, per-author, bad input."""

from __future__ import annotations

import pytest

from tests.api_helpers import Api


@pytest.fixture(scope="module")
def image(api: Api) -> dict:
    p = api.create_project(classes=("LV", "RV"))
    img = api.upload_png(p["id"], height=32, width=48)
    img["project"] = p
    return img


def _url(image: dict, z: int = 0) -> str:
    return f"/api/images/{image['id']}/slices/{z}/hints"


def test_put_get_roundtrip_with_derived_bounds(api: Api, image: dict) -> None:
    body = {
        "LV": {"present": True, "size": [100, 300], "centroid": {"x": [20, 28], "y": [10, 18]}},
        "RV": {"present": False},
    }
    r = api.client.put(_url(image), json=body, headers=api.headers)
    assert r.status_code == 200, r.text
    got = api.client.get(_url(image), headers=api.headers).json()
    assert got["hints"] == body
    lv = got["derived"]["LV"]["components"]
    assert lv["size"]["px"] == [100.0, 300.0] and lv["size"]["unit_px"] == "px^2"
    assert lv["size"]["mm"] == [100.0, 300.0] and lv["size"]["unit_mm"] == "mm^2"  # PNG: 1 mm/px
    assert lv["centroid_x"]["px"] == [20.0, 28.0]
    assert got["derived"]["RV"]["present"] is False
    assert [e["class_name"] for e in got["entries"]] == ["LV", "RV"]


def test_ellipse_shorthand_is_stored_as_given_and_expanded(api: Api, image: dict) -> None:
    body = {"LV": {"ellipse": {"cx": 24, "cy": 16, "a": 10, "b": 6, "angle": 30}, "tolerance": 0.2}}
    assert api.client.put(_url(image), json=body, headers=api.headers).status_code == 200
    got = api.client.get(_url(image), headers=api.headers).json()
    assert got["hints"] == body
    comps = got["derived"]["LV"]["components"]
    lo, hi = comps["size"]["px"]
    area = 3.14159265 * 10 * 6
    assert lo < area < hi
    assert comps["centroid_x"]["px"][0] < 24 < comps["centroid_x"]["px"][1]


def test_ellipse_with_hole_is_a_ring_and_a_bad_hole_is_refused(api: Api, image: dict) -> None:
    outer = {"cx": 24, "cy": 16, "a": 12, "b": 10, "angle": 0}
    body = {"LV": {"ellipse": outer, "hole": {"cx": 24, "cy": 16, "a": 8, "b": 6}}}
    assert api.client.put(_url(image), json=body, headers=api.headers).status_code == 200
    got = api.client.get(_url(image), headers=api.headers).json()
    assert got["hints"] == body
    lo, hi = got["derived"]["LV"]["components"]["size"]["px"]
    ring_area = 3.14159265 * (12 * 10 - 8 * 6)
    assert lo < ring_area < hi < 3.14159265 * 12 * 10 * 1.2**2  # the filled ellipse's bound
    for bad, words in (
        ({"LV": {"ellipse": outer, "hole": {"cx": 24, "cy": 16, "a": 14, "b": 12}}}, "smaller"),
        ({"LV": {"hole": {"cx": 24, "cy": 16, "a": 4, "b": 3}}}, "only used with an ellipse"),
        ({"LV": {"ellipse": outer, "hole": {"cx": 24, "a": 4, "b": 3}}}, "hole is missing"),
    ):
        r = api.client.put(_url(image), json=bad, headers=api.headers)
        assert r.status_code == 422 and words in r.text, r.text
    assert api.client.get(_url(image), headers=api.headers).json()["hints"] == body  # unchanged


def test_history_keeps_every_change_and_withdrawals(api: Api, image: dict) -> None:
    url = _url(image, 0)
    api.client.put(url, json={"LV": {"size": [10, 20]}}, headers=api.headers)
    api.client.put(url, json={"LV": {"size": [10, 30]}}, headers=api.headers)
    api.client.put(url, json={"LV": {"size": [10, 30]}}, headers=api.headers)  # unchanged: no row
    api.client.put(url, json={}, headers=api.headers)
    hist = api.client.get(f"{url}/history?limit=3", headers=api.headers).json()
    assert [h["hint"] for h in hist["items"]] == [None, {"size": [10, 30]}, {"size": [10, 20]}]
    assert all(h["author"] == "admin" for h in hist["items"])
    assert hist["total"] >= 3
    assert api.client.get(url, headers=api.headers).json()["hints"] == {}


def test_latest_per_author_counts_and_authors_are_combined(api: Api, image: dict) -> None:
    pid = image["project"]["id"]
    alice = api.new_user("annotator", pid)
    bob = api.new_user("annotator", pid)
    url = _url(image)
    api.client.put(url, json={"LV": {"size": [50, 500]}}, headers=alice)
    api.client.put(url, json={"LV": {"size": [100, 400]}}, headers=alice)  # replaces alice's
    api.client.put(url, json={"LV": {"size": [200, 800]}}, headers=bob)
    got = api.client.get(url, headers=alice).json()
    assert got["hints"] == {"LV": {"size": [100, 400]}}
    assert sorted(e["hint"]["size"][0] for e in got["entries"] if e["class_name"] == "LV") == [
        100,
        200,
    ]
    assert got["derived"]["LV"]["components"]["size"]["px"] == [200.0, 400.0]
    bob_id = next(e["author_id"] for e in got["entries"] if e["hint"]["size"][0] == 200)
    assert api.client.get(f"{url}?author={bob_id}", headers=alice).json()["hints"] == {
        "LV": {"size": [200, 800]}
    }
    api.client.put(url, json={"LV": {"size": [900, 1000]}}, headers=bob)
    got = api.client.get(url, headers=alice).json()
    assert "LV" in got["conflicts"] and "LV" not in got["derived"]
    summary = api.client.get(f"/api/images/{image['id']}/hints", headers=alice).json()
    assert summary[0]["z"] == 0 and summary[0]["authors"] >= 2


def test_two_instances_of_a_class_are_stored_and_bound_together(api: Api, image: dict) -> None:
    # A slice of its own: the module's image carries other authors' LV hints by now.
    image = api.upload_png(image["project"]["id"], name="two.png", height=32, width=48, seed=7)
    one = {"cx": 12, "cy": 10, "a": 6, "b": 4, "angle": 0}
    two = {"cx": 36, "cy": 22, "a": 5, "b": 4, "angle": 0}
    body = {"LV": {"instances": [{"ellipse": one}, {"ellipse": two}], "tolerance": 0.2}}
    assert api.client.put(_url(image), json=body, headers=api.headers).status_code == 200
    got = api.client.get(_url(image), headers=api.headers).json()
    assert got["hints"] == body
    lo, hi = got["derived"]["LV"]["components"]["size"]["px"]
    assert lo < 3.14159265 * (24 + 20) < hi  # the union's area, not one instance's
    assert hi > 3.14159265 * 24 * 1.2**2  # more than the bigger instance alone could be
    bad = {"LV": {"ellipse": one, "instances": [{"ellipse": one}, {"ellipse": two}]}}
    r = api.client.put(_url(image), json=bad, headers=api.headers)
    assert r.status_code == 422 and "either ellipse" in r.json()["detail"]["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"Liver": {"present": True}}, ["unknown class", "Liver"]),
        ({"LV": {"size": [300, 100]}}, ["LV", "size", "lower bound"]),
        ({"LV": {"size": [-5, 100]}}, ["LV", "size", "negative"]),
        ({"LV": {"centroid": {"x": [100, 120], "y": [0, 5]}}}, ["LV", "centroid.x", "outside"]),
        ({"LV": {"unit": "inch", "size": [1, 2]}}, ["LV", "unit", "inch"]),
        ({"LV": {"size": [1, 2], "colour": "red"}}, ["LV", "unknown", "colour"]),
        ({"LV": {"present": False, "size": [1, 2]}}, ["LV", "absent", "size"]),
        ({"LV": "big"}, ["LV", "object"]),
    ],
)
def test_bad_hints_are_422_naming_the_problem_and_store_nothing(
    api: Api, image: dict, body: dict, words: list[str]
) -> None:
    url = _url(image, 0)
    before = api.client.get(f"{url}/history", headers=api.headers).json()["total"]
    r = api.client.put(url, json=body, headers=api.headers)
    assert r.status_code == 422, r.text
    message = r.json()["detail"]["message"]
    for word in words:
        assert word in message, (word, message)
    assert api.client.get(f"{url}/history", headers=api.headers).json()["total"] == before


def test_slice_outside_the_image_and_roles(api: Api, image: dict) -> None:
    r = api.client.put(_url(image, 1), json={"LV": {"present": True}}, headers=api.headers)
    assert r.status_code == 404 and "slice 1" in r.json()["detail"]["message"]
    viewer = api.new_user("viewer", image["project"]["id"])
    assert api.client.get(_url(image), headers=viewer).status_code == 200
    r = api.client.put(_url(image), json={"LV": {"present": True}}, headers=viewer)
    assert r.status_code == 403
    outsider = api.new_user()
    assert api.client.get(_url(image), headers=outsider).status_code == 404
    r = api.client.put(_url(image), json=["not", "an", "object"], headers=api.headers)
    assert r.status_code == 422


def test_hints_in_mm_use_the_image_spacing(api: Api) -> None:
    import gzip

    import nibabel as nib
    import numpy as np

    p = api.create_project(classes=("LV",))
    img = nib.Nifti1Image(np.zeros((40, 30, 2), np.int16), np.diag([0.5, 0.5, 3.0, 1.0]))
    files = [("files", ("mm.nii.gz", gzip.compress(img.to_bytes()), "application/gzip"))]
    (image,) = api.client.post(
        f"/api/projects/{p['id']}/images", files=files, headers=api.headers
    ).json()
    url = f"/api/images/{image['id']}/slices/1/hints"
    r = api.client.put(url, json={"LV": {"unit": "mm", "size": [100, 200]}}, headers=api.headers)
    assert r.status_code == 200, r.text
    size = r.json()["derived"]["LV"]["components"]["size"]
    # 1 px = 0.5 mm x 0.5 mm = 0.25 mm^2
    assert size["px"] == [400.0, 800.0] and size["mm"] == [100.0, 200.0]
    r = api.client.put(url, json={"LV": {"unit": "mm", "size": [1000, 2000]}}, headers=api.headers)
    assert r.status_code == 422 and "outside" in r.json()["detail"]["message"]  # > 40x30 px
