"""Job routes without a worker: validation at submission, reads, cancel, events, permissions.

Runs on SQLite and PostgreSQL. Submitted jobs go to the filesystem queue of the test's data
directory, where no worker consumes them (real trainings: tests/worker/).
"""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import timedelta

import numpy as np
from fastapi import FastAPI
from PIL import Image as PILImage
from sqlalchemy import delete, select, update

from models.budget import BUDGET_SECONDS, epoch_ceiling, plan_epochs
from models.fitting import FIT_SECONDS_PER_SLICE
from store.db import session_scope, utcnow
from store.jobs_tables import Job, ModelVersion
from store.settings import Settings
from tests.api_helpers import Api, png_bytes

HINT = {"LV": {"present": True, "size": [20, 200], "centroid": {"x": [5, 20], "y": [5, 20]}}}


def parse_events(body: str) -> list[tuple[str, dict]]:
    """``(event name, JSON data)`` of each server-sent event in a stream body."""
    out = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def _hinted_project(api: Api) -> tuple[int, int]:
    project = api.create_project(classes=("LV",))
    image = api.upload_png(project["id"], height=32, width=32)
    r = api.client.put(f"/api/images/{image['id']}/slices/0/hints", json=HINT, headers=api.headers)
    assert r.status_code == 200, r.text
    return project["id"], image["id"]


def _job_count(app: FastAPI, project_id: int) -> int:
    with app.state.session_factory() as session:
        return len(list(session.scalars(select(Job.id).where(Job.project_id == project_id))))


def _submit(api: Api, project_id: int, body: dict, headers: dict | None = None):  # type: ignore[no-untyped-def]
    return api.client.post(
        f"/api/projects/{project_id}/jobs", json=body, headers=headers or api.headers
    )


def test_submit_queues_a_job_and_sends_its_id(api: Api, app_settings: Settings) -> None:
    project_id, _ = _hinted_project(api)
    r = _submit(api, project_id, {"kind": "train", "config": {"epochs": 2, "grid": 32}})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["kind"] == "train" and job["progress"] == {}
    assert job["config"] == {"epochs": 2, "grid": 32} and job["error"] is None
    # The message is in the filesystem queue, carrying only the job id.
    messages = list((app_settings.queue_dir / "messages").iterdir())
    assert any(f"[{job['id']}]" in m.read_text() for m in messages)

    got = api.client.get(f"/api/jobs/{job['id']}", headers=api.headers).json()
    assert got["id"] == job["id"] and got["status"] == "queued"
    listed = api.client.get(f"/api/projects/{project_id}/jobs", headers=api.headers).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == job["id"]
    filtered = api.client.get(
        f"/api/projects/{project_id}/jobs", params={"status": "running"}, headers=api.headers
    ).json()
    assert filtered["total"] == 0


def test_bad_submissions_are_422_and_store_nothing(api: Api, app: FastAPI) -> None:
    project_id, _ = _hinted_project(api)
    cases = [
        ({"kind": "segment", "config": {}}, "kind"),
        ({"kind": "train", "config": {"epochs": 2, "learning_speed": 3}}, "learning_speed"),
        ({"kind": "train", "config": {"preset": "turbo"}}, "turbo"),
        ({"kind": "train", "config": {"network": "resnet"}}, "resnet"),
        ({"kind": "train", "config": {"grid": 4}}, "grid"),
        ({"kind": "train", "config": {"use_reference_masks": "yes"}}, "use_reference_masks"),
        ({"kind": "train", "config": {}, "model_version_id": 999999}, "999999"),
        ({"kind": "predict", "config": {"epochs": 3}}, "epochs"),
        ({"kind": "train", "config": {}, "priority": 1}, "priority"),
        ({"kind": "train", "config": {"epochs": 1.5}}, "epochs must be an integer"),
        ({"kind": "train", "config": {"epochs": 10**100}}, "epochs must be in"),
        ({"kind": "train", "config": {"seed": "abc"}}, "seed"),
        ({"kind": "train", "config": {"weights": {"size": "x"}}}, "weights.size"),
        ({"kind": "train", "config": {"weights_end": {"length": -1}}}, "weights_end.length"),
        ({"kind": "train", "config": {"upper_only": ["colour"]}}, "upper_only"),
        ({"kind": "train", "config": {"hard_length": 1}}, "hard_length"),
        ({"kind": "train", "config": {"betas": [1, 2, 3]}}, "betas"),
        ({"kind": "train", "config": {"network_kwargs": {"width": -4}}}, "network_kwargs.width"),
        ({"kind": "train", "config": {"budget": "forever"}}, "budget"),
        ({"kind": "train", "config": {"preset": "paper", "budget": "quick"}}, "budget"),
    ]
    for body, named in cases:
        r = _submit(api, project_id, body)
        assert r.status_code == 422, (body, r.text)
        assert named in r.json()["detail"]["message"], (body, r.text)
    assert _job_count(app, project_id) == 0


