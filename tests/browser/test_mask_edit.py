"""Issue 13 in Chromium at 1440x900 and 1024x700: correcting a predicted mask in Review (brush,
eraser, fill inside a contour, per class, undo/redo), saving the slice as a reference mask that
the next training uses, and the slice strip (hint / absent / prediction / reference marks)."""

from __future__ import annotations

import io
import re
import time

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage

from tests.browser.helpers import (
    User,
    project_with_image,
    screenshot,
    sign_in,
    to_client,
)
from tests.browser.test_modules import run
from tests.browser.test_review_loop import IDS, VIEWPORTS, no_spill
from tests.browser.test_volume import _nifti_bytes

pytestmark = pytest.mark.browser

# A training of a few seconds on 2 CPU cores: the test is about the browser, not the model.
TINY = {
    "grid": 32,
    "epochs": 2,
    "batch_size": 4,
    "network_kwargs": {"width": 8, "depth": 2},
    "val_every": 1,
    "progress_every": 1,
    "augment": False,
}
LV = {"present": True, "ellipse": {"cx": 16, "cy": 19, "a": 7, "b": 9, "angle": 0}}


def train(admin: httpx.Client, pid: int, config: dict) -> dict:
    r = admin.post(f"/api/projects/{pid}/jobs", json={"kind": "train", "config": config})
    assert r.status_code in (200, 201, 202), r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = admin.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            assert job["status"] == "succeeded", job
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def trained(admin: httpx.Client, user: User) -> tuple[dict, dict]:
    """A 5-slice volume with LV hinted on slices 2 and 4 (1-based), absent on 5, and a model."""
    project, image = project_with_image(
        admin,
        user,
        "mask edit",
        [{"name": "LV"}, {"name": "Myo"}],
        ("v.nii.gz", _nifti_bytes(), "application/gzip"),
    )
    # The user's own hints (the viewer shows the signed-in annotator's hints).
    with httpx.Client(base_url=str(admin.base_url), timeout=60) as client:
        login = client.post(
            "/api/auth/login", json={"username": user.username, "password": user.password}
        )
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        for z, hint in [(1, LV), (3, LV), (4, {"present": False})]:
            url = f"/api/images/{image['id']}/slices/{z}/hints"
            r = client.put(url, json={"LV": hint}, headers=csrf)
            assert r.status_code == 200, r.text
    train(admin, project["id"], TINY)
    return project, image


def lv_count(page) -> int:  # type: ignore[no-untyped-def]
    text = page.inner_text("[data-testid=review-panel] .hint-summary")
    m = re.search(r"LV: [^\n]*· mask (\d+) px", text)
    return int(m.group(1)) if m else 0


