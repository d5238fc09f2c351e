"""The second plane: a sagittal / coronal reformat of a NIfTI volume beside the slice, to scale
from the spacing, following the cursor, showing where hints cut it; a click picks a slice."""

from __future__ import annotations

import pytest

from tests.browser.helpers import (
    drag,
    project_with_image,
    screenshot,
    sign_in,
    to_client,
    wait_js,
    wait_saved,
)
from tests.browser.test_volume import ROWS, SLICES, SPACING, _nifti_bytes, loaded

pytestmark = pytest.mark.browser


def test_second_plane(page, server, admin, user, artifacts):  # type: ignore[no-untyped-def]
    url, _ = server
    _, image = project_with_image(
        admin,
        user,
        "plane2",
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
    # The hint cuts the plane on the middle slice's row, in the class colour.
    probe = """([fy, fz]) => { const c = document.querySelector('[data-testid=plane2-canvas]');
                 const d = c.getContext('2d').getImageData(Math.floor(fy * c.width),
                                                            Math.floor(fz * c.height), 1, 1).data;
                 return Array.from(d); }"""
    z = SLICES // 2
    px = page.evaluate(probe, [16.5 / ROWS, (z + 0.5) / SLICES])
    assert tuple(px[:3]) == pytest.approx((0xE6, 0x19, 0x4B), abs=3), px
    screenshot(page, "hints-plane2", artifacts)

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
