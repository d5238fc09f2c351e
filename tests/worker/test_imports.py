"""The API process never imports torch: enqueueing, job validation and the worker's light
modules stay torch-free (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CODE = """
import sys
from api.app import create_app
import api.services.jobs, api.services.predictions
import jobs.queue, jobs.reaper, jobs.state, jobs.training_data
import worker.celery_app, worker.tasks, worker.embedded
from store.settings import Settings
app = create_app(Settings(data_dir=sys.argv[1]))
api.services.jobs.validate_train_config({"epochs": 3, "grid": 32})
jobs.queue.get_celery()
heavy = sorted(m for m in ("torch", "monai", "models.train", "models.infer") if m in sys.modules)
print(",".join(heavy))
"""


def test_api_and_queue_code_do_not_import_torch(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"