def test_the_plan_shows_what_a_config_resolves_to_and_queues_nothing(
    api: Api, app: FastAPI
) -> None:
    project_id, _ = _hinted_project(api)
    url = f"/api/projects/{project_id}/jobs/plan"
    plans = {}
    for budget in ("quick", "standard", "thorough"):
        r = api.client.post(url, json={"config": {"budget": budget}}, headers=api.headers)
        assert r.status_code == 200, r.text
        plans[budget] = r.json()
    default = api.client.post(url, json={}, headers=api.headers).json()
    assert default["config"] == plans["standard"]["config"]
    assert default["config"]["budget"] == "standard" and default["device"] == "cpu"
    assert default["num_slices"] == 1 and default["smallest_structure_px"] > 0
    # The budget is training time; fitting the drawings (models.fitting) comes on top.
    fit = default["num_slices"] * FIT_SECONDS_PER_SLICE
    assert default["config"]["fit_hints"] is True
    assert 0 < plans["quick"]["estimated_seconds"] - fit <= 120
    assert plans["quick"]["estimated_seconds"] <= default["estimated_seconds"] <= fit + 600
    # One slice, a step per epoch: every budget plans at most MIN_STEPS steps, and says so.
    epochs = [plans[b]["config"]["epochs"] for b in ("quick", "standard", "thorough")]
    assert epochs == sorted(epochs) and epochs[2] == epoch_ceiling(1)
    assert all(plans[b]["epoch_ceiling"] == epoch_ceiling(1) for b in plans)
    assert plans["thorough"]["estimated_seconds"] == default["estimated_seconds"] < fit + 1800
    # One field changes one field of the resolved default.
    fixed = api.client.post(url, json={"config": {"epochs": 9}}, headers=api.headers).json()
    assert fixed["config"]["epochs"] == 9 and fixed["config"]["budget"] is None
    assert fixed["epoch_ceiling"] is None  # a run of fixed length has no plan to cap
    assert fixed["config"]["grid"] == default["config"]["grid"]
    assert fixed["config"]["network_kwargs"] == default["config"]["network_kwargs"]
    bad = api.client.post(url, json={"config": {"epochs": 1.5}}, headers=api.headers)
    assert bad.status_code == 422 and "epochs must be an integer" in bad.text
    assert _job_count(app, project_id) == 0
    r = api.client.post(url, json={}, headers=api.new_user("viewer", project_id))
    assert r.status_code == 403


def test_the_plan_changes_intensities_of_one_channel_images_on_every_sample(
    api: Api,
) -> None:
    """Gamma and noise on every sample for grey images (MRI, CT) from the ``standard`` budget
    up, on half for colour ones and shorter budgets (``models.budget.default_for``): counted
    from the images that carry hints; a grey picture saved as RGB is grey."""
    project_id, _ = _hinted_project(api)
    url = f"/api/projects/{project_id}/jobs/plan"
    grey_rgb = io.BytesIO()
    grey_array = np.random.default_rng(2).integers(0, 256, (32, 32), dtype=np.uint8)
    PILImage.fromarray(np.repeat(grey_array[..., None], 3, axis=-1)).save(grey_rgb, "PNG")
    colour = png_bytes(32, 32, seed=1, mode="RGB")
    r = api.client.post(
        f"/api/projects/{project_id}/images",
        files=[
            ("files", ("grey-rgb.png", grey_rgb.getvalue(), "image/png")),
            ("files", ("colour.png", colour, "image/png")),
        ],
        headers=api.headers,
    )
    assert r.status_code == 201, r.text
    (grey_rgb_id, grey_channels), (colour_id, colour_channels) = [
        (im["id"], im["shape"][1]) for im in r.json()
    ]
    assert (grey_channels, colour_channels) == (1, 3)
    r = api.client.put(f"/api/images/{grey_rgb_id}/slices/0/hints", json=HINT, headers=api.headers)
    assert r.status_code == 200, r.text
    grey = api.client.post(url, json={}, headers=api.headers).json()["config"]
    assert grey["p_intensity"] == 1.0  # the colour image carries no hint yet
    assert grey["p_blur"] == 0.0  # no blur at any budget
    quick = {"config": {"budget": "quick"}}
    short = api.client.post(url, json=quick, headers=api.headers).json()["config"]
    assert short["p_intensity"] == 0.5
    r = api.client.put(f"/api/images/{colour_id}/slices/0/hints", json=HINT, headers=api.headers)
    assert r.status_code == 200, r.text
    mixed = api.client.post(url, json={}, headers=api.headers).json()["config"]
    assert mixed["p_intensity"] == 0.5 and mixed["p_blur"] == 0.0
    given = {"config": {"p_intensity": 0.25}}
    assert (
        api.client.post(url, json=given, headers=api.headers).json()["config"]["p_intensity"]
        == 0.25
    )


