"""worker.runner in this process (no broker): warm start, predict with any version, reference
masks (metrics and mixed supervision), and a config the trainer rejects. Real tiny trainings."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from models.budget import MIN_TIMED_STEPS
from store.db import get_engine, session_scope
from store.jobs_tables import Job
from tests.worker.helpers import TINY_CONFIG, Stack, make_stack, synthetic_project
from worker.runner import run_job

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with make_stack(tmp_path_factory.mktemp("runner") / "data") as s:
        yield s


def _run(stack: Stack, job: dict) -> dict:
    assert run_job(job["id"], worker="in-process@test", settings=stack.settings) in {
        "succeeded",
        "failed",
        "cancelled",
    }
    return stack.job(job["id"])


def _put_reference(stack: Stack, image_id: int, mask: np.ndarray) -> None:
    buf = io.BytesIO()
    PILImage.fromarray(mask, "L").save(buf, format="PNG")
    r = stack.client.put(
        f"/api/images/{image_id}/reference",
        files={"file": ("ref.png", buf.getvalue(), "image/png")},
        headers=stack.api.headers,
    )
    assert r.status_code == 200, r.text


def test_warm_start_and_predict_with_a_chosen_version(stack: Stack) -> None:
    project, ids, _ = synthetic_project(stack.api, images=3, size=32, seed=5)
    first = _run(stack, stack.submit(project["id"]))
    assert first["status"] == "succeeded", first
    v1 = first["result"]["model_version_id"]
    assert first["progress"]["phase"] == "predicting"

    second = _run(stack, stack.submit(project["id"], model_version_id=v1))
    assert second["status"] == "succeeded", second
    v2 = second["result"]["model_version_id"]
    model = stack.client.get(f"/api/models/{v2}", headers=stack.api.headers).json()
    assert model["parent_id"] == v1 and model["version"] == 2

    predict = stack.submit(project["id"], kind="predict", config={}, model_version_id=v1)
    done = _run(stack, predict)
    assert done["status"] == "succeeded", done
    assert done["result"] == done["result"] | {"model_version_id": v1, "predictions": len(ids)}
    listed = stack.client.get(f"/api/images/{ids[0]}/predictions", headers=stack.api.headers).json()
    assert [p["model_version_id"] for p in listed] == [v2, v1]
    assert listed[1]["job_id"] == predict["id"]  # re-predicting replaced v1's mask


def test_a_warm_start_keeps_its_models_network_whatever_the_plan(stack: Stack) -> None:
    """A model trained under a preset (width 8, depth 2) retrained under the automatic plan
    (which would pick width 16): the retraining keeps the model's network instead of failing
    on mismatched weights; a config asking for another network is refused before queueing."""
    project, _, _ = synthetic_project(stack.api, images=2, size=32, seed=13)
    first = _run(stack, stack.submit(project["id"]))
    assert first["status"] == "succeeded", first
    v1 = first["result"]["model_version_id"]
    kept = TINY_CONFIG["network_kwargs"]
    planned = {"budget": "quick", "epochs": 1, "grid": 32, "fit_hints": False}

    url, headers = f"/api/projects/{project['id']}/jobs", stack.api.headers
    longer = planned | {"epochs": 2000}  # an estimate long enough to compare
    fresh = stack.client.post(f"{url}/plan", json={"config": longer}, headers=headers).json()
    assert fresh["config"]["network_kwargs"] != kept  # the plan's own network differs
    # The training recorded its pace and device; a run this short (a few steps, mostly its
    # warm-up) does not time later plans (models.budget.MIN_TIMED_STEPS).
    first_model = stack.client.get(f"/api/models/{v1}", headers=headers).json()
    assert first_model["metrics"]["device"] == "cpu"
    assert 0 < first_model["metrics"]["steps"] < MIN_TIMED_STEPS
    assert fresh["timed_runs"] == 0 and fresh["device"] == "cpu"
    plan = stack.client.post(
        f"{url}/plan", json={"config": longer, "model_version_id": v1}, headers=headers
    )
    assert plan.status_code == 200, plan.text
    assert plan.json()["config"]["network_kwargs"] == kept
    assert 0 < plan.json()["estimated_seconds"] < fresh["estimated_seconds"]  # a smaller network

    second = _run(stack, stack.submit(project["id"], config=planned, model_version_id=v1))
    assert second["status"] == "succeeded", second
    model = stack.client.get(
        f"/api/models/{second['result']['model_version_id']}", headers=headers
    ).json()
    assert model["parent_id"] == v1 and model["config"]["network_kwargs"] == kept

    other = {"network_kwargs": {"width": 16, "depth": 2}}
    for path, body in (
        (url, {"kind": "train", "config": planned | other, "model_version_id": v1}),
        (f"{url}/plan", {"config": planned | other, "model_version_id": v1}),
    ):
        r = stack.client.post(path, json=body, headers=headers)
        assert r.status_code == 422, r.text
        assert "a warm start keeps its model's network (unet, width 8, depth 2)" in r.text
        assert "width 16" in r.text
    jobs = stack.client.get(url, headers=headers).json()
    assert jobs["total"] == 2  # nothing queued by the refused submission


def test_reference_masks_give_metrics_and_mixed_supervision(stack: Stack) -> None:
    project, ids, masks = synthetic_project(stack.api, images=3, size=32, seed=7)
    _put_reference(stack, ids[0], masks[0])
    job = stack.submit(project["id"], config=TINY_CONFIG | {"use_reference_masks": True})
    done = _run(stack, job)
    assert done["status"] == "succeeded", done
    ref = done["result"]["reference_metrics"]
    assert ref["images"] == 1 and 0.0 <= ref["dice"]["LV"] <= 1.0
    version = stack.client.get(
        f"/api/models/{done['result']['model_version_id']}", headers=stack.api.headers
    ).json()
    assert version["config"]["ce_weight"] > 0  # the masks were used as supervision
    assert version["config"]["job_options"] == {"use_reference_masks": True}
    pred = stack.client.get(f"/api/images/{ids[0]}/predictions", headers=stack.api.headers)
    assert pred.json()[0]["metrics"]["dice"]["LV"] == pytest.approx(ref["dice"]["LV"])


def test_a_config_the_trainer_rejects_fails_the_job_with_its_message(stack: Stack) -> None:
    project, _, _ = synthetic_project(stack.api, images=1, size=32, seed=9)
    refused = stack.client.post(
        f"/api/projects/{project['id']}/jobs",
        json={"kind": "train", "config": TINY_CONFIG | {"grid": 8}},
        headers=stack.api.headers,
    )
    assert refused.status_code == 422 and "grid must be in 16..1024" in refused.text
    # A row written by an older API (or by hand) still fails cleanly in the worker.
    job = stack.submit(project["id"], config=TINY_CONFIG)
    with session_scope(get_engine(stack.settings.resolved_database_url)) as session:
        session.get(Job, job["id"]).config = TINY_CONFIG | {"grid": 8}
    done = _run(stack, job)
    assert done["status"] == "failed"
    assert "grid must be in 16..1024" in done["error"]
    assert done["finished_at"] is not None


def test_a_job_that_is_not_queued_is_skipped(stack: Stack, tmp_path: Path) -> None:
    project, _, _ = synthetic_project(stack.api, images=1, size=32, seed=11)
    job = stack.submit(project["id"])
    stack.client.post(f"/api/jobs/{job['id']}/cancel", headers=stack.api.headers)
    assert run_job(job["id"], worker="late@test", settings=stack.settings) == "skipped"
    assert stack.job(job["id"])["status"] == "cancelled"


def test_a_prediction_that_cannot_be_stored_leaves_no_blob(stack: Stack) -> None:
    from sqlalchemy.exc import IntegrityError

    from worker.context import JobContext
    from worker.predict_pipeline import store_prediction

    engine = get_engine(stack.settings.resolved_database_url)
    ctx = JobContext(engine, 2**31 - 1, stack.settings)
    before = sorted(p for p in ctx.blobs.root.rglob("*") if p.is_file())
    labels = np.zeros((1, 4, 4), dtype=np.uint8)
    with pytest.raises(IntegrityError):  # no such image, version or job: foreign keys fail
        store_prediction(ctx, 2**31 - 1, 2**31 - 1, labels, None)
    assert sorted(p for p in ctx.blobs.root.rglob("*") if p.is_file()) == before


def test_shutdown_after_the_model_is_stored_finishes_the_job(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm shutdown that arrives once the version exists (while predicting) must not requeue
    the job: the next worker would train a second version of the same job."""
    import worker.train_pipeline as train_pipeline
    from worker.shutdown import SHUTTING_DOWN

    project, ids, _ = synthetic_project(stack.api, images=2, size=32)
    job = stack.submit(project["id"], config=TINY_CONFIG)
    real_predict = train_pipeline.predict_images

    def predict_during_shutdown(*args: object, **kwargs: object) -> dict:
        SHUTTING_DOWN.set()  # the worker got SIGTERM right after storing the version
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(train_pipeline, "predict_images", predict_during_shutdown)
    try:
        assert run_job(job["id"], worker="in-process@test", settings=stack.settings) == (
            "succeeded"
        )
    finally:
        SHUTTING_DOWN.clear()
    done = stack.job(job["id"])
    assert done["result"]["predictions"] == len(ids)
    versions = stack.client.get(
        f"/api/projects/{project['id']}/models", headers=stack.api.headers
    ).json()
    assert versions["total"] == 1


