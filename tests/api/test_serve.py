"""``shapehint serve`` end to end: migrates, creates an admin, prints URL and token once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.requirements import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data_dir: Path, port: int, *, worker: bool = False) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAPEHINT_")}
    env["SHAPEHINT_DATA_DIR"] = str(data_dir)
    flag = "--embedded-worker" if worker else "--no-embedded-worker"
    return subprocess.Popen(
        [sys.executable, "-m", "shapehint", "serve", "--port", str(port), flag],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until_healthy(proc: subprocess.Popen[str], base: str, timeout_s: float = 90.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{base}/api/health", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        raise AssertionError("serve did not become healthy")
    proc.terminate()
    out, _ = proc.communicate(timeout=20)
    return out


def test_serve_prints_url_and_a_working_admin_token_once(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, port)
    try:
        first = _read_until_healthy(proc, base)
    finally:
        proc.kill()
    assert f"http://127.0.0.1:{port}/" in first
    token_line = next(line for line in first.splitlines() if "API token:" in line)
    token = token_line.split("API token:")[1].strip()
    assert (tmp_path / "shapehint.sqlite3").exists()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path, port)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                r = httpx.get(f"{base}/api/projects", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.3)
        assert r.status_code == 200 and r.json()["total"] == 0
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "shapehint" in page.text
        proc.terminate()
        second, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert "API token:" not in second  # the existing admin is kept; nothing new is printed


def test_sigterm_stops_serve_and_its_embedded_worker(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(tmp_path, port, worker=True)
    try:
        deadline = time.monotonic() + 90
        worker_pids: list[int] = []
        while not worker_pids:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.3)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            worker_pids = [int(p) for p in children.read_text().split()]
        out = _read_until_healthy(proc, f"http://127.0.0.1:{port}")  # sends SIGTERM
        assert proc.returncode is not None, out
        # The child is reaped by serve, so its /proc entry is gone once it has stopped.
        survivors = [pid for pid in worker_pids if Path(f"/proc/{pid}").exists()]
        assert not survivors, f"embedded worker(s) {survivors} outlived serve"
    finally:
        proc.kill()
        for pid in worker_pids:  # never leave an orphan behind, whatever happened
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
