"""``shapehint demo``: a synthetic project end to end through the REST API, headless.

Without ``--url`` it starts its own server in this process (uvicorn on a free port, a temporary
data directory, SQLite and the filesystem queue) plus one embedded worker. Then, exactly as a
user would over HTTP: create a project, upload PNGs from ``models.synthetic``, PUT size and
centroid hints derived from the known masks (+-15 %), submit a train job, follow it with a
progress bar, download the predicted masks and print per-class Dice against the known masks.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image as PILImage

from models.metrics import dice
from models.synthetic import CLASS_NAMES, make_dataset, make_hints

# Relative width of the demo's hints around the true values: +-15 %.
HINT_TOLERANCE = 0.15
JOB_TIMEOUT_S = 30 * 60


@dataclass
class DemoResult:
    """Per-class Dice of the predicted masks against the synthetic truth (mean over images)."""

    dice: dict[str, float]
    seconds: float
    job: dict[str, Any]
    project_id: int
    image_ids: list[int] = field(default_factory=list)

    @property
    def mean_dice(self) -> float:
        return float(np.mean(list(self.dice.values()))) if self.dice else 0.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def local_server(
    data_dir: Path | None = None, *, worker_log: Path | None = None
) -> Iterator[tuple[str, str]]:
    """A throwaway shapehint (API on a free port + one worker); yields ``(url, admin token)``."""
    import uvicorn

    from api.app import create_app
    from api.services.users import ensure_admin
    from store.migrate import upgrade_head
    from store.settings import Settings
    from worker.embedded import start_embedded_worker

    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="shapehint-demo-"))
            )
        token = "sh_demo_" + secrets.token_hex(24)
        settings = Settings(data_dir=data_dir, bootstrap_token=token)
        settings.ensure_dirs()
        upgrade_head(settings.resolved_database_url)
        app = create_app(settings)
        with app.state.session_factory() as session:
            ensure_admin(session, token)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="demo-api", daemon=True)
        # The worker imports torch while the server starts: both overlap.
        # The worker's log goes to a file (printed if the demo fails), not over the progress bar.
        log_path = worker_log or data_dir / "worker.log"
        stack.enter_context(start_embedded_worker(settings, log_path=log_path))
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the demo API server did not start")
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", token
        except BaseException:
            if log_path.exists():
                print("worker log (last lines):\n" + log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            server.should_exit = True
            thread.join(10)
            app.state.engine.dispose()


def _png(image: np.ndarray) -> bytes:
    """``(1, H, W)`` float in [0, 1] -> 8-bit grey PNG bytes."""
    grey = np.clip(np.round(image[0] * 255.0), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(grey, "L").save(buf, format="PNG")
    return buf.getvalue()


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{what} failed: HTTP {response.status_code} {response.text}")
    return (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else response.content
    )


def run_demo_flow(
    base_url: str,
    token: str,
    *,
    images: int = 8,
    size: int = 64,
    seed: int = 0,
    num_classes: int = 2,
    config: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> DemoResult:
    """The demo's REST conversation against a running server; returns per-class Dice."""
    from tqdm import tqdm

    started = time.monotonic()
    names = list(CLASS_NAMES[:num_classes])
    data = make_dataset(images, size=size, num_classes=num_classes, seed=seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60.0) as http:
        project = _check(
            http.post(
                "/api/projects",
                json={
                    "name": f"demo-{seed}-{secrets.token_hex(3)}",
                    "description": "synthetic shapes (shapehint demo)",
                    "classes": [{"name": n} for n in names],
                },
            ),
            "creating the project",
        )
        files = [
            ("files", (f"synthetic_{i:03d}.png", _png(img), "image/png"))
            for i, (img, _) in enumerate(data)
        ]
        uploaded = _check(
            http.post(f"/api/projects/{project['id']}/images", files=files), "uploading"
        )
        image_ids = [int(im["id"]) for im in uploaded]
        for i, (image_id, (_, mask)) in enumerate(zip(image_ids, data, strict=True)):
            hints = make_hints(
                mask,
                num_classes,
                seed=seed * 1000 + i,
                rel=(HINT_TOLERANCE, HINT_TOLERANCE),
                class_names=tuple(names),
            )
            _check(http.put(f"/api/images/{image_id}/slices/0/hints", json=hints), "hints")
        job = _check(
            http.post(
                f"/api/projects/{project['id']}/jobs",
                json={"kind": "train", "config": config or {}},
            ),
            "submitting the training job",
        )
        job = _follow(http, int(job["id"]), show_progress, tqdm)
        if job["status"] != "succeeded":
            raise RuntimeError(f"training job {job['id']} {job['status']}: {job.get('error')}")
        scores: dict[int, list[float]] = {k: [] for k in range(1, num_classes + 1)}
        for image_id, (_, mask) in zip(image_ids, data, strict=True):
            png = _check(
                http.get(f"/api/images/{image_id}/prediction", params={"format": "png"}),
                "downloading a prediction",
            )
            pred = np.asarray(PILImage.open(io.BytesIO(png)))
            for k, d in dice(pred, mask, num_classes + 1).items():
                scores[k].append(d)
    per_class = {names[k - 1]: float(np.mean(v)) for k, v in scores.items()}
    return DemoResult(per_class, time.monotonic() - started, job, int(project["id"]), image_ids)