def test_a_train_job_reports_per_class_quality_and_warns_when_a_class_is_missed(
    stack: Stack,
) -> None:
    project, ids, _ = synthetic_project(stack.api, images=3, size=32, seed=21)
    # one more image that nobody hints: LV was hinted present in every hinted image
    extra = np.zeros((32, 32), np.uint8)
    extra[10:22, 10:22] = 200
    buf = io.BytesIO()
    PILImage.fromarray(extra, "L").save(buf, format="PNG")
    r = stack.client.post(
        f"/api/projects/{project['id']}/images",
        files=[("files", ("unhinted.png", buf.getvalue(), "image/png"))],
        headers=stack.api.headers,
    )
    assert r.status_code == 201, r.text
    unhinted = int(r.json()[0]["id"])
    trained = TINY_CONFIG | {"epochs": 80, "val_every": 80, "lr": 5e-3}
    done = _run(stack, stack.submit(project["id"], config=trained))
    assert done["status"] == "succeeded", done
    quality, warnings = done["result"]["quality"], done["result"]["warnings"]
    lv = quality["classes"]["LV"]
    assert lv["hinted_slices"] == lv["present_slices"] == 3
    assert 0 <= lv["meeting_bounds"] <= 3 and lv["empty_where_present"] == 0, quality
    assert set(quality["images"]) == {str(i) for i in ids}  # the unhinted image has no tally
    assert quality["images"][str(ids[0])]["LV"]["dice"] is None  # no reference mask
    r = stack.client.get(
        f"/api/images/{unhinted}/prediction", params={"format": "png"}, headers=stack.api.headers
    )
    assert r.status_code == 200, r.text
    lv_found = bool(np.asarray(PILImage.open(io.BytesIO(r.content))).any())
    missing = {} if lv_found else {"LV": [unhinted]}
    assert done["result"]["missing_without_hints"] == missing
    assert len(warnings) == (lv["fraction_meeting_bounds"] < 0.5) + len(missing)

    # A model that learned nothing (one step at a vanishing learning rate from the class
    # prior's bias) predicts background everywhere: the job says so instead of just succeeding,
    # on the hinted slices and on the image nobody hinted.
    untrained = TINY_CONFIG | {"epochs": 1, "lr": 1e-8, "seed": 3}
    done = _run(stack, stack.submit(project["id"], config=untrained))
    assert done["status"] == "succeeded", done
    assert done["result"]["quality"]["classes"]["LV"]["empty_where_present"] == 3
    missed = (
        f"LV: predicted nowhere in 1 of 1 images without hints (image ids {unhinted}), though "
        "hinted present in every hinted image: review them, or hint a slice of each and train "
        "again"
    )
    assert done["result"]["warnings"] == [
        "LV: predicted empty on 3 of 3 hinted slices where it was hinted present",
        missed,
    ]
    assert done["result"]["missing_without_hints"] == {"LV": [unhinted]}
    # A predict job with that version warns the same about the image without hints.
    predict = stack.submit(project["id"], kind="predict", config={})
    done = _run(stack, predict)
    assert done["status"] == "succeeded", done
    assert done["result"]["warnings"] == [missed]
    assert done["result"]["missing_without_hints"] == {"LV": [unhinted]}


