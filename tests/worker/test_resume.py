"""Killed or stopped training jobs resume from their last checkpoint, and the scratch
directories of dead jobs are removed (issue 11, item 9). worker.runner in this process, real
tiny trainings; ``models.train.train`` is wrapped to see where each run starts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from jobs.reaper import reap_stale_jobs
from store.db import get_engine, session_scope, utcnow
from store.jobs_tables import Job
from tests.worker.helpers import Stack, long_config, make_stack, synthetic_project
from worker import scratch
from worker.runner import run_job

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with make_stack(tmp_path_factory.mktemp("resume") / "data") as s:
        yield s


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the runner handles it."""


@dataclass
class Run:
    resume: bool
    init: Path | None
    out_dir: Path
    epochs: list[int] = field(default_factory=list)


def _wrap_train(
    monkeypatch: pytest.MonkeyPatch, interrupt: Callable[[Run], None] | None
) -> list[Run]:
    """Record every training run; ``interrupt(run)`` is called on each progress report of the
    first run once its last.pt exists at epoch 3 or later."""
    import models.train as mt

    real = mt.train
    runs: list[Run] = []

    def recording(samples: Any, num_classes: int, config: Any, **kw: Any) -> Any:
        run = Run(bool(config.resume), kw.get("init_checkpoint"), Path(kw["out_dir"]))
        runs.append(run)
        report = kw["progress"]

        def progress(p: Any) -> None:
            run.epochs.append(int(p.epoch))
            report(p)
            first = len(runs) == 1
            if first and interrupt and p.epoch >= 3 and (run.out_dir / "last.pt").exists():
                interrupt(run)

        return real(samples, num_classes, config, **(kw | {"progress": progress}))

    monkeypatch.setattr(mt, "train", recording)
    return runs


def _versions(stack: Stack, project_id: int) -> list[dict[str, Any]]:
    r = stack.client.get(f"/api/projects/{project_id}/models", headers=stack.api.headers)
    return r.json()["items"]


def test_a_requeued_job_resumes_from_its_last_checkpoint(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm shutdown mid-training requeues the job; run again, it continues at the epoch of
    its last.pt instead of epoch 0, and its scratch directory is gone once it succeeded."""
    from worker.shutdown import SHUTTING_DOWN

    project, _, _ = synthetic_project(stack.api, images=2, size=32, seed=21)
    job = stack.submit(project["id"], config=long_config(epochs=6))
    runs = _wrap_train(monkeypatch, lambda run: SHUTTING_DOWN.set())
    try:
        assert run_job(job["id"], worker="first@test", settings=stack.settings) == "queued"
    finally:
        SHUTTING_DOWN.clear()
    assert stack.job(job["id"])["status"] == "queued"
    folder = scratch.job_dir(stack.settings, job["id"])
    assert (folder / "out" / "last.pt").is_file()  # kept for the next run

    assert run_job(job["id"], worker="second@test", settings=stack.settings) == "succeeded"
    first, second = runs
    assert not first.resume and first.epochs[0] == 1
    assert second.resume and second.init == folder / "out" / "last.pt"
    assert min(second.epochs) >= 3  # resumed after epoch 2 at least, not from 0
    assert max(second.epochs) == 6
    done = stack.job(job["id"])
    assert done["status"] == "succeeded" and done["worker"] == "second@test"
    [version] = _versions(stack, project["id"])
    assert version["epochs"] == 6 and version["config"].get("resume") in (None, False)
    assert not folder.exists()  # the job ended here: its checkpoints are not needed any more


def test_a_job_submitted_again_after_a_kill_resumes_and_the_dead_ones_files_go(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL mid-training leaves the scratch directory and a running row; the reaper fails
    the job; the same training submitted again takes over that directory and resumes."""
    import worker.runner as runner

    def kill(_run: Run) -> None:
        raise Killed

    project, _, _ = synthetic_project(stack.api, images=2, size=32, seed=23)
    dead = stack.submit(project["id"], config=long_config(epochs=6))
    runs = _wrap_train(monkeypatch, kill)
    # A killed process runs no cleanup at all.
    monkeypatch.setattr(runner, "_drop_scratch_unless_queued", lambda *a: None)
    with pytest.raises(Killed):
        run_job(dead["id"], worker="killed@test", settings=stack.settings)
    monkeypatch.undo()
    runs = _wrap_train(monkeypatch, None)
    engine = get_engine(stack.settings.resolved_database_url)
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == dead["id"])
            .values(heartbeat_at=utcnow() - timedelta(seconds=600))
        )
    assert reap_stale_jobs(engine, 120.0, job_id=dead["id"]) == [dead["id"]]
    dead_dir = scratch.job_dir(stack.settings, dead["id"])
    assert (dead_dir / "out" / "last.pt").is_file()

    again = stack.submit(project["id"], config=long_config(epochs=6))
    assert run_job(again["id"], worker="next@test", settings=stack.settings) == "succeeded"
    [run] = runs
    assert run.resume and run.init == scratch.job_dir(stack.settings, again["id"]) / "out/last.pt"
    assert min(run.epochs) >= 3
    assert not dead_dir.exists() and not scratch.job_dir(stack.settings, again["id"]).exists()

    # Other inputs (here: epochs) never resume from another job's checkpoint.
    other = stack.submit(project["id"], config=long_config(epochs=2))
    runs.clear()
    assert run_job(other["id"], worker="next@test", settings=stack.settings) == "succeeded"
    assert not runs[0].resume and runs[0].epochs[0] == 1