def _follow(http: httpx.Client, job_id: int, show: bool, tqdm: Any) -> dict[str, Any]:
    """Poll the job until it ends, with a progress bar over its training steps."""
    bar = tqdm(total=0, unit="step", disable=not show, desc="training", dynamic_ncols=True)
    deadline = time.monotonic() + JOB_TIMEOUT_S
    predicting = False
    try:
        while True:
            job = _check(http.get(f"/api/jobs/{job_id}"), "reading the job")
            p = job.get("progress") or {}
            if p.get("phase") == "training" and p.get("steps"):
                # ``step`` counts optimiser steps over the whole run, ``steps`` is their total.
                total, done = int(p["steps"]), min(int(p.get("step") or 0), int(p["steps"]))
                if (bar.total, bar.n) != (total, done):
                    bar.total, bar.n = total, done
                    if p.get("loss") is not None:
                        bar.set_postfix(
                            epoch=f"{p.get('epoch')}/{p.get('epochs')}",
                            loss=f"{float(p['loss']):.4f}",
                            refresh=False,
                        )
                    bar.refresh()
            elif p.get("phase") == "predicting" and not predicting:
                predicting = True
                bar.set_description("predicting")
            if job["status"] not in ("queued", "running"):
                if job["status"] == "succeeded" and bar.total:
                    bar.n = bar.total
                    bar.refresh()
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {JOB_TIMEOUT_S} s")
            time.sleep(0.5)
    finally:
        bar.close()


def run_demo(
    images: int = 8,
    size: int = 64,
    seed: int = 0,
    url: str | None = None,
    token: str | None = None,
    num_classes: int = 2,
    config: dict[str, Any] | None = None,
    show_progress: bool = True,
) -> DemoResult:
    """The ``shapehint demo`` command: prints per-class Dice and the runtime; returns them."""
    started = time.monotonic()
    if url is not None:
        if not token:
            raise ValueError("--url needs --token (a Bearer token of that server)")
        result = run_demo_flow(
            url.rstrip("/"),
            token,
            images=images,
            size=size,
            seed=seed,
            num_classes=num_classes,
            config=config,
            show_progress=show_progress,
        )
    else:
        print("starting a local shapehint (API + worker) in a temporary directory ...")
        with local_server() as (local_url, local_token):
            print(f"server at {local_url}")
            result = run_demo_flow(
                local_url,
                local_token,
                images=images,
                size=size,
                seed=seed,
                num_classes=num_classes,
                config=config,
                show_progress=show_progress,
            )
    result.seconds = time.monotonic() - started
    print(
        f"\n{images} synthetic images of {size}x{size} px, hints: size and centroid "
        f"+-{HINT_TOLERANCE:.0%} of the truth; model version {result.job['result']['version']}"
    )
    print(f"{'class':<8}{'Dice':>8}")
    for name, d in result.dice.items():
        print(f"{name:<8}{d:>8.3f}")
    print(f"{'mean':<8}{result.mean_dice:>8.3f}")
    print(f"total time {result.seconds:.1f} s")
    return result
