"""Job row transitions and the reaper, without Celery (both databases)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from jobs import state as job_state
from jobs.reaper import reap_stale_jobs
from store.db import session_scope, utcnow
from store.jobs_tables import Job
from tests.api_helpers import Api
from tests.worker.helpers import make_stack, synthetic_project


def _job(app: FastAPI, project_id: int) -> int:
    with session_scope(app.state.engine) as session:
        job = Job(project_id=project_id, kind="train", config={}, progress={})
        session.add(job)
        session.flush()
        return job.id


def _get(app: FastAPI, job_id: int) -> Job:
    with app.state.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_only_one_worker_claims_a_job_and_finishing_is_conditional(api: Api, app: FastAPI) -> None:
    engine = app.state.engine
    job_id = _job(app, api.create_project()["id"])
    assert _get(app, job_id).status == "queued"
    assert job_state.claim(engine, job_id, "w1@host")
    assert not job_state.claim(engine, job_id, "w2@host")
    job = _get(app, job_id)
    assert (job.status, job.worker) == ("running", "w1@host") and job.heartbeat_at is not None

    job_state.write_progress(engine, job_id, {"step": 3, "loss": 0.5})
    assert _get(app, job_id).progress == {"step": 3, "loss": 0.5}
    assert job_state.finish(engine, job_id, "succeeded", result={"model_version_id": None})
    # A late second finish (e.g. after the reaper) changes nothing.
    assert not job_state.finish(engine, job_id, "failed", error="late")
    job = _get(app, job_id)
    assert (job.status, job.error) == ("succeeded", None) and job.finished_at is not None


def test_cancel_queued_at_once_running_by_flag(api: Api, app: FastAPI) -> None:
    engine = app.state.engine
    project_id = api.create_project()["id"]
    queued = _job(app, project_id)
    assert job_state.request_cancel(engine, queued) == "cancelled"
    assert not job_state.claim(engine, queued, "w@host")  # a stale message is skipped

    running = _job(app, project_id)
    job_state.claim(engine, running, "w@host")
    assert job_state.request_cancel(engine, running) == "running"
    assert job_state.status_and_cancel(engine, running) == ("running", True)
    job_state.finish(engine, running, "cancelled")
    assert job_state.request_cancel(engine, running) is None


def test_reaper_fails_only_jobs_with_a_stale_heartbeat(api: Api, app: FastAPI) -> None:
    engine = app.state.engine
    project_id = api.create_project()["id"]
    stale, fresh, queued = (_job(app, project_id) for _ in range(3))
    for job_id in (stale, fresh):
        job_state.claim(engine, job_id, f"w{job_id}@host")
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == stale)
            .values(heartbeat_at=utcnow() - timedelta(seconds=300))
        )
    assert reap_stale_jobs(engine, 120.0, project_id=project_id) == [stale]
    job = _get(app, stale)
    assert job.status == "failed" and job.finished_at is not None
    assert f"worker w{stale}@host stopped responding" in (job.error or "")
    assert "no heartbeat for 300 s" in (job.error or "")
    assert _get(app, fresh).status == "running"
    assert _get(app, queued).status == "queued"  # waiting for a worker is not death
    assert reap_stale_jobs(engine, 120.0, project_id=project_id) == []

    # The API's GET runs the reaper too.
    with session_scope(engine) as session:
        session.execute(
            update(Job).where(Job.id == fresh).values(heartbeat_at=utcnow() - timedelta(days=1))
        )
    r = api.client.get(f"/api/jobs/{fresh}", headers=api.headers)
    assert r.status_code == 200 and r.json()["status"] == "failed"
    assert "no heartbeat" in r.json()["error"]


def test_api_lifespan_reaps_without_anyone_asking(tmp_path: Path) -> None:
    """The API server runs the reaper in the background (jobs router lifespan)."""
    with make_stack(tmp_path / "data", job_heartbeat_timeout_s=1.0) as stack:
        engine = stack.app.state.engine
        job_id = _job(stack.app, stack.api.create_project()["id"])
        job_state.claim(engine, job_id, "gone@host")
        with TestClient(stack.app):  # runs the lifespan
            deadline = time.monotonic() + 10
            while _get(stack.app, job_id).status == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
        job = _get(stack.app, job_id)
        assert job.status == "failed" and "gone@host stopped responding" in (job.error or "")


def test_unreachable_queue_is_a_503_and_the_job_is_not_left_queued(tmp_path: Path) -> None:
    # Port 1 on localhost: nothing listens, so the broker connection is refused.
    with make_stack(tmp_path / "data", broker_url="redis://127.0.0.1:1/0") as stack:
        project, _, _ = synthetic_project(stack.api, images=1, size=32)
        r = stack.client.post(
            f"/api/projects/{project['id']}/jobs",
            json={"kind": "train", "config": {}},
            headers=stack.api.headers,
        )
        assert r.status_code == 503, r.text
        assert r.json()["detail"]["code"] == "queue_unavailable"
        jobs = stack.client.get(
            f"/api/projects/{project['id']}/jobs", headers=stack.api.headers
        ).json()["items"]
        assert [j["status"] for j in jobs] == ["failed"]
        assert "could not reach the job queue" in jobs[0]["error"]