def _set_status(stack: Stack, job_id: int, status: str) -> None:
    engine = get_engine(stack.settings.resolved_database_url)
    with session_scope(engine) as session:
        session.execute(update(Job).where(Job.id == job_id).values(status=status))


def test_sweep_removes_scratch_of_dead_jobs_only(stack: Stack, tmp_path: Path) -> None:
    project, _, _ = synthetic_project(stack.api, images=1, size=32, seed=25)
    ids = {s: stack.submit(project["id"])["id"] for s in ("failed", "queued", "running")}
    for status, job_id in ids.items():
        _set_status(stack, job_id, status)
    gone = 2**31 - 2  # a job row that no longer exists
    dirs = {
        s: scratch.job_dir(stack.settings, job_id) for s, job_id in (ids | {"gone": gone}).items()
    }
    for folder in dirs.values():
        (folder / "out").mkdir(parents=True)
        (folder / "out" / "last.pt").write_bytes(b"x")
    # Temporary directories that killed jobs of older versions left in the temp folder.
    temp = tmp_path / "tmp"
    leaked = temp / f"shapehint-job{ids['failed']}-abc123"
    running_tmp = temp / f"shapehint-job{ids['running']}-def456"
    unrelated = temp / "something-else"
    for folder in (leaked, running_tmp, unrelated):
        folder.mkdir(parents=True)

    engine = get_engine(stack.settings.resolved_database_url)
    # Fresh directories of dead jobs stay a while (a resubmission may resume from them).
    assert scratch.sweep(engine, stack.settings, temp_dir=temp) == [leaked]
    assert dirs["failed"].exists() and dirs["gone"].exists()
    later = time.time() + scratch.DEAD_KEEP_S + 60
    removed = scratch.sweep(engine, stack.settings, temp_dir=temp, now=later)
    assert sorted(removed) == sorted([dirs["failed"], dirs["gone"]])
    assert dirs["queued"].exists() and dirs["running"].exists()
    assert running_tmp.exists() and unrelated.exists()


def test_fingerprint_depends_on_values_not_on_key_order() -> None:
    import numpy as np

    a = {"config": {"lr": 0.01, "epochs": 3}, "slices": [(1, "k", 0, np.ones(3), np.zeros(3))]}
    b = {"slices": [(1, "k", 0, np.ones(3), np.zeros(3))], "config": {"epochs": 3, "lr": 0.01}}
    assert scratch.inputs_fingerprint(a) == scratch.inputs_fingerprint(b)
    c = {"config": {"lr": 0.01, "epochs": 3}, "slices": [(1, "k", 0, np.ones(3), np.ones(3))]}
    assert scratch.inputs_fingerprint(a) != scratch.inputs_fingerprint(c)
