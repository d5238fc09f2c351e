"""End to end in Chromium: sign in, create a project, upload, draw hints with the mouse, priors,
train, watch progress, review the overlay, accept, download NIfTI; plus two bad-input cases.

Everything goes through the real UI (webui/) against a real server with an embedded worker;
the API is used only to check what the UI stored and to give the other images their hints.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

from models.synthetic import make_hints
from tests.browser.helpers import drag, my_hint, screenshot, sign_in, wait_js, wait_saved

pytestmark = pytest.mark.browser

N_IMAGES = 6
SIZE = 64
# "Lesion" never appears in the synthetic images: it is marked absent and gets a "never" prior.
CLASSES = [("LV", "#e6194b"), ("Myo", "#3cb44b"), ("Lesion", "#4363d8")]
# A few optimiser steps give a (poor) model quickly: the test is about the browser; the models
# tests judge quality. progress_every=1 gives the loss curve a point per step.
TRAIN_EPOCHS = 8
TRAIN_ADVANCED = '{"steps_per_epoch": 3, "progress_every": 1}'
TRAIN_TIMEOUT_MS = 150_000


def make_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A bright disk (LV) in a grey ring (Myo) on a dark noisy background: image ``(1, S, S)``
    float32 in [0, 1] and labels ``(S, S)`` uint8. Large structures, so that a few training
    steps already predict foreground (models.synthetic's are small, which needs more steps)."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    r_lv = SIZE * rng.uniform(0.16, 0.2)
    r_myo = r_lv + SIZE * rng.uniform(0.08, 0.1)
    cx, cy = rng.uniform(r_myo + 2, SIZE - r_myo - 2, size=2)
    d = np.hypot(xs - cx, (ys - cy) * rng.uniform(0.85, 1.15))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[d <= r_myo] = 2
    mask[d <= r_lv] = 1
    image = np.choose(mask, [0.15, 0.9, 0.5]) + rng.normal(0, 0.05, mask.shape)
    return np.clip(image, 0, 1).astype(np.float32)[None], mask


def _png_file(image: np.ndarray, path: Path) -> Path:
    grey = np.clip(np.round(image[0] * 255.0), 0, 255).astype(np.uint8)
    PILImage.fromarray(grey, "L").save(path)
    return path


def test_annotate_train_review_download(page, server, admin, user, artifacts, tmp_path):  # type: ignore[no-untyped-def]
    url, _ = server
    rng = np.random.default_rng(3)
    data = [make_case(rng) for _ in range(N_IMAGES)]
    files = [_png_file(img, tmp_path / f"case_{i:02d}.png") for i, (img, _) in enumerate(data)]

    # ---- sign in, create a project with coloured classes
    sign_in(page, url, user)
    page.fill("input[name=project-name]", "Browser test heart")
    rows = page.locator(".class-row")
    for i, (name, color) in enumerate(CLASSES):
        if i:
            page.click("text=+ Add class")
        rows.nth(i).locator(".class-name").fill(name)
        rows.nth(i).locator(".class-color").fill(color)
    page.click("[data-testid=create-project] button[type=submit]")
    page.wait_for_selector("[data-testid=dropzone]")
    project_id = int(re.search(r"#/projects/(\d+)", page.url).group(1))
    project = admin.get(f"/api/projects/{project_id}").json()
    assert [(c["name"], c["color"]) for c in project["classes"]] == CLASSES

    # ---- upload (progress bar, then the list fills with thumbnails)
    page.set_input_files("[data-testid=upload-input]", [str(f) for f in files])
    page.wait_for_selector("[data-testid=upload-status].ok")
    assert f"Added {N_IMAGES} images" in page.inner_text("[data-testid=upload-status]")
    wait_js(page, f"document.querySelectorAll('[data-testid=image-card]').length === {N_IMAGES}")
    images = admin.get(f"/api/projects/{project_id}/images", params={"limit": 50}).json()["items"]
    by_name = {im["name"]: im["id"] for im in images}
    ids = [by_name[f.name] for f in files]
    wait_js(
        page,
        "Array.from(document.querySelectorAll('.thumb')).filter(t => t.naturalWidth > 0).length"
        f" === {N_IMAGES}",
    )
    screenshot(page, "images", artifacts)

    # Hints for the other images through the API (as another annotator would give them), and
    # reference masks: the job reports Dice on them, and mixed supervision (ticked in the form)
    # makes a few training steps enough for a visible prediction.
    for image_id, (_, mask) in zip(ids[1:], data[1:], strict=True):
        hints = make_hints(mask, 2, seed=image_id, rel=(0.1, 0.15), class_names=("LV", "Myo"))
        r = admin.put(f"/api/images/{image_id}/slices/0/hints", json=hints)
        assert r.status_code == 200, r.text
        buf = io.BytesIO()
        PILImage.fromarray(mask.astype(np.uint8), "L").save(buf, format="PNG")
        r = admin.put(
            f"/api/images/{image_id}/reference", files={"file": ("ref.png", buf.getvalue())}
        )
        assert r.status_code in (200, 201), r.text

    # ---- hints on image 0 with real mouse events
    image0, mask0 = ids[0], data[0][1]
    page.goto(f"{url}/#/images/{image0}/hints")
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='0']")
    ys, xs = np.nonzero(mask0 == 1)
    cx, cy = float(xs.mean()), float(ys.mean())
    r = math.sqrt(len(xs) / math.pi)
    start, end = (
        (round(cx - r, 1), round(cy - r * 0.8, 1)),
        (round(cx + r, 1), round(cy + r * 0.8, 1)),
    )
    page.click("[data-testid=class-LV]")
    drag(page, start, end)
    wait_saved(page)
    stored = my_hint(admin, image0, 0, "LV", user.username)
    assert stored is not None and stored["present"] is True
    el = stored["ellipse"]
    expected = {
        "cx": (start[0] + end[0]) / 2,
        "cy": (start[1] + end[1]) / 2,
        "a": abs(end[0] - start[0]) / 2,
        "b": abs(end[1] - start[1]) / 2,
        "angle": 0.0,
    }
    for key, value in expected.items():
        assert el[key] == pytest.approx(value, abs=0.1), (key, el, expected)
    # The panel shows the API's derived area (px^2), not a number of its own.
    derived = admin.get(f"/api/images/{image0}/slices/0/hints").json()["derived"]["LV"]
    lo, hi = derived["components"]["size"]["px"]
    wait_js(
        page,
        "t => document.querySelector('[data-testid=derived-size]').textContent.startsWith(t)",
        arg=f"[{lo:.1f}, {hi:.1f}]",
    )

    # Move the ellipse by its inside, then widen it with the b handle.
    drag(page, (expected["cx"], expected["cy"]), (expected["cx"] + 3, expected["cy"] - 2))
    wait_saved(page)
    el = my_hint(admin, image0, 0, "LV", user.username)["ellipse"]
    assert (el["cx"], el["cy"]) == (
        pytest.approx(expected["cx"] + 3, abs=0.1),
        pytest.approx(expected["cy"] - 2, abs=0.1),
    )
    assert el["a"] == pytest.approx(expected["a"], abs=0.1)
    drag(page, (el["cx"], el["cy"] + el["b"]), (el["cx"], el["cy"] + el["b"] + 2))
    wait_saved(page)
    el2 = my_hint(admin, image0, 0, "LV", user.username)["ellipse"]
    assert el2["b"] == pytest.approx(el["b"] + 2, abs=0.1) and el2["a"] == pytest.approx(
        el["a"], abs=0.1
    )
    # Undo the resize with the keyboard: the stored ellipse goes back.
    page.keyboard.press("Control+z")
    wait_saved(page)
    assert my_hint(admin, image0, 0, "LV", user.username)["ellipse"]["b"] == pytest.approx(
        el["b"], abs=0.01
    )

    # Mark Lesion absent on this slice.
    page.click("[data-testid=class-Lesion]")
    page.click("[data-testid=absent-toggle]")
    wait_saved(page)
    assert my_hint(admin, image0, 0, "Lesion", user.username) == {"present": False}
    page.click("[data-testid=class-LV]")
    page.wait_for_selector("[data-testid=hint-state]:has-text('ellipse')")
    screenshot(page, "hints", artifacts)
    page.keyboard.press("?")
    page.wait_for_selector("[data-testid=help-overlay]")
    assert "Undo" in page.inner_text("[data-testid=help-overlay]")
    screenshot(page, "shortcuts", artifacts)
    page.keyboard.press("Escape")

    # ---- priors
    page.goto(f"{url}/#/projects/{project_id}/priors")
    page.select_option("[data-testid=prior-presence-Lesion]", "never")
    page.fill("[data-testid=prior-LV-size-lo]", "20")
    page.fill("[data-testid=prior-LV-size-hi]", "3000")
    page.click("[data-testid=save-priors]")
    page.wait_for_selector("[data-testid=priors-saved]:has-text('saved')")
    priors = admin.get(f"/api/projects/{project_id}/priors").json()["priors"]
    assert priors["Lesion"]["presence"] == "never"
    assert priors["LV"]["size"] == [20, 3000] and priors["LV"]["unit"] == "mm"
    screenshot(page, "priors", artifacts)

    # ---- train and watch the event stream to the end
    page.goto(f"{url}/#/projects/{project_id}/training")
    page.select_option("[data-testid=train-form] select[name=preset]", "cpu-fast")
    page.fill("[data-testid=train-form] input[name=epochs]", str(TRAIN_EPOCHS))
    page.fill("[data-testid=train-form] input[name=lr]", "0.02")
    page.check("[data-testid=train-form] input[name=use_reference_masks]")
    page.click("[data-testid=train-form] summary")
    page.fill("[data-testid=train-form] textarea[name=advanced]", TRAIN_ADVANCED)
    page.click("[data-testid=start-training]")
    page.wait_for_selector("[data-testid=job-status]:has-text('epoch')", timeout=60_000)
    page.wait_for_selector(
        "[data-testid=job-status]:is(.succeeded, .failed, .cancelled)", timeout=TRAIN_TIMEOUT_MS
    )
    status_text = page.inner_text("[data-testid=job-status]")
    assert "succeeded" in status_text, (status_text, page.inner_text("[data-testid=job-detail]"))
    assert page.eval_on_selector("[data-testid=job-progress]", "el => el.value") == 1
    page.wait_for_selector("[data-testid=model-versions] td:has-text('v1')")
    screenshot(page, "training", artifacts)

    # ---- review: the overlay canvas shows the API's prediction in the class colours
    page.goto(f"{url}/#/images/{image0}/review")
    page.wait_for_selector("[data-testid=overlay-canvas][data-painted='1']", timeout=20_000)
    pred = np.array(
        PILImage.open(
            io.BytesIO(
                admin.get(f"/api/images/{image0}/prediction", params={"format": "png"}).content
            )
        )
    )
    assert pred.shape == (SIZE, SIZE) and pred.max() >= 1, "the model predicted nothing"
    painted = page.evaluate(
        """() => { const c = document.querySelector('[data-testid=overlay-canvas]');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0;
                   for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                   return n; }"""
    )
    assert painted > 0
    colors = {
        i + 1: tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for i, (_, c) in enumerate(CLASSES)
    }
    # Fill mode draws label pixels nearest-neighbour, so every pixel's centre on the overlay
    # canvas has exactly its class colour (alpha = opacity): check a few pixels per label,
    # and background pixels stay transparent.
    probe = """([x, y]) => { const v = window.shapehintViewer; const c = v.maskCanvas;
                 const r = c.getBoundingClientRect(); const p = v.toClient(x, y);
                 const s = c.width / r.width;
                 const x0 = Math.floor((p.x - r.left) * s), y0 = Math.floor((p.y - r.top) * s);
                 return Array.from(c.getContext('2d').getImageData(x0, y0, 1, 1).data); }"""
    rng = np.random.default_rng(0)
    for label in range(len(CLASSES) + 1):
        ys_, xs_ = np.nonzero(pred == label)
        for j in rng.choice(len(xs_), size=min(4, len(xs_)), replace=False):
            px = page.evaluate(probe, [int(xs_[j]), int(ys_[j])])
            if label == 0:
                assert px[3] == 0, (int(xs_[j]), int(ys_[j]), px)
            else:
                assert px[3] > 0, (label, px)
                assert tuple(px[:3]) == pytest.approx(colors[label], abs=3), (label, px)
    screenshot(page, "review", artifacts)

    # ---- accept, then download the NIfTI mask and open it with nibabel
    page.click("[data-testid=review-accepted]")
    page.wait_for_selector("[data-testid=review-status]:has-text('accepted')")
    assert admin.get(f"/api/images/{image0}/review").json()["status"] == "accepted"
    with page.expect_download() as info:
        page.click("[data-testid=download-nifti]")
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    assert target.name.endswith((".nii.gz", ".nii"))
    vol = np.asarray(nib.load(str(target)).dataobj)
    labels = np.squeeze(vol)
    # NIfTI axes are (col, row[, slice]); the PNG is (row, col).
    assert labels.shape == (SIZE, SIZE)
    assert np.array_equal(labels.T, pred)

    # ---- next unreviewed image: any other image (all others are unreviewed)
    page.click("[data-testid=next-unreviewed]")
    wait_js(
        page,
        f"!location.hash.startsWith('#/images/{image0}/') && location.hash.endsWith('/review')",
    )
    assert int(re.search(r"#/images/(\d+)/review", page.url).group(1)) in ids[1:]

    # ---- retrain from the current model (warm start preselected), cancelled while it runs
    page.click("[data-testid=retrain]")
    page.wait_for_selector("[data-testid=train-form]")
    version = admin.get(f"/api/projects/{project_id}/models").json()["items"][0]
    wait_js(
        page,
        "v => document.querySelector('[data-testid=train-form] select[name=warm]').value === v",
        arg=str(version["id"]),
    )
    # The automatic plan would pick a wider network; the warm start keeps v1's (the plan says so).
    wait_js(
        page,
        "w => { const t = document.querySelector('[data-testid=plan-config]').textContent;"
        " return t && JSON.parse(t).network_kwargs.width === w; }",
        arg=version["config"]["network_kwargs"]["width"],
    )
    page.fill("[data-testid=train-form] input[name=epochs]", "5000")  # cancelled long before
    page.click("[data-testid=start-training]")
    # Cancelled once its worker runs it: the worker stops it, not the queue.
    page.wait_for_selector("[data-testid=job-status].running", timeout=60_000)
    page.click("[data-testid=cancel-job]")
    page.click("[data-testid=confirm-ok]")
    page.wait_for_selector("[data-testid=job-status].cancelled", timeout=60_000)
    job = admin.get(f"/api/projects/{project_id}/jobs").json()["items"][0]
    assert job["status"] == "cancelled" and job["model_version_id"] == version["id"]

    # ---- the whole project as one zip of NIfTI masks
    page.goto(f"{url}/#/projects/{project_id}/downloads")
    with page.expect_download() as info:
        page.click("[data-testid=download-project-nifti]")
    archive = tmp_path / info.value.suggested_filename
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as zf:
        assert len([n for n in zf.namelist() if n.endswith((".nii.gz", ".nii"))]) == N_IMAGES

    assert all("401" in e or "404" in e for e in page.console_errors), page.console_errors


def test_bad_input_shows_server_messages(page, server, admin, user, artifacts, tmp_path):  # type: ignore[no-untyped-def]
    url, _ = server
    project = admin.post(
        "/api/projects", json={"name": "bad input", "classes": [{"name": "LV"}]}
    ).json()
    r = admin.post(
        f"/api/projects/{project['id']}/members",
        json={"username": user.username, "role": "annotator"},
    )
    assert r.status_code == 201, r.text
    img, _ = make_case(np.random.default_rng(1))
    png = _png_file(img, tmp_path / "one.png")
    image_id = admin.post(
        f"/api/projects/{project['id']}/images",
        files=[("files", ("one.png", png.read_bytes(), "image/png"))],
    ).json()[0]["id"]

    # A text file: the UI shows the server's own message, and nothing is added.
    text = tmp_path / "notes.txt"
    text.write_text("this is not an image\n")
    server_message = admin.post(
        f"/api/projects/{project['id']}/images",
        files=[("files", ("notes.txt", text.read_bytes(), "text/plain"))],
    ).json()["detail"]["message"]
    sign_in(page, url, user)
    page.goto(f"{url}/#/projects/{project['id']}/images")
    page.set_input_files("[data-testid=upload-input]", str(text))
    page.wait_for_selector("[data-testid=upload-status].error")
    shown = page.inner_text("[data-testid=upload-status]")
    assert server_message in shown, (shown, server_message)
    assert admin.get(f"/api/projects/{project['id']}/images").json()["total"] == 1
    screenshot(page, "upload-refused", artifacts)

    # lo > hi typed in the panel: refused with the server's message, nothing stored.
    page.goto(f"{url}/#/images/{image_id}/hints")
    page.wait_for_selector("[data-testid=viewer][data-loaded-z='0']")
    page.fill("[data-testid=iv-size-lo]", "500")
    page.fill("[data-testid=iv-size-hi]", "100")
    page.press("[data-testid=iv-size-hi]", "Enter")
    page.wait_for_selector("[data-testid=hint-error]")
    message = page.inner_text("[data-testid=hint-error]")
    assert "size" in message.lower() and "LV" in message, message
    page.wait_for_selector("[data-testid=save-state].error")
    screenshot(page, "hint-refused", artifacts)
    assert my_hint(admin, image_id, 0, "LV", user.username) in (
        None,
        {"present": True, "size": [500, None]},
    )
    r = admin.get(f"/api/images/{image_id}/slices/0/hints").json()
    assert all(e["hint"].get("size") != [500, 100] for e in r["entries"])
