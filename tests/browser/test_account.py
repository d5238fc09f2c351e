"""The user menu's account page: create an API token (shown once), use it, revoke it; and sign
in with a token instead of a password."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.helpers import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_tokens_create_use_revoke_and_token_sign_in(page, browser, server, user, artifacts):  # type: ignore[no-untyped-def]
    url, _ = server
    sign_in(page, url, user)
    page.click("[data-testid=user-name]")
    page.fill("form.row input", "laptop scripts")
    page.click("text=Create token")
    token = page.inner_text("[data-testid=new-token] code").strip()
    assert len(token) > 20
    page.wait_for_selector("td:has-text('laptop scripts')")
    screenshot(page, "account", artifacts)

    me = httpx.get(f"{url}/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == user.username

    # A second browser signs in with the token (no password, no cookie).
    other = browser.new_context(viewport={"width": 1200, "height": 800})
    p2 = other.new_page()
    p2.goto(f"{url}/")
    p2.fill("[data-testid=token-form] input[name=token]", token)
    p2.click("[data-testid=token-form] button[type=submit]")
    p2.wait_for_selector("[data-testid=user-name]")
    assert p2.inner_text("[data-testid=user-name]") == user.username
    p2.wait_for_selector("[data-testid=project-list]")
    other.close()

    # Revoke (after confirming): the token stops working at once.
    page.click("tr:has-text('laptop scripts') >> text=Revoke")
    page.click("[data-testid=confirm-ok]")
    page.wait_for_selector("tr.revoked:has-text('laptop scripts')")
    gone = httpx.get(f"{url}/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 401
