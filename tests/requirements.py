"""Skip-or-fail helpers: outside CI a missing service skips with a reason; with CI=true it fails."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
POSTGRES_URL = os.environ.get(
    "SHAPEHINT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SHAPEHINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = "/usr/bin/chromium"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def need(available: bool, reason: str) -> None:
    """Skip the calling test with ``reason`` unless in CI, where a missing need is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def need_postgres() -> str:
    need(_port_open("127.0.0.1", 5432), "PostgreSQL is not reachable at 127.0.0.1:5432")
    return POSTGRES_URL


def need_redis() -> str:
    need(_port_open("127.0.0.1", 6379), "Redis is not reachable at 127.0.0.1:6379")
    return REDIS_URL


def need_chromium() -> str:
    need(Path(CHROMIUM).exists() or shutil.which("chromium") is not None, "Chromium not installed")
    return CHROMIUM


def need_shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    need(path.exists(), f"{path} is absent (real data lives only beside the project)")
    return path