def test_the_plan_is_timed_by_the_last_trainings_on_this_server(api: Api, app: FastAPI) -> None:
    """Once trainings have recorded their pace (seconds over steps, and the device type), the
    plan's estimate is their median pace over the epochs the worker's re-plan will fit; with
    ``SHAPEHINT_DEVICE=auto`` it plans for the device type the newest training ran on."""
    project_id, _ = _hinted_project(api)
    url = f"/api/projects/{project_id}/jobs/plan"
    before = api.client.post(url, json={}, headers=api.headers).json()
    assert before["timed_runs"] == 0 and before["device"] == "cpu"
    assert before["estimated_epochs"] == before["config"]["epochs"]  # the cost model's plan
    cfg = before["config"]
    step_px = cfg["batch_size"] * cfg["grid"] ** 2 * (cfg["network_kwargs"]["width"] / 16) ** 2
    runs = [  # oldest first: three timed CPU runs, one from before metrics held the device
        {"seconds": 400 * pace * step_px, "steps": 400, "device": "cpu"}
        for pace in (3e-5, 1e-5, 2e-5)
    ] + [{"seconds": 1.0, "steps": 1}]
    added: list[int] = []
    try:
        with session_scope(app.state.engine) as session:
            for metrics in runs:
                number = len(added) + 1
                mv = ModelVersion(project_id=project_id, version=number, checkpoint_key="none")
                mv.config, mv.metrics = cfg, metrics
                session.add(mv)
                session.flush()
                added.append(mv.id)
        timed = api.client.post(url, json={}, headers=api.headers).json()
        step = 2e-5 * step_px  # the median pace
        epochs = plan_epochs(BUDGET_SECONDS["cpu"]["standard"], step, 1)  # one slice
        assert timed["timed_runs"] == 3 and timed["device"] == "cpu"
        assert timed["config"] == cfg  # the plan itself is the cost model's (the worker re-plans)
        assert timed["estimated_epochs"] == epochs
        fit = FIT_SECONDS_PER_SLICE
        assert abs(timed["estimated_seconds"] - (epochs * step + fit)) < 0.1
        fixed = api.client.post(url, json={"config": {"epochs": 7}}, headers=api.headers).json()
        assert fixed["estimated_epochs"] == 7
        assert abs(fixed["estimated_seconds"] - (7 * step + fit)) < 0.1
        # The newest training ran on a GPU: plans are for the GPU, timed by that run alone.
        with session_scope(app.state.engine) as session:
            gpu = {"seconds": 10.0, "steps": 1000, "device": "cuda"}
            mv = ModelVersion(
                project_id=project_id, version=9, checkpoint_key="none", config=cfg, metrics=gpu
            )
            session.add(mv)
            session.flush()
            added.append(mv.id)
        on_gpu = api.client.post(url, json={}, headers=api.headers).json()
        assert on_gpu["device"] == "cuda" and on_gpu["timed_runs"] == 1
        assert on_gpu["config"]["network_kwargs"]["width"] > cfg["network_kwargs"]["width"]
    finally:
        with session_scope(app.state.engine) as session:
            session.execute(delete(ModelVersion).where(ModelVersion.id.in_(added)))


