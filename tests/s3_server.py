"""A real S3-compatible server for tests: moto's standalone server in a child process.

moto is a dev dependency (PyPI), so these tests never skip. Each test gets its own bucket, so one
server serves a whole session.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

# moto accepts any credentials; boto3 only needs some.
S3_CREDENTIALS: dict[str, Any] = {
    "s3_region": "us-east-1",
    "s3_access_key_id": "test-key",
    "s3_secret_access_key": "test-secret",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server(timeout_s: float = 60.0) -> Iterator[str]:
    """Run ``moto.server`` on a free local port; yields its endpoint URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}")
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError("moto server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def s3_settings(endpoint: str, prefix: str = "blobs") -> dict[str, Any]:
    """Settings fields for a fresh bucket on ``endpoint`` (created by the store on first use)."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    return {
        "storage_url": f"s3://{bucket}/{prefix}",
        "s3_endpoint_url": endpoint,
        **S3_CREDENTIALS,
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto server for the test session (import this fixture into a conftest)."""
    with moto_server() as endpoint:
        yield endpoint
