"""Browser-test fixtures: a real shapehint server (API + embedded worker) and Debian's Chromium.

- ``server``: ``(base_url, admin_token)`` of a throwaway server (``shapehint.demo.local_server``:
  uvicorn on a free port, temporary data directory, SQLite, filesystem queue, one worker).
- ``user``: a password user created through the API, for the browser's sign-in form.
- ``browser``: Chromium from ``/usr/bin/chromium`` driven by Playwright (never downloaded).
- ``page``: a fresh page (1400x900) that records the browser console for failure messages.
- ``artifacts``: folder for screenshots kept after the run (``test-artifacts/browser``,
  git-ignored). With SHAPEHINT_UPDATE_SCREENSHOTS=1 the README's copies in ``docs/screenshots``
  are rewritten too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser.helpers import ARTIFACTS, User
from tests.requirements import need_chromium


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return need_chromium()


@pytest.fixture(scope="session")
def server(
    chromium_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    from shapehint.demo import local_server

    data_dir = tmp_path_factory.mktemp("browser-data")
    with local_server(data_dir, worker_log=data_dir / "worker.log") as (url, token):
        yield url, token


@pytest.fixture(scope="session")
def admin(server: tuple[str, str]) -> Iterator[httpx.Client]:
    url, token = server
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as client:
        yield client


@pytest.fixture(scope="session")
def user(admin: httpx.Client) -> User:
    name = "anna"  # the server is fresh for each session
    password = secrets.token_urlsafe(12)
    r = admin.post("/api/users", json={"username": name, "password": password})
    assert r.status_code == 201, r.text
    return User(name, password)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        b = pw.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed  # type: ignore[attr-defined]


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))  # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))  # type: ignore[attr-defined]
    pg.set_default_timeout(15_000)
    yield pg
    if getattr(request.node, "failed_call", False):
        # What the browser showed when the test failed, next to the other artifacts.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"))  # type: ignore[attr-defined]
    context.close()
    # The app runs under a strict CSP (api/middleware.py): an inline script or style attribute
    # in its own pages is refused, and Chromium says so in the console.
    refused = [m for m in pg.console_errors if "Content Security Policy" in m]  # type: ignore[attr-defined]
    assert not refused, f"the page broke its Content-Security-Policy: {refused}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
