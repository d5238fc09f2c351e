"""Issue 11, items 1 and 8: sign-in floods (429 + Retry-After, bounded hashing), body size limit
before parsing and auth, security headers, and API docs served without a CDN."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from store.settings import Settings
from tests.api_helpers import Api, png_bytes


@pytest.fixture(scope="module")
def strict_client(app_settings: Settings) -> Iterator[TestClient]:
    """An app on the same database with small limits (so tests hit them quickly)."""
    from api.app import create_app

    strict: FastAPI = create_app(
        app_settings.model_copy(
            update={
                "login_failures_per_user": 3,
                "login_failures_per_address": 6,
                "max_json_body_bytes": 1000,
            }
        )
    )
    with TestClient(strict) as client:
        yield client
    strict.state.engine.dispose()


def _new_password_user(api: Api) -> str:
    name = f"flood-{uuid.uuid4().hex[:8]}"
    r = api.client.post(
        "/api/users", json={"username": name, "password": "right-password"}, headers=api.headers
    )
    assert r.status_code == 201, r.text
    return name


def _login(client: TestClient, username: str, password: str) -> int:
    # Every TestClient request comes from the one address "testclient".
    return client.post(
        "/api/auth/login", json={"username": username, "password": password}
    ).status_code


def test_failed_logins_per_user_get_429_with_retry_after(api: Api, strict_client) -> None:  # type: ignore[no-untyped-def]
    name = _new_password_user(api)
    assert [_login(strict_client, name, "wrong-password") for _ in range(3)] == [401] * 3
    r = strict_client.post("/api/auth/login", json={"username": name, "password": "wrong"})
    assert r.status_code == 429, r.text
    assert r.json()["detail"]["code"] == "too_many_attempts"
    assert 1 <= int(r.headers["Retry-After"]) <= 300
    # Locked out even with the right password until the window passes.
    assert _login(strict_client, name, "right-password") == 429
    # Another user is not affected by this user's budget.
    other = _new_password_user(api)
    assert _login(strict_client, other, "right-password") == 200
    strict_client.cookies.clear()


def test_failed_logins_per_address_get_429(api: Api, strict_client) -> None:  # type: ignore[no-untyped-def]
    # Different (even unknown) usernames from one address: the address budget (6) runs out.
    statuses = [_login(strict_client, f"nobody-{i}", "wrong-password") for i in range(10)]
    assert 429 in statuses and 500 not in statuses, statuses
    assert all(s == 401 for s in statuses[: statuses.index(429)])


def test_concurrent_wrong_logins_hash_a_few_at_a_time(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.auth import secrets

    name = _new_password_user(api)
    running = 0
    peak = 0
    lock = threading.Lock()
    real_verify = secrets.verify_password

    def counting_verify(password: str, password_hash: str | None) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return real_verify(password, password_hash)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(secrets, "verify_password", counting_verify)
    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(lambda _: _login(api.client, name, "wrong-password"), range(40)))
    limit = app.state.settings.password_hash_concurrency
    assert peak <= limit, f"{peak} argon2 checks at once, limit {limit}"
    assert set(statuses) <= {401, 429} and statuses.count(429) >= 30, statuses


def test_json_body_over_the_limit_is_413_before_auth(strict_client, api: Api) -> None:  # type: ignore[no-untyped-def]
    body = b'{"name": "' + b"x" * 5000 + b'", "classes": [{"name": "A"}]}'
    # No credentials at all: the size is refused first (413, not 401).
    r = strict_client.post(
        "/api/projects", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["detail"]["code"] == "too_large"
    # Without Content-Length (chunked), counted while streaming.
    chunks = (body[i : i + 256] for i in range(0, len(body), 256))
    r = strict_client.post(
        "/api/projects", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text
    # Small bodies pass, and uploads keep their own (larger) limit.
    p = strict_client.post(
        "/api/projects", json={"name": "ok", "classes": [{"name": "A"}]}, headers=api.headers
    )
    assert p.status_code == 201, p.text
    png = png_bytes(64, 64, seed=1)
    assert len(png) > 1000
    r = strict_client.post(
        f"/api/projects/{p.json()['id']}/images",
        files=[("files", ("big.png", png, "image/png"))],
        headers=api.headers,
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/projects", "/docs", "/nope"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    r = client.get(path)
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    if path == "/":
        # The web UI runs without inline scripts or styles.
        assert "unsafe-inline" not in csp


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_use_local_assets_only(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200
    html = r.text
    assert not re.search(r"https?://", html), "the docs page references an external URL"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200, asset
        assert len(got.content) > 100, asset
    assert client.get("/openapi.json").status_code == 200
