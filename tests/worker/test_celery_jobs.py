"""Real Celery workers (child processes) running real, tiny trainings.

Embedded default (SQLite + filesystem queue) and production-like (PostgreSQL + Redis). Each test
builds its own app, database and data directory; workers are killed when a test ends.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import create_engine, text

from tests.conftest import postgres_schema_url
from tests.requirements import need_postgres, need_redis
from tests.worker.helpers import (
    TINY_CONFIG,
    Stack,
    long_config,
    make_stack,
    private_redis_db,
    synthetic_project,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def fs_stack(tmp_path: Path) -> Iterator[Stack]:
    """Embedded default: SQLite file + filesystem broker in the data dir; 3 s heartbeat limit."""
    with make_stack(tmp_path / "data", job_heartbeat_timeout_s=3.0) as stack:
        yield stack


@pytest.fixture
def redis_stack(tmp_path: Path) -> Iterator[Stack]:
    """PostgreSQL (fresh schema) + Redis (a database of its own) + file result backend."""
    base_pg = need_postgres()
    base_redis = need_redis()
    schema = f"w_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with (
            private_redis_db(base_redis) as redis_url,
            make_stack(
                tmp_path / "data",
                database_url=postgres_schema_url(base_pg, schema),
                broker_url=redis_url,
                job_heartbeat_timeout_s=3.0,
            ) as stack,
        ):
            yield stack
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _prediction(stack: Stack, image_id: int) -> np.ndarray:
    r = stack.client.get(
        f"/api/images/{image_id}/prediction", params={"format": "png"}, headers=stack.api.headers
    )
    assert r.status_code == 200, r.text
    return np.asarray(PILImage.open(io.BytesIO(r.content)))


def test_no_job_is_lost_waiting_for_a_worker_or_across_a_worker_restart(fs_stack: Stack) -> None:
    """Embedded default end to end: the job waits for a worker, survives that worker's warm
    shutdown mid-training (back to the queue), and the next worker trains and predicts."""
    project, ids, masks = synthetic_project(fs_stack.api, images=4, size=32)
    # Long enough that the shutdown below lands mid-training (after the version is stored the
    # job finishes on the first worker instead, by design).
    job = fs_stack.submit(project["id"], config=long_config(epochs=60))
    assert job["status"] == "queued"
    time.sleep(1.0)  # no worker yet: the job must stay queued, not be lost or failed
    assert fs_stack.job(job["id"])["status"] == "queued"

    first = fs_stack.start_worker("first")
    fs_stack.wait_job(job["id"], lambda j: (j["progress"].get("step") or 0) >= 1, 90)
    first.stop(grace_s=20)  # SIGTERM: warm shutdown; the running job goes back to the queue
    assert first.process.returncode == 0
    assert fs_stack.job(job["id"])["status"] == "queued"

    fs_stack.start_worker("second")
    done = fs_stack.wait_done(job["id"], timeout_s=180)
    assert done["status"] == "succeeded", done
    assert done["worker"].startswith("second-")
    assert done["progress"]["phase"] == "predicting"
    assert done["started_at"] <= done["finished_at"]
    result = done["result"]
    assert result["predictions"] == len(ids)

    versions = fs_stack.client.get(
        f"/api/projects/{project['id']}/models", headers=fs_stack.api.headers
    ).json()
    assert versions["total"] == 1
    version = versions["items"][0]
    assert version["id"] == result["model_version_id"] and version["job_id"] == job["id"]
    assert version["class_names"] == ["LV"] and version["config"]["epochs"] == 60
    for image_id, mask in zip(ids, masks, strict=True):
        pred = _prediction(fs_stack, image_id)
        assert pred.shape == mask.shape and set(np.unique(pred)) <= {0, 1}

    # The event stream of a finished job is its final state, once.
    with fs_stack.client.stream(
        "GET", f"/api/jobs/{job['id']}/events", headers=fs_stack.api.headers
    ) as stream:
        body = "".join(stream.iter_text())
    assert body.count("event: end") == 1 and '"succeeded"' in body


@pytest.mark.parametrize("stack_name", ["fs_stack", "redis_stack"])
def test_cancel_stops_a_running_job_and_a_killed_worker_fails_its_job(
    stack_name: str, request: pytest.FixtureRequest
) -> None:
    """On the embedded filesystem transport and on Redis + PostgreSQL alike."""
    stack: Stack = request.getfixturevalue(stack_name)
    project, _, _ = synthetic_project(stack.api, images=4, size=32)
    worker = stack.start_worker("w")
    job = stack.submit(project["id"], config=long_config())
    running = stack.wait_job(job["id"], lambda j: (j["progress"].get("step") or 0) >= 2, 90)
    assert running["status"] == "running" and running["progress"]["loss"] is not None

    r = stack.client.post(f"/api/jobs/{job['id']}/cancel", headers=stack.api.headers)
    assert r.status_code == 200 and r.json()["cancel_requested"] is True
    asked = time.monotonic()
    done = stack.wait_done(job["id"], timeout_s=30)
    assert done["status"] == "cancelled", done
    assert time.monotonic() - asked < 10
    assert done["progress"]["step"] < done["progress"]["steps"]
    versions = stack.client.get(
        f"/api/projects/{project['id']}/models", headers=stack.api.headers
    ).json()
    assert versions["total"] == 0  # a cancelled training leaves no model version
    r = stack.client.post(f"/api/jobs/{job['id']}/cancel", headers=stack.api.headers)
    assert r.status_code == 409

    # The same worker takes the next job; SIGKILL it mid-training (no cleanup, no requeue).
    job = stack.submit(project["id"], config=long_config())
    stack.wait_job(job["id"], lambda j: (j["progress"].get("step") or 0) >= 1, 90)
    worker.kill()
    killed = time.monotonic()
    done = stack.wait_done(job["id"], timeout_s=30)
    # Bounded: the heartbeat limit (3 s) plus the reaper's check on GET.
    assert time.monotonic() - killed < 3.0 + 10
    assert done["status"] == "failed"
    assert "stopped responding" in done["error"] and worker.hostname in done["error"]


@pytest.mark.redis
def test_two_workers_share_a_redis_queue_and_no_job_is_lost(redis_stack: Stack) -> None:
    project, ids, _ = synthetic_project(redis_stack.api, images=2, size=32)
    # Submitted while no worker runs: both wait in Redis.
    config = TINY_CONFIG | {"epochs": 10}
    jobs = [redis_stack.submit(project["id"], config=config) for _ in range(2)]
    time.sleep(0.5)
    assert [redis_stack.job(j["id"])["status"] for j in jobs] == ["queued", "queued"]

    redis_stack.start_worker("a", wait=False)
    redis_stack.start_worker("b", wait=False)
    done = [redis_stack.wait_done(j["id"], timeout_s=180) for j in jobs]
    assert [d["status"] for d in done] == ["succeeded", "succeeded"], done
    # One job per worker: prefetch 1 + late acks keep a busy worker from hoarding the second.
    assert {d["worker"].split("-")[0] for d in done} == {"a", "b"}
    versions = redis_stack.client.get(
        f"/api/projects/{project['id']}/models", headers=redis_stack.api.headers
    ).json()
    assert sorted(v["version"] for v in versions["items"]) == [1, 2]
    assert _prediction(redis_stack, ids[0]).shape == (32, 32)
