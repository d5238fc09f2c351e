"""Plain helpers for API tests (used by the fixtures in ``tests/conftest.py``).

Synthetic inputs only; nothing here reads ../shared/data.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

ADMIN_TOKEN = "sh_test_admin_token_0123456789abcdefghijklmnopqrstuv"


def png_bytes(height: int = 32, width: int = 48, seed: int = 0, mode: str = "L") -> bytes:
    """A random 8-bit PNG of ``(height, width)`` (mode "L" gray or "RGB")."""
    rng = np.random.default_rng(seed)
    shape = (height, width) if mode == "L" else (height, width, 3)
    array = rng.integers(0, 256, size=shape, dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(array, mode=None).save(buf, format="PNG")
    return buf.getvalue()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Api:
    """A TestClient with the admin's headers and shortcuts for common setup.

    - ``create_project(classes=("LV", "RV"), headers=None) -> dict`` (ProjectOut JSON)
    - ``upload_png(project_id, name="slice.png", height=32, width=48, headers=None) -> dict``
      (the first ImageOut JSON)
    - ``new_user(role=None, project_id=None) -> dict[str, str]``: a fresh user's Bearer headers;
      with ``project_id`` and ``role`` the user is added to that project with that role.
    """

    client: TestClient
    headers: dict[str, str] = field(default_factory=lambda: bearer(ADMIN_TOKEN))

    def create_project(
        self,
        classes: tuple[str, ...] = ("LV", "RV"),
        name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "name": name or f"project-{uuid.uuid4().hex[:6]}",
            "classes": [{"name": c} for c in classes],
        }
        r = self.client.post("/api/projects", json=body, headers=headers or self.headers)
        assert r.status_code == 201, r.text
        return r.json()

    def upload_png(
        self,
        project_id: int,
        name: str = "slice.png",
        height: int = 32,
        width: int = 48,
        seed: int = 0,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        files = [("files", (name, png_bytes(height, width, seed), "image/png"))]
        r = self.client.post(
            f"/api/projects/{project_id}/images", files=files, headers=headers or self.headers
        )
        assert r.status_code == 201, r.text
        return r.json()[0]

    def new_user(self, role: str | None = None, project_id: int | None = None) -> dict[str, str]:
        username = f"user-{uuid.uuid4().hex[:8]}"
        r = self.client.post(
            "/api/users",
            json={"username": username, "password": "password-123"},
            headers=self.headers,
        )
        assert r.status_code == 201, r.text
        if project_id is not None and role is not None:
            r = self.client.post(
                f"/api/projects/{project_id}/members",
                json={"username": username, "role": role},
                headers=self.headers,
            )
            assert r.status_code == 201, r.text
        # The admin cannot mint tokens for others: sign in as the user and create one.
        login = self.client.post(
            "/api/auth/login", json={"username": username, "password": "password-123"}
        )
        assert login.status_code == 200, login.text
        csrf = login.json()["csrf_token"]
        r = self.client.post("/api/tokens", json={"name": "test"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        self.client.cookies.clear()
        headers = bearer(r.json()["token"])
        headers["X-Username"] = username  # informational; ignored by the server
        return headers