def stroke(page, points: list[tuple[float, float]]) -> None:  # type: ignore[no-untyped-def]
    page.mouse.move(*to_client(page, *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*to_client(page, *p), steps=3)
    page.mouse.up()


def test_mask_edit_functions(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    got = run(
        page,
        url,
        "maskedit.js",
        """const w = 9, h = 9, L = new Uint8Array(w * h);
           const ring = m.paintDisc(L, w, h, 4, 4, 3, 1, false);
           m.paintDisc(L, w, h, 4, 4, 1, 0, false);   // a hole of background in the middle
           for (let i = 0; i < L.length; i++) if (L[i] === 0 && i % w === 4 && i < 4 * w) L[i] = 2;
           const a = Array.from(L);
           const leak = m.fillInside(L, w, h, 0, 0, 1);   // outside the ring: not enclosed
           const filled = m.fillInside(L, w, h, 4, 4, 1); // the hole
           const erased = m.paintDisc(L, w, h, 4, 0, 2, 1, true); // LV only, Myo (2) stays
           return [ring, leak, filled, L[4 * w + 4], erased > 0, L[4], a[4]];""",
    )
    ring, leak, filled, centre, erased, myo_after, myo_before = got
    assert ring > 20 and leak == -1 and filled > 0 and centre == 1 and erased
    assert myo_before == 2 and myo_after == 2  # the LV eraser leaves Myo alone


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_correct_mask_use_as_reference_and_strip(  # type: ignore[no-untyped-def]
    page, server, admin, user, trained, artifacts, viewport
):
    url, _ = server
    project, image = trained
    iid = image["id"]
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/review")
    page.wait_for_selector("[data-testid=overlay-canvas][data-painted]")

    # ---- the strip: one cell per slice, hint / absent marks; a click jumps to the slice
    assert page.locator("[data-testid=slice-strip] .cell").count() == 5
    page.wait_for_selector("[data-testid=strip-1].hinted")
    page.wait_for_selector("[data-testid=strip-3].hinted")
    page.wait_for_selector("[data-testid=strip-4].absent")
    page.click("[data-testid=strip-3]")
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='3']")
    page.wait_for_selector("[data-testid=strip-3].current")
    assert page.inner_text("[data-testid=slice-label]").startswith("Slice 4 / 5")
    # Prediction marks come from every slice's mask (read in the background).
    page.wait_for_selector("[data-testid=slice-strip][data-predictions=known]")
    for z in range(5):
        r = admin.get(f"/api/images/{iid}/prediction", params={"format": "png", "z": z})
        predicted = bool(np.asarray(PILImage.open(io.BytesIO(r.content))).any())
        marked = "predicted" in page.get_attribute(f"[data-testid=strip-{z}]", "class")
        assert marked == predicted, z

    # ---- correct slice 4: clear LV with a big eraser, draw a ring with the brush, fill it
    page.click("[data-testid=class-LV]")
    page.click("[data-testid=tool-eraser]")
    page.fill("[data-testid=brush-size]", "30")
    page.mouse.click(*to_client(page, 20, 16))
    assert lv_count(page) == 0
    page.click("[data-testid=tool-brush]")
    page.fill("[data-testid=brush-size]", "1")
    assert "Size 1 px" in page.inner_text("[data-testid=brush-size-label]")
    ring = [(10, 8), (30, 8), (30, 24), (10, 24), (10, 8)]
    stroke(page, ring)
    after_ring = lv_count(page)
    assert after_ring > 40
    page.click("[data-testid=tool-fill]")
    page.mouse.click(*to_client(page, 20, 16))
    filled = lv_count(page)
    assert filled > after_ring + 100
    # Outside every LV contour: nothing is filled, and the user is told.
    page.mouse.click(*to_client(page, 2, 2))
    page.wait_for_selector("#notice:has-text('Not inside a closed LV contour')")
    assert lv_count(page) == filled
    # Myo painted over a corner: the LV eraser leaves it (edits are per class).
    page.click("[data-testid=class-Myo]")
    page.click("[data-testid=tool-brush]")
    stroke(page, [(34, 26), (36, 28)])
    page.click("[data-testid=class-LV]")
    page.click("[data-testid=tool-eraser]")
    page.fill("[data-testid=brush-size]", "2")
    stroke(page, [(20, 10), (20, 22)])
    erased = lv_count(page)
    assert 0 < erased < filled
    # Undo / redo (buttons and keys).
    page.click("[data-testid=mask-undo]")
    assert lv_count(page) == filled
    page.focus("[data-testid=hint-canvas]")
    page.keyboard.press("Control+y")
    assert lv_count(page) == erased
    page.keyboard.press("Control+z")
    assert lv_count(page) == filled
    assert "not saved as reference" in page.inner_text("[data-testid=reference-state]")
    no_spill(page, "[data-testid=review-panel]")
    no_spill(page, ".left-col")
    screenshot(page, f"review-edit-{viewport[0]}", artifacts)

    # ---- use as reference: the slice's labels as the API stores them
    page.click("[data-testid=use-as-reference]")
    page.wait_for_selector("[data-testid=reference-state]:has-text('has a reference mask')")
    page.wait_for_selector("[data-testid=strip-3].reference")
    ref = admin.get(f"/api/images/{iid}/reference").json()
    assert ref["slices"] == [3] and 1 in ref["labels"] and 2 in ref["labels"]
    png = admin.get(f"/api/images/{iid}/reference/slices/3.png")
    labels = np.asarray(PILImage.open(io.BytesIO(png.content)))
    assert labels.shape == (32, 40)
    assert labels[16, 25] == 1 and labels[2, 2] == 0 and labels[27, 35] == 2
    assert int((labels == 1).sum()) == filled
    assert page.console_errors == []

    if viewport[0] == 1440:
        # ---- the next training with reference masks learns from the corrected slice
        job = train(admin, project["id"], TINY | {"use_reference_masks": True})
        assert job["result"]["reference_slices"] == 1
