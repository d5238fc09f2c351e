"""The second plane: a sagittal / coronal reformat of a NIfTI volume beside the slice, to scale
from the spacing, following the cursor, showing where hints cut it; a click picks a slice."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    drag,
    project_with_image,
    sign_in,
    to_client,
    wait_js,
    wait_saved,
)
from tests.browser.test_instances import fits, shot
from tests.browser.test_review_loop import IDS, VIEWPORTS
from tests.browser.test_volume import ROWS, SLICES, SPACING, _nifti_bytes, loaded

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_second_plane(page, server, admin, user, artifacts, viewport):  # type: ignore[no-untyped-def]
    url, _ = server
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    _, image = project_with_image(
        admin,
        user,
        f"plane2 {viewport[0]}",
        [{"name": "LV", "color": "#e6194b"}],
        ("vol.nii.gz", _nifti_bytes(), "application/gzip"),
    )
    iid = image["id"]
    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/hints")
    loaded(page, SLICES // 2)
    assert page.is_hidden("[data-testid=plane2]")

    # An LV ellipse on the middle slice, then the sagittal plane through its centre.
    drag(page, (14, 10), (26, 22))  # around (20, 16), a = b = 6
    wait_saved(page)
    page.select_option("[data-testid=plane2-select]", "sagittal")
    page.wait_for_selector("[data-testid=plane2][data-loaded='1']")
    page.mouse.move(*to_client(page, 20, 16))
    page.wait_for_selector("[data-testid=plane2][data-pos='20']")
    assert "Sagittal" in page.inner_text("[data-testid=plane2-label]")
    # To scale: rows x row spacing across, slices x slice spacing down.
    w, h = page.evaluate(
        "() => { const c = document.querySelector('[data-testid=plane2-canvas]');"
        " return [c.clientWidth, c.clientHeight]; }"
    )
    across_mm, down_mm = ROWS * SPACING[1], SLICES * SPACING[2]
    assert h / w == pytest.approx(down_mm / across_mm, abs=0.02)
    # It sits beside the slice, not over most of it (a 1024 px window has a ~500 px viewer).
    inset = page.locator("[data-testid=plane2]").bounding_box()
    stage = page.locator(".stage").bounding_box()
    assert inset["width"] <= 0.45 * stage["width"], (inset, stage)
    assert inset["height"] <= 0.5 * stage["height"], (inset, stage)
    # The hint cuts the plane on the middle slice's row, in the class colour.
    probe = """([fy, fz]) => { const c = document.querySelector('[data-testid=plane2-canvas]');
                 const d = c.getContext('2d').getImageData(Math.floor(fy * c.width),
                                                            Math.floor(fz * c.height), 1, 1).data;
                 return Array.from(d); }"""
    z = SLICES // 2
    px = page.evaluate(probe, [16.5 / ROWS, (z + 0.5) / SLICES])
    assert tuple(px[:3]) == pytest.approx((0xE6, 0x19, 0x4B), abs=3), px
    fits(page)
    shot(page, "hints-plane2", viewport, artifacts)

    # Coronal follows rows; a click in the plane goes to that slice.
    page.focus("[data-testid=hint-canvas]")  # not the select: keys there change its value
    page.keyboard.press("v")  # sagittal -> coronal
    page.mouse.move(*to_client(page, 20, 12))
    page.wait_for_selector("[data-testid=plane2][data-pos='12']")
    assert "Coronal" in page.inner_text("[data-testid=plane2-label]")
    box = page.locator("[data-testid=plane2-canvas]").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.1)
    loaded(page, 0)
    wait_js(page, "() => document.querySelector('[data-testid=plane2]').dataset.z === '0'")
    page.select_option("[data-testid=plane2-select]", "off")
    assert page.is_hidden("[data-testid=plane2]")
    assert not page.console_errors or all("401" in e for e in page.console_errors)
