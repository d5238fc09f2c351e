"""Issue 13 in Chromium at 1440x900 and 1024x700: panels that fit, typed intervals saved as one,
refusals in the unit typed on the right slice, review without hint tools, per-version review
state, downloads offered only where they work, the quality report, no 401 noise signed out."""

from __future__ import annotations

import json

import pytest

from tests.api_helpers import png_bytes
from tests.browser.helpers import drag, my_hint, project_with_image, sign_in, wait_saved
from tests.browser.test_volume import _nifti_bytes

pytestmark = pytest.mark.browser

VIEWPORTS = [(1440, 900), (1024, 700)]
IDS = [f"{w}x{h}" for w, h in VIEWPORTS]

# Everything inside `root` ends inside it horizontally (nothing spills sideways).
SPILLS = """(sel) => {
  const root = document.querySelector(sel);
  const r = root.getBoundingClientRect();
  const out = [];
  for (const el of root.querySelectorAll('*')) {
    const b = el.getBoundingClientRect();
    if (b.width && (b.right > r.right + 1 || b.left < r.left - 1) && el.offsetParent !== null)
      out.push(`${el.tagName}.${el.className} ${el.dataset.testid || ''} ${b.left}-${b.right}`);
  }
  return {out, scroll: root.scrollWidth - root.clientWidth};
}"""


def no_spill(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    got = page.evaluate(SPILLS, selector)
    assert got["scroll"] <= 1 and not got["out"], got


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_typed_interval_saved_once_refusal_in_mm_on_its_slice(page, server, admin, user, viewport):  # type: ignore[no-untyped-def]
    url, _ = server
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    _, image = project_with_image(
        admin, user, f"typed {viewport[0]}", [{"name": "LV"}], ("v.nii.gz", _nifti_bytes(), "x")
    )
    iid = image["id"]
    puts: list[dict] = []
    page.on(
        "request",
        lambda r: r.method == "PUT" and "/hints" in r.url and puts.append(json.loads(r.post_data)),
    )
    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/hints?z=4")
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='4']")
    drag(page, (10, 10), (24, 20))
    wait_saved(page)
    no_spill(page, "[data-testid=hint-panel]")
    puts.clear()

    # min, Tab, max, Tab: one interval, one save (never a half-typed [1, open]).
    page.fill("[data-testid=iv-size-lo]", "1")
    page.keyboard.press("Tab")
    page.wait_for_timeout(600)
    assert puts == []
    page.keyboard.type("2")
    page.keyboard.press("Tab")
    page.wait_for_selector("[data-testid=save-state].error")
    assert [p["LV"].get("size") for p in puts] == [[1, 2]] and puts[0]["LV"]["unit"] == "mm"
    # Refused on slice 5 (1-based, as the viewer counts), quoted in the unit typed.
    assert "slice 5" in page.inner_text("[data-testid=save-state]")
    err = page.inner_text("[data-testid=hint-error]")
    assert "[1, 2] mm" in err, err
    no_spill(page, "[data-testid=hint-panel]")

    # One undo takes the whole typed interval back; the ellipse alone is saved again.
    page.focus("[data-testid=hint-canvas]")
    page.keyboard.press("Control+z")
    wait_saved(page)
    hint = my_hint(admin, iid, 4, "LV", user.username)
    assert hint and "size" not in hint and hint["ellipse"]

    # min above max: refused with the numbers as typed (no px unit for a value typed in mm).
    page.fill("[data-testid=iv-size-lo]", "50")
    page.fill("[data-testid=iv-size-hi]", "20")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=hint-error]")
    err = page.inner_text("[data-testid=hint-error]")
    assert "50" in err and "px" not in err, err


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_2d_image_and_review_mode(page, server, admin, user, viewport):  # type: ignore[no-untyped-def]
    url, _ = server
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    project, image = project_with_image(
        admin,
        user,
        f"flat {viewport[0]}",
        [{"name": "Polyp"}, {"name": "Tool"}],
        ("a.png", png_bytes(40, 48), "image/png"),
    )
    r = admin.post(
        f"/api/projects/{project['id']}/images",
        files=[("files", ("b.png", png_bytes(40, 48, seed=1), "image/png"))],
    )
    other = r.json()[0]["id"]
    iid = image["id"]
    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/hints")
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='0']")
    # One 2D image: no slice slider, no slice-to-slice actions, no "slice 1".
    assert page.locator("[data-testid=slice-slider]").count() == 0
    assert page.locator("[data-testid=copy-previous]").count() == 0
    assert page.locator("[data-testid=interpolate]").count() == 0
    assert "slice" not in page.inner_text(".panel-title")
    no_spill(page, "[data-testid=hint-panel]")
    # A second drag says it replaced the first ellipse.
    drag(page, (5, 5), (15, 12))
    wait_saved(page)
    drag(page, (25, 20), (40, 30))
    page.wait_for_selector("#notice:not([hidden]):has-text('replaced')")
    wait_saved(page)

    # Review: no hint tool, so a left drag makes no hint.
    page.goto(f"{url}/#/images/{iid}/review")
    page.wait_for_selector("[data-testid=review-panel] [data-testid=review-status]")
    assert page.locator("[data-testid=tool-ellipse]").count() == 0
    assert page.get_attribute("[data-testid=tool-pan]", "aria-pressed") == "true"
    page.click("[data-testid=class-Tool]")
    drag(page, (5, 5), (20, 20))
    page.wait_for_timeout(800)
    assert my_hint(admin, iid, 0, "Tool", user.username) is None
    # DICOM SEG is not offered for a PNG image.
    assert page.locator("[data-testid=download-dicom-seg]").count() == 0
    no_spill(page, "[data-testid=review-panel]")

    # A notice about this image does not follow the user to the next one.
    page.click("[data-testid=review-rejected]")
    page.wait_for_selector("#notice:not([hidden]):has-text('rejected')")
    page.goto(f"{url}/#/images/{other}/review")
    page.wait_for_selector("[data-testid=review-panel] [data-testid=review-status]")
    assert page.locator("#notice").is_hidden()


