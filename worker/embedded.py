"""A Celery worker in a child process beside the API (``shapehint serve``), and for tests.

The child gets the parent's settings through ``SHAPEHINT_*`` environment variables, so it uses
the same database, blob directory and broker. It runs the solo pool (one job at a time in the
child's main process). Stopping it sends SIGTERM: the running job (if any) goes back to the
queue at its next training step and the worker exits; after ``grace_s`` it is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from store.settings import Settings
from worker.celery_app import worker_argv

REPO_ROOT = Path(__file__).resolve().parents[1]


def settings_env(settings: Settings) -> dict[str, str]:
    """``SHAPEHINT_*`` variables that recreate ``settings`` in another process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if name == "data_dir":
            value = settings.resolved_data_dir
        env[f"SHAPEHINT_{name.upper()}"] = str(value)
    # Resolve the defaults that depend on data_dir here, so both sides agree on them.
    env["SHAPEHINT_DATABASE_URL"] = settings.resolved_database_url
    return env


@dataclass
class WorkerProcess:
    """A started worker: its process, node name and log file (None = inherited stdio)."""

    process: subprocess.Popen[bytes]
    hostname: str
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until the worker consumes from the queue (needs a log file)."""
        if self.log_path is None:
            raise ValueError("wait_ready needs the worker's log file")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"worker {self.hostname} exited with {self.process.returncode}:\n"
                    + self.log_text()[-4000:]
                )
            if " ready." in self.log_text():
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.hostname} not ready after {timeout_s} s")

    def stop(self, grace_s: float = 20.0) -> int | None:
        """SIGTERM (warm shutdown; a running job is requeued), then SIGKILL after ``grace_s``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would (no cleanup, no requeue)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def start_worker_process(
    settings: Settings,
    *,
    hostname: str | None = None,
    log_path: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> WorkerProcess:
    """Start ``celery worker`` (solo pool) for ``settings`` in a child process."""
    settings.ensure_dirs()
    name = hostname or f"embedded-{uuid.uuid4().hex[:8]}@{os.uname().nodename}"
    env = os.environ.copy()
    env.update(settings_env(settings))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra_env or {})
    cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app", *worker_argv(1, name)]
    out: int | object = subprocess.DEVNULL
    log_file = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        out = log_file
    try:
        process = subprocess.Popen(
            cmd,
            env=env,
            cwd=str(REPO_ROOT),
            stdin=subprocess.DEVNULL,
            stdout=out if log_file is not None else None,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT if log_file is not None else None,
        )
    finally:
        if log_file is not None:
            log_file.close()
    return WorkerProcess(process, name, log_path)


@contextlib.contextmanager
def start_embedded_worker(
    settings: Settings,
    *,
    log_path: Path | None = None,
    wait_ready: bool = False,
    ready_timeout_s: float = 60.0,
    grace_s: float = 20.0,
) -> Iterator[WorkerProcess]:
    """Run one worker beside the caller for the duration of the ``with`` block."""
    worker = start_worker_process(settings, log_path=log_path)
    try:
        if wait_ready:
            worker.wait_ready(ready_timeout_s)
        yield worker
    finally:
        worker.stop(grace_s)
