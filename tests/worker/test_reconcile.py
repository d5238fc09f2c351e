"""Lost queued jobs are sent again (or failed after N sends), and /api/health reports the
database, broker and storage apart (issue 11, item 3). The embedded filesystem broker and a
real Redis; no worker runs (the queue contents are checked directly)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from jobs.queue import job_id_of_message, queued_job_ids
from jobs.reaper import QueuedJob, lost_jobs, reconcile_queued_jobs
from store.db import session_scope, utcnow
from store.jobs_tables import Job
from tests.requirements import REPO_ROOT, need_redis
from tests.worker.helpers import Stack, make_stack, private_redis_db, synthetic_project

pytestmark = pytest.mark.timeout(120)

LATER = timedelta(seconds=3600)  # past job_requeue_after_s


@pytest.fixture
def fs_stack(tmp_path: Path) -> Iterator[Stack]:
    with make_stack(tmp_path / "data", job_max_enqueues=3) as stack:
        yield stack


@pytest.fixture
def redis_stack(tmp_path: Path) -> Iterator[Stack]:
    with (
        private_redis_db(need_redis()) as url,
        make_stack(tmp_path / "data", broker_url=url) as stack,
    ):
        yield stack


def _row(stack: Stack, job_id: int) -> Job:
    with stack.app.state.session_factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _lose_filesystem_messages(stack: Stack) -> int:
    """What a lost queue does: the messages are gone, the job rows still say queued."""
    files = list((stack.settings.queue_dir / "messages").glob("*.msg"))
    for path in files:
        path.unlink()
    return len(files)


def test_a_lost_message_is_sent_again_and_the_job_failed_after_n_sends(fs_stack: Stack) -> None:
    stack = fs_stack
    engine = stack.app.state.engine
    project, _, _ = synthetic_project(stack.api, images=1, size=32)
    job = stack.submit(project["id"])
    row = _row(stack, job["id"])
    assert row.enqueued_at is not None and row.enqueue_count == 1
    assert queued_job_ids(stack.settings) == {job["id"]}

    # Waiting in the queue (e.g. behind a long training) is not lost: nothing is sent.
    assert reconcile_queued_jobs(engine, stack.settings, now=utcnow() + LATER).resent == []
    # Not yet waiting job_requeue_after_s: the broker is not even asked.
    assert _lose_filesystem_messages(stack) == 1
    assert reconcile_queued_jobs(engine, stack.settings).resent == []

    for count in (2, 3):
        done = reconcile_queued_jobs(engine, stack.settings, now=utcnow() + LATER)
        assert (done.resent, done.failed) == ([job["id"]], [])
        assert queued_job_ids(stack.settings) == {job["id"]}
        assert _row(stack, job["id"]).enqueue_count == count
        assert _lose_filesystem_messages(stack) == 1
    # job_max_enqueues (3) sends in a row all lost: failed with the reason.
    done = reconcile_queued_jobs(engine, stack.settings, now=utcnow() + LATER)
    assert (done.resent, done.failed) == ([], [job["id"]])
    failed = stack.job(job["id"])
    assert failed["status"] == "failed" and "lost this job's message 3 time(s)" in failed["error"]
    assert queued_job_ids(stack.settings) == set()


def test_a_job_committed_but_never_sent_is_sent(fs_stack: Stack) -> None:
    """The API died between the commit and the send: the row says queued, no message exists."""
    stack = fs_stack
    engine = stack.app.state.engine
    project, _, _ = synthetic_project(stack.api, images=1, size=32)
    with session_scope(engine) as session:
        job = Job(project_id=project["id"], kind="train", config={}, progress={})
        session.add(job)
        session.flush()
        job_id = job.id
    cancelled = stack.submit(project["id"])["id"]
    stack.client.post(f"/api/jobs/{cancelled}/cancel", headers=stack.api.headers)
    assert _row(stack, job_id).enqueued_at is None
    done = reconcile_queued_jobs(engine, stack.settings, now=utcnow() + LATER)
    assert done.resent == [job_id]  # the cancelled job is left alone
    assert job_id in queued_job_ids(stack.settings)
    assert _row(stack, job_id).enqueue_count == 1 and _row(stack, job_id).status == "queued"


def test_brokers_that_cannot_be_inspected_count_only_unsent_jobs_as_lost() -> None:
    now = utcnow()
    sent = QueuedJob(1, "train", now, now, 1)
    unsent = QueuedJob(2, "train", None, now, 0)
    assert lost_jobs([sent, unsent], None) == [unsent]
    assert lost_jobs([sent, unsent], {1}) == [unsent]
    assert lost_jobs([sent, unsent], set()) == [sent, unsent]
    assert job_id_of_message(b"not json") is None


def test_the_api_lifespan_reconciles_without_anyone_asking(tmp_path: Path) -> None:
    with make_stack(tmp_path / "data", job_requeue_after_s=0.5) as stack:
        project, _, _ = synthetic_project(stack.api, images=1, size=32)
        job = stack.submit(project["id"])
        _lose_filesystem_messages(stack)
        with TestClient(stack.app):  # runs the lifespan (reaper + reconciler loop)
            deadline = time.monotonic() + 15
            while job["id"] not in queued_job_ids(stack.settings):
                assert time.monotonic() < deadline, "the lost job was not sent again"
                time.sleep(0.2)
        assert _row(stack, job["id"]).enqueue_count == 2


@pytest.mark.redis
def test_jobs_lost_in_a_redis_restart_without_persistence_are_sent_again(
    redis_stack: Stack,
) -> None:
    stack = redis_stack
    engine = stack.app.state.engine
    project, _, _ = synthetic_project(stack.api, images=1, size=32)
    jobs = [stack.submit(project["id"])["id"] for _ in range(2)]
    assert queued_job_ids(stack.settings) == set(jobs)
    client = redis.Redis.from_url(str(stack.settings.broker_url))
    # A message a worker took but has not acknowledged (running or about to) still counts.
    raw = client.rpop("shapehint")
    assert job_id_of_message(raw) == jobs[0]
    client.hset("unacked", "tag-1", b"[" + raw + b', "", "shapehint"]')
    assert queued_job_ids(stack.settings) == set(jobs)
    assert reconcile_queued_jobs(engine, stack.settings, now=utcnow() + LATER).resent == []

    client.flushdb()  # Redis restarted without its append-only file
    assert queued_job_ids(stack.settings) == set()
    done = reconcile_queued_jobs(engine, stack.settings, now=utcnow() + LATER)
    assert sorted(done.resent) == sorted(jobs)
    assert queued_job_ids(stack.settings) == set(jobs)
    assert [stack.job(j)["status"] for j in jobs] == ["queued", "queued"]
    client.close()


def test_docker_compose_keeps_redis_persistence_on() -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    assert '"--appendonly", "yes"' in text


# --- /api/health -------------------------------------------------------------------------------


def _health(stack: Stack) -> tuple[int, dict[str, Any]]:
    r = stack.client.get("/api/health")
    return r.status_code, r.json()


def test_health_reports_each_dependency_and_caches(
    fs_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.routes.health as health

    calls: list[str] = []
    real = health.broker_status

    def counting(settings: Any) -> str:
        calls.append("broker")
        return real(settings)

    monkeypatch.setattr(health, "broker_status", counting)
    code, body = _health(fs_stack)
    assert code == 200 and body["status"] == "ok"
    assert (body["database"], body["broker"], body["storage"]) == ("ok", "ok", "ok")
    for _ in range(20):
        _health(fs_stack)
    assert calls == ["broker"]  # cached: one check for 21 requests

    # The filesystem queue disappears: the broker is down, the rest still works (HTTP 200).
    queue = fs_stack.settings.queue_dir
    queue.rename(queue.with_name("queue-gone"))
    fs_stack.app.state.health_cache.ttl_s = 0.0
    code, body = _health(fs_stack)
    assert code == 200 and body["status"] == "degraded"
    assert body["broker"].startswith("unavailable") and body["database"] == "ok"
    assert body["storage"] == "ok"

    # Database down: 503 (no route can work), still each state on its own.
    monkeypatch.setattr(health, "database_status", lambda engine: "unreachable: OperationalError")
    code, body = _health(fs_stack)
    assert code == 503 and body["status"] == "degraded"
    assert body["database"] == "unreachable: OperationalError"


def test_health_with_an_unreachable_redis_answers_fast_and_says_degraded(tmp_path: Path) -> None:
    with make_stack(tmp_path / "data", broker_url="redis://127.0.0.1:1/0") as stack:
        started = time.monotonic()
        code, body = _health(stack)
        assert time.monotonic() - started < 4.0
        assert code == 200 and body["status"] == "degraded"
        assert body["broker"].startswith("unreachable") and body["database"] == "ok"
        started = time.monotonic()
        for _ in range(10):
            assert _health(stack)[1]["broker"] == body["broker"]
        assert time.monotonic() - started < 1.0  # cached, no new connection attempt per call


@pytest.mark.redis
def test_health_reuses_its_redis_connection(redis_stack: Stack) -> None:
    from jobs.queue import redis_client

    stack = redis_stack
    code, body = _health(stack)
    assert code == 200 and body["broker"] == "ok"
    stack.app.state.health_cache.ttl_s = 0.0  # check on every call from here on
    for _ in range(10):
        assert _health(stack)[1]["broker"] == "ok"
    # One pooled connection for all of them (redis-py counts what its pool opened).
    pool = redis_client(str(stack.settings.broker_url)).connection_pool
    assert pool._created_connections == 1