def test_signed_out_page_load_logs_nothing(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    page.goto(f"{url}/")
    page.wait_for_selector("[data-testid=login-form]")
    page.wait_for_timeout(300)
    assert page.console_errors == []


RESULT = {
    "model_version_id": 900,
    "version": 1,
    "warnings": ["RV: predicted empty on 6 of 6 hinted slices where it was hinted present"],
    "quality": {
        "classes": {
            "LV": {
                "hinted_slices": 6,
                "meeting_bounds": 5,
                "fraction_meeting_bounds": 0.83,
                "empty_where_present": 0,
            },
            "RV": {
                "hinted_slices": 6,
                "meeting_bounds": 0,
                "fraction_meeting_bounds": 0.0,
                "empty_where_present": 6,
            },
        },
        "images": {},
    },
}


def _fake_job(project_id: int) -> dict:
    progress = {
        "phase": "training",
        "epoch": 2,
        "epochs": 2,
        "step": 4,
        "steps": 4,
        "loss": 0.9,
        "terms": {"size": 0.2, "centroid": 0.1, "ce": 0.3},
        "metrics": {"val_dice": 0.61, "t": 50.0, "seconds": 3.0, "steps": 4},
    }
    return {
        "id": 777,
        "project_id": project_id,
        "kind": "train",
        "status": "succeeded",
        "config": {},
        "model_version_id": None,
        "progress": progress,
        "result": RESULT,
        "error": None,
        "created_at": "2024-01-01T00:00:00Z",
    }


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_project_pages_fit_and_quality_report(page, server, admin, user, viewport):  # type: ignore[no-untyped-def]
    url, _ = server
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    project, _image = project_with_image(
        admin,
        user,
        f"pages {viewport[0]}",
        [{"name": "LV"}, {"name": "Myo"}, {"name": "RV"}],
        ("a.png", png_bytes(32, 32), "image/png"),
    )
    pid = project["id"]
    sign_in(page, url, user)

    page.goto(f"{url}/#/projects/{pid}/priors")
    page.wait_for_selector("[data-testid=priors-form]")
    for card in range(3):
        no_spill(page, f".prior-card:nth-child({card + 1})")

    # A finished job whose result carries the quality report (as the worker writes it).
    job = _fake_job(pid)
    page.route(
        f"**/api/projects/{pid}/jobs?*",
        lambda route: route.fulfill(json={"items": [job], "total": 1, "offset": 0, "limit": 20}),
    )
    page.goto(f"{url}/#/projects/{pid}/training")
    page.wait_for_selector("[data-testid=train-form]")
    no_spill(page, "[data-testid=train-form]")
    page.wait_for_selector("[data-testid=job-warned]")
    page.click("text=#777")
    page.wait_for_selector("[data-testid=job-card] [data-testid=quality-warning]")
    assert "RV: predicted empty" in page.inner_text("[data-testid=quality-warning]")
    table = page.inner_text("[data-testid=job-card] [data-testid=quality-table]")
    assert "5 / 6 slices" in table and "83 %" in table and "6 slices" in table
    detail = page.inner_text("[data-testid=job-detail]")
    assert "validation Dice 0.610" in detail and "t 50" not in detail and "seconds" not in detail
    # The chart plots the constraint terms (not the barrier total, not cross-entropy).
    assert page.get_attribute("[data-testid=loss-chart]", "data-series") == "size,centroid"
    no_spill(page, "[data-testid=job-card]")

    page.goto(f"{url}/#/projects/{pid}/downloads")
    page.wait_for_selector("[data-testid=accepted-only]")
    page.wait_for_selector("[data-testid=dicom-seg-note]:not([hidden])")
    assert page.locator("[data-testid=download-project-dicom-seg]").is_hidden()
