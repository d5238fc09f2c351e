"""Helpers for tests that run real Celery workers against a real API app.

``Stack``: an app on its own database and data directory, a TestClient with admin headers, and
the settings a worker subprocess needs to join it. ``synthetic_project`` creates a project of
synthetic images with hints derived from their known masks, through the REST API.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from models.synthetic import CLASS_NAMES, make_dataset, make_hints
from store.settings import Settings
from tests.api_helpers import ADMIN_TOKEN, Api, bearer
from worker.embedded import WorkerProcess, start_worker_process

# A training that takes a few seconds on 2 CPU cores (tests only check the plumbing).
TINY_CONFIG: dict[str, Any] = {
    "grid": 32,
    "epochs": 3,
    "batch_size": 4,
    "network_kwargs": {"width": 8, "depth": 2},
    "val_every": 1,
    "progress_every": 1,
    "augment": False,
}


def long_config(epochs: int = 400) -> dict[str, Any]:
    """Like TINY_CONFIG but running long enough to be caught mid-training."""
    return TINY_CONFIG | {"epochs": epochs}


@dataclass
class Stack:
    settings: Settings
    app: FastAPI
    client: TestClient
    api: Api
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, name: str, *, wait: bool = True) -> WorkerProcess:
        log = self.settings.resolved_data_dir / f"worker-{name}.log"
        hostname = f"{name}-{uuid.uuid4().hex[:6]}@test"
        worker = start_worker_process(self.settings, hostname=hostname, log_path=log)
        self.workers.append(worker)
        if wait:
            worker.wait_ready(60)
        return worker

    def job(self, job_id: int) -> dict[str, Any]:
        r = self.client.get(f"/api/jobs/{job_id}", headers=self.api.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def wait_job(
        self,
        job_id: int,
        until: Callable[[dict[str, Any]], bool],
        timeout_s: float = 120.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        job = self.job(job_id)
        while not until(job):
            if time.monotonic() > deadline:
                logs = "\n".join(w.log_text()[-3000:] for w in self.workers)
                raise AssertionError(f"job {job_id} stuck: {job}\nworker logs:\n{logs}")
            time.sleep(0.2)
            job = self.job(job_id)
        return job

    def wait_done(self, job_id: int, timeout_s: float = 120.0) -> dict[str, Any]:
        return self.wait_job(job_id, lambda j: j["status"] not in ("queued", "running"), timeout_s)

    def submit(
        self, project_id: int, kind: str = "train", config: dict[str, Any] | None = None, **extra
    ) -> dict[str, Any]:
        r = self.client.post(
            f"/api/projects/{project_id}/jobs",
            json={"kind": kind, "config": TINY_CONFIG if config is None else config} | extra,
            headers=self.api.headers,
        )
        assert r.status_code == 202, r.text
        return r.json()


@contextmanager
def make_stack(
    data_dir: Path, database_url: str | None = None, **settings_kw: Any
) -> Iterator[Stack]:
    from api.app import create_app
    from api.services.users import ensure_admin
    from store.migrate import upgrade_head

    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        bootstrap_token=ADMIN_TOKEN,
        device="cpu",
        **settings_kw,
    )
    settings.ensure_dirs()
    upgrade_head(settings.resolved_database_url)
    app = create_app(settings)
    with app.state.session_factory() as session:
        ensure_admin(session, ADMIN_TOKEN)
    client = TestClient(app)
    stack = Stack(settings, app, client, Api(client=client, headers=bearer(ADMIN_TOKEN)))
    try:
        yield stack
    finally:
        for worker in stack.workers:
            worker.kill()
        app.state.engine.dispose()


def png(image: np.ndarray) -> bytes:
    grey = np.clip(np.round(image[0] * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(grey, "L").save(buf, format="PNG")
    return buf.getvalue()


def synthetic_project(
    api: Api, images: int = 4, size: int = 32, num_classes: int = 1, seed: int = 0
) -> tuple[dict[str, Any], list[int], list[np.ndarray]]:
    """A project of synthetic images with +-15 % size/centroid hints on every image.

    Returns ``(project JSON, image ids, true masks (H, W) uint8)``.
    """
    names = CLASS_NAMES[:num_classes]
    project = api.create_project(classes=tuple(names))
    data = make_dataset(images, size=size, num_classes=num_classes, seed=seed)
    files = [("files", (f"img{i}.png", png(img), "image/png")) for i, (img, _) in enumerate(data)]
    r = api.client.post(f"/api/projects/{project['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 201, r.text
    ids = [int(im["id"]) for im in r.json()]
    for i, (image_id, (_, mask)) in enumerate(zip(ids, data, strict=True)):
        hints = make_hints(mask, num_classes, seed=i, rel=(0.15, 0.15), class_names=names)
        r = api.client.put(
            f"/api/images/{image_id}/slices/0/hints", json=hints, headers=api.headers
        )
        assert r.status_code == 200, r.text
    return project, ids, [mask for _, mask in data]


@contextmanager
def private_redis_db(base_url: str) -> Iterator[str]:
    """A Redis URL on a database no other test run uses right now (lock key per db), flushed
    before and after, so parallel runs never share a queue."""
    root = base_url.rsplit("/", 1)[0]
    token = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{root}/{db}")
        if client.set("shapehint-test-lock", token, nx=True, ex=900):
            try:
                for key in client.scan_iter("*"):
                    if key != b"shapehint-test-lock":
                        client.delete(key)
                yield f"{root}/{db}"
            finally:
                for key in client.scan_iter("*"):
                    if key != b"shapehint-test-lock":
                        client.delete(key)
                if client.get("shapehint-test-lock") == token.encode():
                    client.delete("shapehint-test-lock")
                client.close()
            return
        client.close()
    raise RuntimeError("no free Redis database for this test run")
