"""Authentication: tokens (hashed, revocable), password sessions with CSRF, admin-only users."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api_helpers import ADMIN_TOKEN, Api, bearer


def test_health_is_public_and_reports_dependencies(client: TestClient) -> None:
    r = client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] == "ok"


def test_missing_or_wrong_token_is_401_with_message(client: TestClient) -> None:
    r = client.get("/api/projects")
    assert r.status_code == 401
    assert r.json()["detail"]["code"] == "unauthorized"
    assert "Bearer" in r.json()["detail"]["message"]
    r = client.get("/api/projects", headers=bearer("sh_not_a_real_token"))
    assert r.status_code == 401
    assert "invalid" in r.json()["detail"]["message"]


def test_tokens_are_stored_hashed_and_can_be_revoked(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    from store.tables import ApiToken

    r = api.client.post("/api/tokens", json={"name": "script"}, headers=api.headers)
    assert r.status_code == 201
    created = r.json()
    token = created["token"]
    assert token.startswith("sh_") and len(token) > 40
    with app.state.session_factory() as session:
        stored = session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and all(len(h) == 64 for h in stored)
    assert api.client.get("/api/users/me", headers=bearer(token)).json()["username"] == "admin"
    listed = api.client.get("/api/tokens", headers=api.headers).json()
    assert any(t["id"] == created["id"] and "token" not in t for t in listed["items"])
    r = api.client.delete(f"/api/tokens/{created['id']}", headers=api.headers)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert api.client.get("/api/users/me", headers=bearer(token)).status_code == 401


def test_cannot_revoke_someone_elses_token(api: Api) -> None:
    other = api.new_user()
    mine = api.client.get("/api/tokens", headers=api.headers).json()["items"][0]
    r = api.client.delete(f"/api/tokens/{mine['id']}", headers=other)
    assert r.status_code == 404


def test_password_login_sets_httponly_cookie_and_writes_need_csrf(api: Api) -> None:
    client = api.client
    api.client.post(
        "/api/users", json={"username": "carol", "password": "carol-password"}, headers=api.headers
    )
    try:
        bad = client.post("/api/auth/login", json={"username": "carol", "password": "nope-nope"})
        assert bad.status_code == 401
        r = client.post("/api/auth/login", json={"username": "carol", "password": "carol-password"})
        assert r.status_code == 200
        cookies = r.headers.get_list("set-cookie")
        session_cookie = next(c for c in cookies if c.startswith("shapehint_session="))
        assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
        csrf = r.json()["csrf_token"]
        assert client.get("/api/users/me").json()["username"] == "carol"
        assert client.get("/api/auth/me").json()["username"] == "carol"
        body = {"name": "p", "classes": [{"name": "A"}]}
        r = client.post("/api/projects", json=body)
        assert r.status_code == 403 and r.json()["detail"]["code"] == "csrf_failed"
        r = client.post("/api/projects", json=body, headers={"X-CSRF-Token": "forged"})
        assert r.status_code == 403
        r = client.post("/api/projects", json=body, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201
        assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert client.get("/api/users/me").status_code == 401
    finally:
        client.cookies.clear()


def test_only_admins_manage_users(api: Api) -> None:
    user = api.new_user()
    r = api.client.post("/api/users", json={"username": "mallory"}, headers=user)
    assert r.status_code == 403
    assert api.client.get("/api/users", headers=user).status_code == 403
    page = api.client.get("/api/users?limit=1", headers=api.headers).json()
    assert page["limit"] == 1 and len(page["items"]) == 1 and page["total"] >= 2
    r = api.client.post("/api/users", json={"username": "admin"}, headers=api.headers)
    assert r.status_code == 409 and "taken" in r.json()["detail"]["message"]


def test_user_changes_own_password_but_not_admin_flag(api: Api) -> None:
    user = api.new_user()
    me = api.client.get("/api/users/me", headers=user).json()
    assert api.client.get(f"/api/users/{me['id']}", headers=user).json() == me
    assert api.client.get(f"/api/users/{me['id']}", headers=api.headers).json() == me
    admin_id = api.client.get("/api/users/me", headers=api.headers).json()["id"]
    assert api.client.get(f"/api/users/{admin_id}", headers=user).status_code == 404
    r = api.client.patch(f"/api/users/{me['id']}", json={"is_admin": True}, headers=user)
    assert r.status_code == 403
    r = api.client.patch(
        f"/api/users/{me['id']}", json={"password": "new-password-1"}, headers=user
    )
    assert r.status_code == 200
    r = api.client.post(
        "/api/auth/login", json={"username": me["username"], "password": "new-password-1"}
    )
    api.client.cookies.clear()
    assert r.status_code == 200


def test_password_change_ends_the_other_browser_sessions(api: Api) -> None:
    api.client.post(
        "/api/users", json={"username": "dave", "password": "dave-password"}, headers=api.headers
    )
    login = {"username": "dave", "password": "dave-password"}
    sessions = []
    for _ in range(3):  # three browsers signed in as dave
        r = api.client.post("/api/auth/login", json=login)
        assert r.status_code == 200
        sessions.append((dict(api.client.cookies), r.json()["csrf_token"]))
        api.client.cookies.clear()
    me = None
    try:
        here, csrf = sessions[0]
        api.client.cookies.update(here)
        me = api.client.get("/api/users/me").json()
        r = api.client.patch(
            f"/api/users/{me['id']}",
            json={"password": "dave-password-2"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 200
        assert api.client.get("/api/users/me").status_code == 200  # this browser stays in
        for cookies, _ in sessions[1:]:
            api.client.cookies.clear()
            api.client.cookies.update(cookies)
            assert api.client.get("/api/users/me").status_code == 401  # the others are out
        # An admin resetting the password ends every session, the caller's own included.
        api.client.cookies.clear()
        api.client.cookies.update(here)
        r = api.client.patch(
            f"/api/users/{me['id']}", json={"password": "dave-password-3"}, headers=api.headers
        )
        assert r.status_code == 200
        assert api.client.get("/api/users/me").status_code == 401
    finally:
        api.client.cookies.clear()


def test_deactivated_user_loses_access(api: Api) -> None:
    user = api.new_user()
    me = api.client.get("/api/users/me", headers=user).json()
    r = api.client.patch(f"/api/users/{me['id']}", json={"is_active": False}, headers=api.headers)
    assert r.status_code == 200
    assert api.client.get("/api/users/me", headers=user).status_code == 401


def test_bootstrap_admin_without_token_is_created_once(app) -> None:  # type: ignore[no-untyped-def]
    from api.services.users import ensure_admin

    with app.state.session_factory() as session:
        # An admin exists already (from the bootstrap token): nothing new is created.
        assert ensure_admin(session, None).token is None
        again = ensure_admin(session, ADMIN_TOKEN)
        assert again.username == "admin" and again.token is None


def test_ensure_admin_creates_token_and_password_on_empty_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from api.auth.secrets import digest
    from api.services.users import ensure_admin
    from store.db import make_engine, session_factory
    from store.migrate import upgrade_head
    from store.tables import ApiToken

    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    upgrade_head(url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        boot = ensure_admin(session, None)
        assert boot.token and boot.password
        assert session.scalars(select(ApiToken.token_hash)).one() == digest(boot.token)
        assert ensure_admin(session, None).token is None
    engine.dispose()
