"""A ring in the browser: an ellipse with a hole (e.g. a myocardium between epicardium and
endocardium) added, resized with its handle, refused by the server when it is bigger than the
ellipse, undone, removed and restored. No training here: the end-to-end test covers it."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.browser.helpers import (
    drag,
    my_hint,
    project_with_image,
    screenshot,
    sign_in,
    wait_js,
    wait_saved,
)

pytestmark = pytest.mark.browser

SIZE = 64
OUTER = ((16, 18), (48, 46))  # drag corners (image px): a = 16, b = 14 around (32, 32)


def _png() -> bytes:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    d = np.hypot(xs - 32, ys - 32)
    grey = np.where((d > 9) & (d < 15), 140, 30).astype(np.uint8)  # a grey ring on black
    buf = io.BytesIO()
    PILImage.fromarray(grey, "L").save(buf, format="PNG")
    return buf.getvalue()


def shown_size(page) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The derived area interval (px^2) the panel shows."""
    text = page.inner_text("[data-testid=derived-size]")
    m = re.match(r"\[([-\d.]+), ([-\d.]+)\]", text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


def wait_shown_size(page, admin, iid: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Wait until the panel shows the area interval the API derived now; return it."""
    derived = admin.get(f"/api/images/{iid}/slices/0/hints").json()["derived"]["Myo"]
    lo, hi = derived["components"]["size"]["px"]
    wait_js(
        page,
        "t => document.querySelector('[data-testid=derived-size]').textContent.startsWith(t)",
        arg=f"[{lo:.1f}, {hi:.1f}]",
    )
    return shown_size(page)


def test_ellipse_with_hole(page, server, admin, user, artifacts):  # type: ignore[no-untyped-def]
    url, _ = server
    _, image = project_with_image(
        admin,
        user,
        "ring",
        [{"name": "Myo", "color": "#3cb44b"}],
        ("ring.png", _png(), "image/png"),
    )
    iid = image["id"]

    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/hints")
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='0']")
    drag(page, *OUTER)
    wait_saved(page)
    outer = my_hint(admin, iid, 0, "Myo", user.username)["ellipse"]
    assert (outer["a"], outer["b"]) == (pytest.approx(16, abs=0.1), pytest.approx(14, abs=0.1))
    filled = wait_shown_size(page, admin, iid)

    # "Add hole": an inner ellipse (same centre and angle) and the hole tool to adjust it.
    page.click("[data-testid=add-hole]")
    wait_saved(page)
    hint = my_hint(admin, iid, 0, "Myo", user.username)
    assert hint["ellipse"] == outer
    hole = hint["hole"]
    assert (hole["cx"], hole["cy"]) == (outer["cx"], outer["cy"])
    assert hole["a"] < outer["a"] and hole["b"] < outer["b"]
    page.wait_for_selector("[data-testid=hint-state]:has-text('ring')")
    page.wait_for_selector("[data-testid=tool-hole][aria-pressed=true]")
    # Widen the hole with its a handle: the ellipse stays, only the hole's a changes.
    drag(page, (hole["cx"] + hole["a"], hole["cy"]), (hole["cx"] + 12, hole["cy"]))
    wait_saved(page)
    hint = my_hint(admin, iid, 0, "Myo", user.username)
    assert hint["ellipse"] == outer
    assert hint["hole"]["a"] == pytest.approx(12, abs=0.1) and hint["hole"]["b"] == hole["b"]
    hole = hint["hole"]
    # The ring's area interval (from the server) lies below the filled ellipse's.
    ring = wait_shown_size(page, admin, iid)
    assert ring[0] < filled[0] and ring[1] < filled[1], (ring, filled)
    screenshot(page, "hints-ring", artifacts)

    # A hole bigger than the ellipse: the server refuses, the panel shows its message, the
    # stored hint stays; undo takes the typed number back and the slice saves again.
    page.fill("[data-field=hole-a]", str(outer["a"] * 3))
    page.press("[data-field=hole-a]", "Tab")
    page.wait_for_selector("[data-testid=hint-error]")
    message = page.inner_text("[data-testid=hint-error]")
    assert "smaller" in message and "Myo" in message, message
    page.wait_for_selector("[data-testid=save-state].error")
    assert my_hint(admin, iid, 0, "Myo", user.username)["hole"] == hole
    page.click("[data-testid=undo]")
    wait_saved(page)
    page.wait_for_selector("[data-testid=hint-error]", state="detached")
    assert my_hint(admin, iid, 0, "Myo", user.username)["hole"] == hole

    # Remove the hole: a filled ellipse again; undo brings the hole back, redo removes it.
    page.click("[data-testid=remove-hole]")
    wait_saved(page)
    hint = my_hint(admin, iid, 0, "Myo", user.username)
    assert "hole" not in hint and hint["ellipse"] == outer
    page.wait_for_selector("[data-testid=hint-state]:text-is('ellipse')")
    assert wait_shown_size(page, admin, iid) == filled
    page.click("[data-testid=undo]")
    wait_saved(page)
    assert my_hint(admin, iid, 0, "Myo", user.username)["hole"] == hole
    page.click("[data-testid=redo]")
    wait_saved(page)
    assert "hole" not in my_hint(admin, iid, 0, "Myo", user.username)
    # Only the page before sign-in (401) and the refused save (422) left errors in the console.
    assert all("401" in e or "422" in e for e in page.console_errors), page.console_errors
