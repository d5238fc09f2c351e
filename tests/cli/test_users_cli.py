"""``shapehint users``: create, reset-password, new-token on the database; then sign in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shapehint.cli import app as cli_app
from store.settings import get_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from store.db import get_engine

    monkeypatch.setenv("SHAPEHINT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SHAPEHINT_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    if hasattr(get_engine, "cache_clear"):
        get_engine.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    if hasattr(get_engine, "cache_clear"):
        get_engine.cache_clear()


def _last_word(output: str, prefix: str) -> str:
    line = next(x for x in output.splitlines() if prefix in x)
    return line.rsplit(" ", 1)[-1]


def test_users_create_reset_token(data_dir: Path) -> None:
    from api.app import create_app

    runner = CliRunner()
    r = runner.invoke(cli_app, ["users", "create", "ops", "--admin", "--token"])
    assert r.exit_code == 0, r.output
    assert "created administrator 'ops'" in r.output
    first_token = _last_word(r.output, "API token:")

    r = runner.invoke(cli_app, ["users", "reset-password", "ops"])
    assert r.exit_code == 0, r.output
    password = _last_word(r.output, "new password")

    r = runner.invoke(cli_app, ["users", "new-token", "ops", "--name", "laptop"])
    assert r.exit_code == 0, r.output
    token = _last_word(r.output, "API token")

    r = runner.invoke(cli_app, ["users", "create", "ops"])
    assert r.exit_code == 1 and "taken" in r.output
    r = runner.invoke(cli_app, ["users", "reset-password", "nobody"])
    assert r.exit_code == 1 and "no user named 'nobody'" in r.output

    with TestClient(create_app(get_settings())) as client:
        for t in (first_token, token):
            me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {t}"})
            assert me.status_code == 200 and me.json()["is_admin"] is True, me.text
        login = client.post("/api/auth/login", json={"username": "ops", "password": password})
        assert login.status_code == 200, login.text