def test_nothing_to_train_on_and_no_model_to_predict_with(api: Api, app: FastAPI) -> None:
    project = api.create_project(classes=("LV",))
    api.upload_png(project["id"])
    r = _submit(api, project["id"], {"kind": "train"})
    assert r.status_code == 422 and r.json()["detail"]["code"] == "no_hints"
    r = _submit(api, project["id"], {"kind": "predict"})
    assert r.status_code == 409 and "train the project first" in r.json()["detail"]["message"]
    assert _job_count(app, project["id"]) == 0


def test_hint_prior_conflict_is_reported_at_submission(api: Api, app: FastAPI) -> None:
    project_id, image_id = _hinted_project(api)
    r = api.client.put(
        f"/api/projects/{project_id}/priors",
        json={"LV": {"presence": "always", "unit": "px", "size": [500, 900]}},
        headers=api.headers,
    )
    assert r.status_code == 200, r.text
    r = _submit(api, project_id, {"kind": "train"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["code"] == "hint_conflict"
    assert "LV" in detail["message"] and "size" in detail["message"]
    assert detail["problems"][0]["image_id"] == image_id and detail["problems"][0]["z"] == 0
    assert _job_count(app, project_id) == 0


def test_cancel_a_queued_job_and_its_event_stream_ends(api: Api) -> None:
    project_id, _ = _hinted_project(api)
    job = _submit(api, project_id, {"kind": "train"}).json()
    r = api.client.post(f"/api/jobs/{job['id']}/cancel", headers=api.headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["finished_at"] is not None
    r = api.client.post(f"/api/jobs/{job['id']}/cancel", headers=api.headers)
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]["message"]
    with api.client.stream("GET", f"/api/jobs/{job['id']}/events", headers=api.headers) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        body = "".join(s.iter_text())
    assert body.count("event: end") == 1 and '"cancelled"' in body


def test_event_stream_follows_progress_until_the_end(api: Api, app: FastAPI) -> None:
    """A job that is running (row updated here, as a worker would) streams progress events."""
    project_id, _ = _hinted_project(api)
    job = _submit(api, project_id, {"kind": "train"}).json()
    engine = app.state.engine
    with session_scope(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(
                status="running",
                heartbeat_at=utcnow() + timedelta(hours=1),
                progress={"phase": "training", "epoch": 1, "step": 5, "loss": 0.25},
            )
        )

    def finish_soon() -> None:
        time.sleep(1.2)
        with session_scope(engine) as session:
            session.execute(
                update(Job).where(Job.id == job["id"]).values(status="succeeded", result={})
            )

    threading.Thread(target=finish_soon, daemon=True).start()
    with api.client.stream("GET", f"/api/jobs/{job['id']}/events", headers=api.headers) as s:
        body = "".join(s.iter_text())
    events = parse_events(body)
    assert events[0][0] == "progress" and events[0][1]["progress"]["loss"] == 0.25
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded"
    assert [name for name, _ in events].count("end") == 1


def test_roles_and_visibility(api: Api) -> None:
    project_id, _ = _hinted_project(api)
    job = _submit(api, project_id, {"kind": "train"}).json()
    viewer = api.new_user("viewer", project_id)
    stranger = api.new_user()
    assert api.client.get(f"/api/jobs/{job['id']}", headers=viewer).status_code == 200
    r = _submit(api, project_id, {"kind": "train"}, headers=viewer)
    assert r.status_code == 403 and "annotator" in r.json()["detail"]["message"]
    assert api.client.post(f"/api/jobs/{job['id']}/cancel", headers=viewer).status_code == 403
    for path in (f"/api/jobs/{job['id']}", f"/api/projects/{project_id}/jobs"):
        assert api.client.get(path, headers=stranger).status_code == 404
    assert api.client.get(f"/api/jobs/{job['id']}").status_code == 401
    assert api.client.get("/api/jobs/999999", headers=api.headers).status_code == 404


def test_model_versions_empty_and_unknown(api: Api) -> None:
    project = api.create_project()
    r = api.client.get(f"/api/projects/{project['id']}/models", headers=api.headers)
    assert r.status_code == 200 and r.json()["total"] == 0
    assert api.client.get("/api/models/999999", headers=api.headers).status_code == 404
