"""Several instances of one class on a slice (two polyps in one image) and a contour shared by two
classes (the Myo ring's hole is the LV outline), drawn and edited in the browser, and instances
interpolated between the slices of a volume; what autosave stored is read back through the REST
API. The editor tests run at 1440x900 and 1024x700 and check that the hint panel fits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.browser.helpers import (
    ARTIFACTS,
    drag,
    my_hint,
    project_with_image,
    screenshot,
    sign_in,
    wait_js,
    wait_saved,
)
from tests.browser.test_modules import run
from tests.browser.test_review_loop import IDS, VIEWPORTS, no_spill
from tests.browser.test_volume import SLICES, _nifti_bytes, loaded

pytestmark = pytest.mark.browser

SIZE = 96


def _png() -> bytes:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    grey = np.full((SIZE, SIZE), 30, np.uint8)
    for cx, cy, r in ((28, 30, 10), (66, 62, 12)):
        grey[np.hypot(xs - cx, ys - cy) < r] = 150
    buf = io.BytesIO()
    PILImage.fromarray(grey, "L").save(buf, format="PNG")
    return buf.getvalue()


def _open(page, url, user, iid):  # type: ignore[no-untyped-def]
    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/hints")
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='0']")


# The image screen's controls all inside the window: none cut off on the right or at the bottom
# (the side panel scrolls; its scroll box is what must fit), and the panel spills nothing sideways.
OFF_SCREEN = """() => {
  const W = window.innerWidth, H = window.innerHeight, out = [];
  for (const sel of ['.image-screen', '.side-panel', '.left-col', '.stage', '.viewer-footer']) {
    for (const el of document.querySelectorAll(sel)) {
      const b = el.getBoundingClientRect();
      if (b.width && (b.right > W + 1 || b.bottom > H + 1 || b.left < -1))
        out.push(`${sel} ${b.left}-${b.right} x ${b.top}-${b.bottom}`);
    }
  }
  for (const el of document.querySelectorAll('.image-screen button, .image-screen select')) {
    const b = el.getBoundingClientRect();
    if (b.width && el.offsetParent !== null && (b.right > W + 1 || b.left < -1))
      out.push(`${el.dataset.testid || el.textContent} ${b.left}-${b.right}`);
  }
  return out;
}"""


def fits(page) -> None:  # type: ignore[no-untyped-def]
    off = page.evaluate(OFF_SCREEN)
    assert not off, off
    no_spill(page, "[data-testid=hint-panel]")


def shot(page, name: str, viewport: tuple[int, int], artifacts) -> None:  # type: ignore[no-untyped-def]
    """The README's screenshot at 1440x900; the smaller window's only as a test artifact."""
    if viewport[0] == 1440:
        screenshot(page, name, artifacts)
    else:
        page.screenshot(path=str(ARTIFACTS / f"{name}-{viewport[0]}.png"))


def test_instances_module(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    got = run(
        page,
        url,
        "instances.js",
        """const e1 = {cx: 10, cy: 10, a: 4, b: 3, angle: 0};
           const e2 = {cx: 40, cy: 40, a: 5, b: 5, angle: 0};
           const two = m.withInstances({present: true, ellipse: e1, tolerance: 0.3},
                                       [{ellipse: e1}, {ellipse: e2, hole: m.unlinked(e2)}]);
           const one = m.withInstances(two, [{ellipse: e2}]);
           const none = m.withInstances(one, []);
           const lv = {cx: 50, cy: 50, a: 10, b: 9, angle: 0};
           const moved = {...lv, cx: 55};
           const before = {LV: {present: true, ellipse: lv},
                           Myo: {present: true, ellipse: {...lv, a: 16, b: 15}, hole: lv}};
           const edit = {...before, LV: {present: true, ellipse: moved}};
           const after = m.propagateLinks(before, edit, 'LV');
           const drawn = {cx: 51, cy: 49, a: 11, b: 9, angle: 3};
           const snap = m.snapTarget(before, 'LV', 'ellipse', drawn);
           const c = (cx, cy) => ({ellipse: {cx, cy, a: 3, b: 3, angle: 0}});
           const pairs = m.pairInstances([c(10, 10), c(50, 50), c(90, 10)],
                                         [c(88, 14), c(12, 9), c(49, 55)])
               .map(([p, q]) => [p.ellipse.cx, q.ellipse.cx]);
           return [two, one, none, m.instancesOf(two).length, after.Myo.hole, snap && snap.cls,
                   m.innerOutline(before, 'Myo', before.Myo.ellipse).cls, pairs];""",
    )
    two, one, none, count, hole, snap, inner, pairs = got
    # Paired by nearest centres, in the first list's order.
    assert pairs == [[10, 12], [50, 49], [90, 88]]
    assert "ellipse" not in two and len(two["instances"]) == 2 and two["tolerance"] == 0.3
    assert two["instances"][1]["hole"]["a"] == pytest.approx(4.99)
    assert one == {
        "present": True,
        "ellipse": {"cx": 40, "cy": 40, "a": 5, "b": 5, "angle": 0},
        "tolerance": 0.3,
    }
    assert none is None and count == 2
    assert hole == {"cx": 55, "cy": 50, "a": 10, "b": 9, "angle": 0}
    assert snap == "Myo" and inner == "LV"


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_two_instances(page, server, admin, user, artifacts, viewport):  # type: ignore[no-untyped-def]
    url, _ = server
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    _, image = project_with_image(
        admin,
        user,
        f"polyps {viewport[0]}",
        [{"name": "Polyp"}],
        ("polyps.png", _png(), "image/png"),
    )
    iid = image["id"]
    _open(page, url, user, iid)

    drag(page, (18, 20), (38, 40))  # a = b = 10 around (28, 30)
    wait_saved(page)
    first = my_hint(admin, iid, 0, "Polyp", user.username)["ellipse"]
    assert (first["cx"], first["cy"]) == (pytest.approx(28, abs=0.1), pytest.approx(30, abs=0.1))

    # "Add instance" (N): the next drag adds a second polyp instead of replacing the first.
    page.click("[data-testid=add-instance]")
    page.wait_for_selector("[data-testid=add-instance][aria-pressed=true]")
    drag(page, (54, 50), (78, 74))  # a = b = 12 around (66, 62)
    wait_saved(page)
    hint = my_hint(admin, iid, 0, "Polyp", user.username)
    assert "ellipse" not in hint and "hole" not in hint
    assert hint["instances"][0]["ellipse"] == first
    second = hint["instances"][1]["ellipse"]
    assert (second["cx"], second["cy"], second["a"]) == (
        pytest.approx(66, abs=0.1),
        pytest.approx(62, abs=0.1),
        pytest.approx(12, abs=0.1),
    )
    page.wait_for_selector("[data-testid=hint-state]:text-is('2 instances')")
    # The server derives the class's bounds from the union: its area covers both ellipses.
    derived = admin.get(f"/api/images/{iid}/slices/0/hints").json()["derived"]["Polyp"]
    lo, hi = derived["components"]["size"]["px"]
    assert lo < np.pi * (100 + 144) < hi

    # Reloaded, the editor shows both, listed in the panel.
    page.reload()
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='0']")
    page.wait_for_selector("[data-testid=instance-2]")
    assert page.locator("[data-testid=instances] li").count() == 2
    fits(page)
    shot(page, "hints-instances", viewport, artifacts)

    # Dragging inside the first selects it and moves it alone.
    drag(page, (28, 30), (31, 34))
    wait_saved(page)
    hint = my_hint(admin, iid, 0, "Polyp", user.username)
    moved = hint["instances"][0]["ellipse"]
    assert (moved["cx"], moved["cy"]) == (pytest.approx(31, abs=0.1), pytest.approx(34, abs=0.1))
    assert hint["instances"][1]["ellipse"] == second
    page.wait_for_selector("[data-testid=instance-1][aria-current=true]")
    # Undo puts it back; redo moves it again.
    page.click("[data-testid=undo]")
    wait_saved(page)
    assert my_hint(admin, iid, 0, "Polyp", user.username)["instances"][0]["ellipse"] == first
    page.click("[data-testid=redo]")
    wait_saved(page)
    assert my_hint(admin, iid, 0, "Polyp", user.username)["instances"][0]["ellipse"] == moved

    # Deleting the first leaves the second, stored in the single-ellipse form again.
    page.click("[data-testid=remove-instance-1]")
    wait_saved(page)
    hint = my_hint(admin, iid, 0, "Polyp", user.username)
    assert "instances" not in hint and hint["ellipse"] == second
    page.wait_for_selector("[data-testid=hint-state]:text-is('ellipse')")
    # Del on a selected instance deletes that one only.
    page.click("[data-testid=undo]")
    wait_saved(page)
    assert len(my_hint(admin, iid, 0, "Polyp", user.username)["instances"]) == 2
    page.click("[data-testid=select-instance-2]")
    page.focus("[data-testid=hint-canvas]")
    page.keyboard.press("Delete")
    wait_saved(page)
    hint = my_hint(admin, iid, 0, "Polyp", user.username)
    assert "instances" not in hint and hint["ellipse"] == moved
    assert all("401" in e for e in page.console_errors), page.console_errors


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_myo_hole_linked_to_lv(page, server, admin, user, artifacts, viewport):  # type: ignore[no-untyped-def]
    url, _ = server
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    _, image = project_with_image(
        admin,
        user,
        f"linked {viewport[0]}",
        [{"name": "LV", "color": "#e6194b"}, {"name": "Myo", "color": "#3cb44b"}],
        ("heart.png", _png(), "image/png"),
    )
    iid = image["id"]
    _open(page, url, user, iid)

    page.click("[data-testid=class-LV]")
    drag(page, (56, 52), (76, 72))  # LV: a = b = 10 around (66, 62)
    page.click("[data-testid=class-Myo]")
    drag(page, (50, 46), (82, 78))  # Myo outline: a = b = 16
    wait_saved(page)
    lv = my_hint(admin, iid, 0, "LV", user.username)["ellipse"]
    # "Add hole" on the Myo uses the LV outline inside it: one contour, linked.
    page.click("[data-testid=add-hole]")
    wait_saved(page)
    myo = my_hint(admin, iid, 0, "Myo", user.username)
    assert myo["hole"] == lv
    page.wait_for_selector("[data-testid=link-hole]")
    assert "LV" in page.inner_text("[data-testid=link-hole]")
    fits(page)
    shot(page, "hints-linked", viewport, artifacts)

    # Moving the LV moves the Myo hole with it (one undo step); the Myo outline stays.
    page.click("[data-testid=class-LV]")
    page.click("[data-testid=tool-ellipse]")
    page.wait_for_selector("[data-testid=link-ellipse]")
    drag(page, (66, 62), (63, 60))
    wait_saved(page)
    new_lv = my_hint(admin, iid, 0, "LV", user.username)["ellipse"]
    assert (new_lv["cx"], new_lv["cy"]) == (pytest.approx(63, abs=0.1), pytest.approx(60, abs=0.1))
    new_myo = my_hint(admin, iid, 0, "Myo", user.username)
    assert new_myo["hole"] == new_lv and new_myo["ellipse"] == myo["ellipse"]
    # Resizing the LV with its a handle resizes the hole as well.
    drag(page, (new_lv["cx"] + new_lv["a"], new_lv["cy"]), (new_lv["cx"] + 8, new_lv["cy"]))
    wait_saved(page)
    new_lv = my_hint(admin, iid, 0, "LV", user.username)["ellipse"]
    assert new_lv["a"] == pytest.approx(8, abs=0.1)
    assert my_hint(admin, iid, 0, "Myo", user.username)["hole"] == new_lv
    page.click("[data-testid=undo]")
    wait_saved(page)
    back = my_hint(admin, iid, 0, "LV", user.username)["ellipse"]
    assert back["a"] == pytest.approx(10, abs=0.1)
    assert my_hint(admin, iid, 0, "Myo", user.username)["hole"] == back

    # Unlinked, the two are separate contours again: moving the LV leaves the hole.
    page.click("[data-testid=unlink-ellipse]")
    wait_saved(page)
    page.wait_for_selector("[data-testid=link-ellipse]", state="detached")
    hole = my_hint(admin, iid, 0, "Myo", user.username)["hole"]
    drag(page, (back["cx"], back["cy"]), (back["cx"] + 2, back["cy"] + 2))
    wait_saved(page)
    assert my_hint(admin, iid, 0, "Myo", user.username)["hole"] == hole

    # Drawing a hole over the LV with the hole tool snaps it onto the LV: linked again.
    page.click("[data-testid=class-Myo]")
    # (The Myo panel offers the LV outline inside the ring as its hole meanwhile.)
    assert "LV" in page.inner_text("[data-testid=offer-link-hole]")
    page.click("[data-testid=tool-hole]")
    lv = my_hint(admin, iid, 0, "LV", user.username)["ellipse"]
    drag(
        page,
        (lv["cx"] - lv["a"] + 0.6, lv["cy"] - lv["b"] - 0.4),
        (lv["cx"] + lv["a"] + 0.3, lv["cy"] + lv["b"] - 0.5),
    )
    wait_saved(page)
    assert my_hint(admin, iid, 0, "Myo", user.username)["hole"] == lv
    text = wait_js(
        page, "() => (document.querySelector('[data-testid=link-hole]') || {}).textContent"
    )
    assert "Linked" in text and "LV" in text, text
    assert all("401" in e for e in page.console_errors), page.console_errors


def _centres(hint: dict) -> list[tuple[float, float]]:
    return [(i["ellipse"]["cx"], i["ellipse"]["cy"]) for i in hint["instances"]]


def _circle(page, cx: float, cy: float, r: float, *, add: bool = False) -> None:  # type: ignore[no-untyped-def]
    if add:  # "Add instance": the next drag adds one instead of replacing the selected one
        page.click("[data-testid=add-instance]")
        page.wait_for_selector("[data-testid=add-instance][aria-pressed=true]")
    drag(page, (cx - r, cy - r), (cx + r, cy + r))
    wait_saved(page)


def _go(page, key: str, z: int) -> None:  # type: ignore[no-untyped-def]
    page.focus("[data-testid=hint-canvas]")
    page.keyboard.press(key)
    loaded(page, z)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=IDS)
def test_interpolate_instances(page, server, admin, user, viewport):  # type: ignore[no-untyped-def]
    url, _ = server
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    _, image = project_with_image(
        admin,
        user,
        f"interpolate instances {viewport[0]}",
        [{"name": "LV"}],
        ("vol.nii.gz", _nifti_bytes(), "application/gzip"),
    )
    iid = image["id"]
    sign_in(page, url, user)
    page.goto(f"{url}/#/images/{iid}/hints")
    loaded(page, SLICES // 2)

    # Two instances on the first slice, two on the last, drawn in the other order there: they
    # are paired by nearest centres, not by their order in the list.
    _go(page, "Home", 0)
    _circle(page, 10, 10, 4)
    _circle(page, 30, 22, 4, add=True)
    _go(page, "End", SLICES - 1)
    _circle(page, 26, 20, 5)
    _circle(page, 14, 12, 5, add=True)
    first = _centres(my_hint(admin, iid, 0, "LV", user.username))
    last = _centres(my_hint(admin, iid, SLICES - 1, "LV", user.username))
    assert first == [pytest.approx((10, 10), abs=0.1), pytest.approx((30, 22), abs=0.1)]
    assert last == [pytest.approx((26, 20), abs=0.1), pytest.approx((14, 12), abs=0.1)]

    _go(page, "ArrowDown", SLICES - 2)
    page.click("[data-testid=interpolate]")
    page.wait_for_selector("[data-testid=confirm-dialog]")
    assert "3 slice(s)" in page.inner_text("[data-testid=confirm-dialog]")
    page.click("[data-testid=confirm-ok]")
    wait_saved(page)
    mid = my_hint(admin, iid, 2, "LV", user.username)
    assert "ellipse" not in mid and len(mid["instances"]) == 2, mid
    # Halfway, in the first slice's order; the sizes halfway as well (4 -> 5).
    assert _centres(mid) == [pytest.approx((12, 11), abs=1), pytest.approx((28, 21), abs=1)]
    assert [i["ellipse"]["a"] for i in mid["instances"]] == [pytest.approx(4.5, abs=0.2)] * 2
    for z in (1, 3):
        assert len(my_hint(admin, iid, z, "LV", user.username)["instances"]) == 2
    page.wait_for_selector("[data-testid=hint-state]:text-is('2 instances')")

    # One undo takes the interpolation back; with one instance left on the last slice the
    # counts differ: nothing is written, and the notice says which slices and why.
    page.focus("[data-testid=hint-canvas]")
    page.keyboard.press("Control+z")
    wait_saved(page)
    loaded(page, 1)
    assert all(my_hint(admin, iid, z, "LV", user.username) is None for z in (1, 2, 3))
    _go(page, "End", SLICES - 1)
    page.click("[data-testid=remove-instance-2]")
    wait_saved(page)
    assert "instances" not in my_hint(admin, iid, SLICES - 1, "LV", user.username)
    _go(page, "ArrowDown", SLICES - 2)
    page.click("[data-testid=interpolate]")
    page.wait_for_selector("#notice:not([hidden]):has-text('same number of instances')")
    notice = page.inner_text("#notice")
    assert "slice 1 (2 instances)" in notice and "slice 5 (1 instance)" in notice, notice
    assert page.locator("[data-testid=confirm-dialog]").count() == 0
    page.wait_for_timeout(600)
    assert all(my_hint(admin, iid, z, "LV", user.username) is None for z in (1, 2, 3))
    fits(page)
    assert all("401" in e or "404" in e for e in page.console_errors), page.console_errors
