"""Durable scratch directories of training jobs: resume after a kill, clean up after the dead.

A train job writes its checkpoints (``out/last.pt`` after every validation, with the optimiser
state, and ``out/model.pt``) under ``data_dir/scratch/job-<id>/``, next to ``inputs.sha256``,
the fingerprint of everything that decides the training (project, classes, resolved config,
warm start, pixels and bounds of every slice). Unlike a temporary directory it survives the
worker process, so:

- a job that goes back to the queue (worker stopped) resumes from its ``last.pt`` when it runs
  again with the same fingerprint;
- a job submitted again after its worker was killed (the reaper failed it) takes over the dead
  job's directory when the fingerprints match, and resumes too;
- a job that ends in this worker (succeeded, failed, cancelled) removes its directory, and
  :func:`sweep` removes those of dead jobs after ``DEAD_KEEP_S`` (and the temporary directories
  older versions left in the system temp folder).

Workers on several machines resume only what their own ``data_dir`` holds (docker-compose
shares one volume); elsewhere a resumed job simply starts from epoch 0.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from store.db import session_scope
from store.jobs_tables import ACTIVE_STATUSES, Job
from store.settings import Settings

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "inputs.sha256"
LAST_CHECKPOINT = Path("out") / "last.pt"
# How long the directory of a dead job is kept for a resubmission to resume from (s).
DEAD_KEEP_S = 24 * 3600.0
# Temporary directories of jobs (``tempfile``, prefix ``shapehint-job<id>-``).
TEMP_PREFIX = "shapehint-job"
_JOB_DIR = re.compile(r"^job-(\d+)$")
_TEMP_DIR = re.compile(rf"^{TEMP_PREFIX}(\d+)-")


def scratch_root(settings: Settings) -> Path:
    return settings.resolved_data_dir / "scratch"


def job_dir(settings: Settings, job_id: int) -> Path:
    return scratch_root(settings) / f"job-{job_id}"


def _canonical(value: Any) -> Any:
    """JSON-ready form of ``value`` with arrays replaced by a hash of their dtype, shape, bytes."""
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        digest = hashlib.sha256(arr.tobytes()).hexdigest()
        return {"array": [str(arr.dtype), list(arr.shape), digest]}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


def inputs_fingerprint(inputs: dict[str, Any]) -> str:
    """sha256 of ``inputs`` (JSON values and numpy arrays), independent of key order."""
    text = json.dumps(_canonical(inputs), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _fingerprint_of(folder: Path) -> str | None:
    try:
        return (folder / FINGERPRINT_FILE).read_text().strip()
    except OSError:
        return None


def _active_job_ids(engine: Engine, job_ids: list[int]) -> set[int]:
    if not job_ids:
        return set()
    with session_scope(engine) as session:
        return set(
            session.scalars(
                select(Job.id).where(Job.id.in_(job_ids), Job.status.in_(ACTIVE_STATUSES))
            )
        )


def _job_dirs(root: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    if root.is_dir():
        for entry in root.iterdir():
            match = _JOB_DIR.match(entry.name)
            if match and entry.is_dir():
                out[int(match.group(1))] = entry
    return out


def prepare_job_dir(
    engine: Engine, settings: Settings, job_id: int, fingerprint: str
) -> tuple[Path, Path | None]:
    """The job's scratch directory and the checkpoint to resume from (None: start afresh).

    Its own directory counts when the fingerprint matches (a requeued job); else the directory
    of a job that is no longer queued or running with the same fingerprint is taken over (a
    resubmission after a kill). A rename is atomic, so two jobs never take over the same one.
    """
    own = job_dir(settings, job_id)
    if own.is_dir() and _fingerprint_of(own) == fingerprint and (own / LAST_CHECKPOINT).is_file():
        return own, own / LAST_CHECKPOINT
    if own.exists():
        shutil.rmtree(own, ignore_errors=True)  # other inputs: that run is of no use
    others = {i: d for i, d in _job_dirs(scratch_root(settings)).items() if i != job_id}
    matching = {
        i: d
        for i, d in others.items()
        if _fingerprint_of(d) == fingerprint and (d / LAST_CHECKPOINT).is_file()
    }
    active = _active_job_ids(engine, list(matching))
    for other_id in sorted(set(matching) - active, reverse=True):  # the newest dead run first
        try:
            matching[other_id].rename(own)
        except OSError:  # taken by another job meanwhile
            continue
        log.info("job %s resumes from the checkpoint of dead job %s", job_id, other_id)
        return own, own / LAST_CHECKPOINT
    own.mkdir(parents=True, exist_ok=True)
    (own / FINGERPRINT_FILE).write_text(fingerprint)
    return own, None


def remove_job_dir(settings: Settings, job_id: int) -> None:
    shutil.rmtree(job_dir(settings, job_id), ignore_errors=True)


def sweep(
    engine: Engine,
    settings: Settings,
    *,
    keep_s: float = DEAD_KEEP_S,
    temp_dir: Path | None = None,
    now: float | None = None,
) -> list[Path]:
    """Remove scratch directories of jobs that are not queued or running (or whose row is gone):
    under ``data_dir/scratch`` once untouched for ``keep_s`` (kept that long for a resubmission
    to resume from), and the job temporary directories in ``temp_dir`` (default: the system
    temp folder) at once. Returns what was removed."""
    now = time.time() if now is None else now
    candidates: list[tuple[int, Path, float]] = [
        (job_id, folder, keep_s) for job_id, folder in _job_dirs(scratch_root(settings)).items()
    ]
    temp = Path(temp_dir or tempfile.gettempdir())
    try:
        entries = list(temp.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        match = _TEMP_DIR.match(entry.name)
        if match and entry.is_dir():
            candidates.append((int(match.group(1)), entry, 0.0))
    active = _active_job_ids(engine, sorted({job_id for job_id, _, _ in candidates}))
    removed: list[Path] = []
    for job_id, folder, keep in candidates:
        if job_id in active:
            continue
        try:
            age = now - _last_change(folder)
        except OSError:
            continue
        if age < keep:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
            log.info("removed scratch directory %s of dead job %s", folder, job_id)
    return removed


def _last_change(folder: Path) -> float:
    """Newest mtime of the folder and what it holds (checkpoints are rewritten in ``out``)."""
    latest = folder.stat().st_mtime
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                latest = max(latest, os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                continue
    return latest
