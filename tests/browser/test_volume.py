"""A 3D NIfTI in the browser: slice navigation (keys, wheel), ellipses on two slices,
interpolation between them (confirmed), undo of the whole interpolation, copy from the previous
slice, physical units and window/level. No training here: the end-to-end test covers it."""

from __future__ import annotations

import gzip
import math

import nibabel as nib
import numpy as np
import pytest

from tests.browser.helpers import drag, my_hint, project_with_image, screenshot, sign_in, wait_saved

pytestmark = pytest.mark.browser

SLICES, ROWS, COLS = 5, 32, 40
SPACING = (0.8, 0.8, 2.5)  # col, row, slice mm (NIfTI axis order)


def _nifti_bytes() -> bytes:
    rng = np.random.default_rng(0)
    data = rng.normal(100, 10, size=(COLS, ROWS, SLICES)).astype(np.float32)
    data[10:30, 8:24, :] += 80  # a bright block on every slice
    affine = np.diag([*SPACING, 1.0])
    img = nib.Nifti1Image(data, affine)
    return gzip.compress(img.to_bytes())


def loaded(page, z: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(f"[data-testid=viewer][data-loaded-z='{z}']")


def test_volume_navigation_interpolation_copy(page, server, admin, user, artifacts):  # type: ignore[no-untyped-def]
    url, _ = server
    _, image = project_with_image(
        admin,
        user,
        "volume",
        [{"name": "LV"}],
        ("vol.nii.gz", _nifti_bytes(), "application/gzip"),
    )
    assert image["shape"][0] == SLICES
    iid = image["id"]

    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/hints")
    loaded(page, SLICES // 2)
    # Physical units: the slice position and the cursor read in mm.
    assert "5.0 mm" in page.inner_text("[data-testid=slice-label]")

    page.keyboard.press("Home")
    loaded(page, 0)
    drag(page, (10, 10), (20, 16))
    wait_saved(page)
    page.keyboard.press("End")
    loaded(page, SLICES - 1)
    drag(page, (20, 14), (30, 24))
    wait_saved(page)
    # Rotate it with the round handle (24 css px beyond the end of the a axis) to 30 degrees.
    handle_x = 25 + 5 + 24 / page.evaluate("() => window.shapehintViewer.scale")
    drag(
        page,
        (handle_x, 19),
        (25 + 10 * math.cos(math.radians(30)), 19 + 10 * math.sin(math.radians(30))),
    )
    wait_saved(page)
    first = my_hint(admin, iid, 0, "LV", user.username)["ellipse"]
    last = my_hint(admin, iid, SLICES - 1, "LV", user.username)["ellipse"]
    assert (first["cx"], first["a"]) == (pytest.approx(15, abs=0.1), pytest.approx(5, abs=0.1))
    assert (last["cx"], last["b"]) == (pytest.approx(25, abs=0.1), pytest.approx(5, abs=0.1))
    assert last["angle"] == pytest.approx(30, abs=0.5)

    # Arrow keys go down two slices; interpolate asks first, then fills slices 1..3.
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    loaded(page, 2)
    page.click("[data-testid=interpolate]")
    page.wait_for_selector("[data-testid=confirm-dialog]")
    assert "3 slice(s)" in page.inner_text("[data-testid=confirm-dialog]")
    page.click("[data-testid=confirm-ok]")
    wait_saved(page)
    for z in (1, 2, 3):
        el = my_hint(admin, iid, z, "LV", user.username)["ellipse"]
        t = z / (SLICES - 1)
        for key in ("cx", "cy", "a", "b", "angle"):
            assert el[key] == pytest.approx(first[key] + (last[key] - first[key]) * t, abs=0.02), (
                z,
                key,
            )
    page.wait_for_selector("[data-testid=hint-state]:has-text('ellipse')")
    page.mouse.move(
        *page.evaluate(
            "() => { const p = window.shapehintViewer.toClient(12, 9); return [p.x, p.y]; }"
        )
    )
    assert "mm" in page.inner_text(".cursor-info")
    screenshot(page, "hints-volume", artifacts)

    # One undo takes back the whole interpolation and shows its first slice.
    page.keyboard.press("Control+z")
    wait_saved(page)
    loaded(page, 1)
    assert all(my_hint(admin, iid, z, "LV", user.username) is None for z in (1, 2, 3))

    # Copy from the previous hinted slice: slice 1 gets slice 0's ellipse.
    page.click("[data-testid=copy-previous]")
    wait_saved(page)
    assert my_hint(admin, iid, 1, "LV", user.username)["ellipse"] == first

    # The wheel moves one slice; a right-drag changes the window and re-renders the slice.
    box = page.locator("[data-testid=hint-canvas]").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 120)
    loaded(page, 2)
    # Centroid tool: one click = the centroid within the radius (5 px) of the click.
    page.keyboard.press("c")
    page.mouse.click(*page.evaluate("() => Object.values(window.shapehintViewer.toClient(12, 9))"))
    wait_saved(page)
    hint = my_hint(admin, iid, 2, "LV", user.username)
    assert hint["centroid"]["x"] == pytest.approx([7, 17], abs=0.1)
    assert hint["centroid"]["y"] == pytest.approx([4, 14], abs=0.1)
    with page.expect_response(lambda r: "/slices/2.png" in r.url and "ww=" in r.url):
        page.mouse.down(button="right")
        page.mouse.move(
            box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 + 30, steps=4
        )
        page.mouse.up(button="right")
    assert "W " in page.inner_text(".wl-info")
    # Nothing above went wrong in the page.
    assert all("401" in e or "404" in e for e in page.console_errors), page.console_errors
