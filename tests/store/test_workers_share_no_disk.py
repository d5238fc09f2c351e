"""Workers that share nothing but Redis, PostgreSQL and S3 (moto): each has its own scratch
directory, none sees the API's data directory, and jobs succeed on either of them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import postgres_schema_url
from tests.requirements import need_postgres, need_redis
from tests.s3_server import s3_settings
from tests.worker.helpers import TINY_CONFIG, Stack, make_stack, private_redis_db, synthetic_project
from worker.embedded import WorkerProcess, start_worker_process

pytestmark = [pytest.mark.timeout(300), pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def s3_stack(tmp_path: Path, s3_endpoint: str) -> Iterator[Stack]:
    """The API on PostgreSQL (fresh schema) + Redis (broker and results) + S3 blobs."""
    base_pg = need_postgres()
    base_redis = need_redis()
    schema = f"s3_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with (
            private_redis_db(base_redis) as redis_url,
            make_stack(
                tmp_path / "api",
                database_url=postgres_schema_url(base_pg, schema),
                broker_url=redis_url,
                result_backend=redis_url,
                **s3_settings(s3_endpoint),
            ) as stack,
        ):
            yield stack
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _worker_on_own_disk(stack: Stack, name: str, scratch: Path) -> WorkerProcess:
    settings = stack.settings.model_copy(update={"data_dir": scratch})
    worker = start_worker_process(
        settings, hostname=f"{name}-{uuid.uuid4().hex[:6]}@test", log_path=scratch / "worker.log"
    )
    stack.workers.append(worker)
    worker.wait_ready(90)
    return worker


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_jobs_succeed_on_either_worker_with_nothing_but_s3_between_them(
    s3_stack: Stack, tmp_path: Path
) -> None:
    project, ids, _ = synthetic_project(s3_stack.api, images=3, size=32)

    # Worker A trains version 1: reads the volumes from S3, writes checkpoint and masks there.
    a = _worker_on_own_disk(s3_stack, "a", tmp_path / "scratch-a")
    first = s3_stack.wait_done(s3_stack.submit(project["id"])["id"], timeout_s=180)
    assert first["status"] == "succeeded", first
    assert first["worker"] == a.hostname
    a.stop(grace_s=20)

    # Worker B, on another disk, warm-starts from A's checkpoint and predicts every image.
    b = _worker_on_own_disk(s3_stack, "b", tmp_path / "scratch-b")
    job = s3_stack.submit(
        project["id"], config=TINY_CONFIG, model_version_id=first["result"]["model_version_id"]
    )
    second = s3_stack.wait_done(job["id"], timeout_s=180)
    assert second["status"] == "succeeded", second
    assert second["worker"] == b.hostname
    assert second["result"]["version"] == 2 and second["result"]["predictions"] == len(ids)

    # The API serves B's masks (fetched from S3 into its cache); no blob is on a shared disk.
    for image_id in ids:
        r = s3_stack.client.get(
            f"/api/images/{image_id}/prediction",
            params={"format": "png"},
            headers=s3_stack.api.headers,
        )
        assert r.status_code == 200, r.text
    for scratch in (tmp_path / "scratch-a", tmp_path / "scratch-b", tmp_path / "api"):
        assert not (scratch / "blobs").exists(), _files(scratch)
    # Each worker cached only what it read (volumes, and B the warm-start source's inputs).
    assert _files(tmp_path / "scratch-a" / "blob-cache")
    assert _files(tmp_path / "scratch-b" / "blob-cache")