def _voted_labels(stack: Stack, project_id: int, image_id: int, config: dict) -> np.ndarray:
    """Train with ``config`` (one hinted slice voted on), then the stored labels of the
    image's first slice ``(H, W)``."""
    done = _run(stack, stack.submit(project_id, config=config))
    assert done["status"] == "succeeded", done
    assert done["result"]["hint_refined_slices"] == 1
    r = stack.client.get(
        f"/api/images/{image_id}/prediction", params={"format": "png"}, headers=stack.api.headers
    )
    assert r.status_code == 200, r.text
    return np.asarray(PILImage.open(io.BytesIO(r.content)))


def test_hinted_slices_are_predicted_with_the_hints_vote(stack: Stack) -> None:
    from models.regions import drawn_mask

    project, ids, masks = synthetic_project(stack.api, images=3, size=32, seed=8)
    ys, xs = np.nonzero(masks[0] == 1)
    ellipse = {"cx": float(xs.mean()), "cy": float(ys.mean()), "a": 6.0, "b": 5.0, "angle": 0.0}
    r = stack.client.put(
        f"/api/images/{ids[0]}/slices/0/hints",
        json={"LV": {"ellipse": ellipse}},
        headers=stack.api.headers,
    )
    assert r.status_code == 200, r.text
    # The hints alone (weight 1), not fitted to the image: the drawn ellipse is the stored mask
    # of that slice; the other images' interval hints draw nothing and keep the model's labels.
    drawn_only = TINY_CONFIG | {"hint_weight": 1.0, "fit_hints": False}
    labels = _voted_labels(stack, project["id"], ids[0], drawn_only)
    assert np.array_equal(labels > 0, drawn_mask({"ellipse": ellipse}, (32, 32)))
    # The model alone (weight 0): no slice is voted on.
    done = _run(stack, stack.submit(project["id"], config=TINY_CONFIG | {"hint_weight": 0.0}))
    assert done["result"]["hint_refined_slices"] == 0


