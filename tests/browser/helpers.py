"""Browser-test helpers: sign-in, mouse drags in image pixels, API checks, screenshots."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.requirements import REPO_ROOT

ARTIFACTS = (
    Path(os.environ.get("SHAPEHINT_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts")) / "browser"
)
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# The README's first two come from scripts/screenshots.py (a real MRI slice), not from the tests.
SCRIPT_SCREENSHOTS = frozenset({"hints", "review"})


@dataclass(frozen=True)
class User:
    username: str
    password: str


def sign_in(page, url: str, user: User) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/")
    page.fill("[data-testid=login-form] input[name=username]", user.username)
    page.fill("[data-testid=login-form] input[name=password]", user.password)
    page.click("[data-testid=login-form] button[type=submit]")
    page.wait_for_selector("[data-testid=user-name]")
    assert page.inner_text("[data-testid=user-name]") == user.username


def to_client(page, x: float, y: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Viewport coordinates of image pixel (x, y) as the viewer shows it now."""
    p = page.evaluate("([x, y]) => window.shapehintViewer.toClient(x, y)", [x, y])
    return p["x"], p["y"]


def drag(page, a: tuple[float, float], b: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    """A real mouse drag from image point a to image point b."""
    page.mouse.move(*to_client(page, *a))
    page.mouse.down()
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    page.mouse.move(*to_client(page, *mid), steps=4)
    page.mouse.move(*to_client(page, *b), steps=4)
    page.mouse.up()


def wait_js(page, fn: str, arg: object = None, timeout: float = 15_000) -> object:  # type: ignore[no-untyped-def]
    """Poll the JavaScript expression or function ``fn`` (called with ``arg``) until truthy;
    returns its value. Not ``page.wait_for_function``: that evaluates the string inside the
    page, which the app's Content-Security-Policy (no 'unsafe-eval') refuses; ``evaluate`` runs
    through the DevTools protocol, outside the page's CSP."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(fn, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} ms waiting for {fn!r} ({arg!r})")
        page.wait_for_timeout(100)


def wait_saved(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector("[data-testid=save-state].saved", timeout=10_000)


def my_hint(admin: httpx.Client, image_id: int, z: int, cls: str, username: str) -> dict | None:
    r = admin.get(f"/api/images/{image_id}/slices/{z}/hints")
    assert r.status_code == 200, r.text
    for entry in r.json()["entries"]:
        if entry["class_name"] == cls and entry["author"] == username:
            return entry["hint"]
    return None


def screenshot(page: object, name: str, artifacts: Path) -> None:
    """Save a screenshot as a test artifact; with SHAPEHINT_UPDATE_SCREENSHOTS=1 also as the
    README's copy in docs/screenshots (so a plain test run leaves tracked files alone)."""
    data = page.screenshot(full_page=False)  # type: ignore[attr-defined]
    (artifacts / f"{name}.png").write_bytes(data)
    if os.environ.get("SHAPEHINT_UPDATE_SCREENSHOTS") == "1" and name not in SCRIPT_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(data)


def project_with_image(
    admin: httpx.Client, user: User, name: str, classes: list[dict], file: tuple[str, bytes, str]
) -> tuple[dict, dict]:
    """Create a project with ``classes``, add ``user`` as annotator and upload ``file``
    (``(filename, bytes, content type)``); returns ``(project, image)``."""
    project = admin.post("/api/projects", json={"name": name, "classes": classes}).json()
    r = admin.post(
        f"/api/projects/{project['id']}/members",
        json={"username": user.username, "role": "annotator"},
    )
    assert r.status_code == 201, r.text
    r = admin.post(f"/api/projects/{project['id']}/images", files=[("files", file)])
    assert r.status_code == 201, r.text
    return project, r.json()[0]