def test_fitted_hints_train_and_vote_with_the_shape_cut_along_the_image(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.fitting
    from models.fitting import fitted_shapes
    from models.metrics import dice
    from models.regions import drawn_mask
    from models.synthetic import make_dataset

    # The synthetic image's edges are a single pixel step, which GrabCut cuts exactly: the grow
    # that meets real masks drawn along the outside of an edge's ramp would overshoot here.
    monkeypatch.setattr(models.fitting, "FIT_GROW", 0.0)
    project, ids, masks = synthetic_project(stack.api, images=3, size=48, seed=8)
    image = make_dataset(3, size=48, num_classes=1, seed=8)[0][0]
    ys, xs = np.nonzero(masks[0] == 1)
    r = float(np.sqrt(len(xs) / np.pi))  # a rough circle, off by a pixel
    hint = {
        "ellipse": {"cx": xs.mean() + 1, "cy": ys.mean() - 1, "a": 1.1 * r, "b": 0.95 * r},
        "tolerance": 0.3,
    }
    r_put = stack.client.put(
        f"/api/images/{ids[0]}/slices/0/hints", json={"LV": hint}, headers=stack.api.headers
    )
    assert r_put.status_code == 200, r_put.text
    fitted = fitted_shapes(image, [[], [hint]])
    drawn = drawn_mask(hint, (48, 48))
    assert 1 in fitted and drawn is not None

    config = TINY_CONFIG | {"hint_weight": 1.0, "fit_hints": True}
    stored = _voted_labels(stack, project["id"], ids[0], config) > 0
    # The stored mask is the shape fitted to the uploaded image (8-bit PNG: the same cut up to
    # a few boundary pixels), closer to the truth than the drawing.
    score = float(dice(stored.astype(np.uint8), masks[0], 2)[1])
    assert score > float(dice(drawn.astype(np.uint8), masks[0], 2)[1]) + 0.05
    assert (stored != fitted[1]).sum() <= 4
