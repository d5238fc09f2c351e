"""The training form in Chromium: the time budget, the plan preview (POST .../jobs/plan) that
follows the form, the server's refusal of a bad config, and the time left on a running job."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from models.synthetic import make_hints
from tests.api_helpers import png_bytes
from tests.browser.helpers import project_with_image, screenshot, sign_in
from tests.browser.test_modules import run

pytestmark = pytest.mark.browser

PLAN = "[data-testid=train-plan]"
PLAN_LINE = re.compile(
    r"^Will train \d+ px UNet width \d+, \d+ epochs?( \(the plan's most: [^)]+\))?, about \d+ "
    r"(s|min|h)( \d+ min)? on "
    # timed by this server's earlier trainings once any ran (other tests' share this server)
    r"(cpu|cuda)(, timed by the last (training|\d+ trainings))? \(\d+ slices?\)$"
)


def _hinted_project(admin, user, name: str, images: int = 1, side: int = 48) -> dict:  # type: ignore[no-untyped-def]
    """A project of ``images`` square images of ``side`` px, slice 0 of each hinted with a small
    disk (so it can be trained; small against the image, so the planner keeps a fine grid)."""
    project, first = project_with_image(
        admin, user, name, [{"name": "LV"}], ("a0.png", png_bytes(side, side), "image/png")
    )
    ids = [first["id"]]
    if images > 1:
        files = [
            ("files", (f"a{i}.png", png_bytes(side, side, seed=i), "image/png"))
            for i in range(1, images)
        ]
        r = admin.post(f"/api/projects/{project['id']}/images", files=files)
        assert r.status_code == 201, r.text
        ids += [im["id"] for im in r.json()]
    ys, xs = np.mgrid[0:side, 0:side]
    mask = (np.hypot(xs - side / 2, ys - side / 2) <= 4).astype(np.uint8)
    for i, image_id in enumerate(ids):
        hints = make_hints(mask, 1, seed=i, class_names=("LV",))
        r = admin.put(f"/api/images/{image_id}/slices/0/hints", json=hints)
        assert r.status_code == 200, r.text
    return project


def _plan_for(page, bodies: list[dict], config: dict, state: str = "ok") -> None:  # type: ignore[no-untyped-def]
    """Wait until the form's latest plan request sent ``config`` and its answer is shown."""
    for _ in range(100):
        if bodies and bodies[-1] == config:
            break
        page.wait_for_timeout(100)
    else:
        raise AssertionError(f"no plan request for {config}: {bodies}")
    page.wait_for_selector(f"{PLAN}[data-state={state}]")


def _epochs(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.get_attribute(PLAN, "data-epochs"))  # type: ignore[arg-type]


def test_plan_preview_follows_budget_and_shows_refusals(page, server, admin, user, artifacts):  # type: ignore[no-untyped-def]
    url, _ = server
    # 40 slices of 160 px: epochs a budget buys stay well inside the allowed range.
    project = _hinted_project(admin, user, "plan preview", images=40, side=160)
    pid = project["id"]
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: (
            r.method == "POST"
            and r.url.endswith(f"/api/projects/{pid}/jobs/plan")
            and bodies.append(json.loads(r.post_data)["config"])
        ),
    )
    sign_in(page, url, user)
    page.goto(f"{url}/#/projects/{pid}/training")
    page.wait_for_selector("[data-testid=train-form]")

    # Once on load: the default budget, planned by the server.
    page.wait_for_selector(f"{PLAN}[data-state=ok]")
    assert bodies == [{"budget": "standard"}]
    line = page.inner_text("[data-testid=plan-summary]")
    assert PLAN_LINE.match(line), line
    assert page.input_value("select[name=budget]") == "standard"
    standard = _epochs(page)
    # The details hold the whole resolved config.
    page.click(f"{PLAN} summary")
    resolved = json.loads(page.inner_text("[data-testid=plan-config]"))
    assert resolved["budget"] == "standard"
    assert resolved["epochs"] == standard or "timed by" in line  # timed: the re-plan's epochs
    assert page.locator("[data-testid=train-error]").is_hidden()
    screenshot(page, "training-plan", artifacts)

    # Quick and thorough budgets plan different numbers of epochs (the line follows).
    page.select_option("select[name=budget]", "quick")
    _plan_for(page, bodies, {"budget": "quick"})
    quick = _epochs(page)
    assert f", {quick} epochs, about" in page.inner_text("[data-testid=plan-summary]")
    page.select_option("select[name=budget]", "thorough")
    _plan_for(page, bodies, {"budget": "thorough"})
    thorough = _epochs(page)
    assert quick < thorough and quick <= standard <= thorough, (quick, standard, thorough)
    line = page.inner_text("[data-testid=plan-summary]")
    assert PLAN_LINE.match(line) and f", {thorough} epochs (the plan's most" in line, line

    # Typed epochs win over the budget (the budget still chooses grid and network).
    page.fill("input[name=epochs]", "7")
    _plan_for(page, bodies, {"budget": "thorough", "epochs": 7})
    assert page.get_attribute(PLAN, "data-epochs") == "7"
    assert ", 7 epochs," in page.inner_text("[data-testid=plan-summary]")
    page.fill("input[name=epochs]", "")

    # A preset fixes the run: the budget is greyed out and left out of the config.
    page.select_option("select[name=preset]", "cpu-fast")
    _plan_for(page, bodies, {"preset": "cpu-fast"})
    assert page.is_disabled("select[name=budget]")
    # Fitting the drawings is the plan's: greyed out and unticked under a preset.
    assert page.is_disabled("input[name=fit_hints]")
    assert not page.is_checked("input[name=fit_hints]")
    page.select_option("select[name=preset]", "")
    assert page.is_enabled("select[name=budget]")
    assert page.is_enabled("input[name=fit_hints]") and page.is_checked("input[name=fit_hints]")
    # Unticking it (and only that) is sent; it stays unticked while other fields change.
    page.uncheck("input[name=fit_hints]")
    _plan_for(page, bodies, {"budget": "thorough", "fit_hints": False})
    assert not page.is_checked("input[name=fit_hints]")
    page.check("input[name=fit_hints]")
    _plan_for(page, bodies, {"budget": "thorough"})

    # A config the server refuses: its own message in the form's error area, no plan line.
    page.click("text=Advanced options (JSON)")
    page.fill("textarea[name=advanced]", '{"epochs": 1.5}')
    _plan_for(page, bodies, {"budget": "thorough", "epochs": 1.5}, state="error")
    err = page.inner_text("[data-testid=train-error]")
    assert "epochs" in err, err
    screenshot(page, "training-plan-refused", artifacts)
    assert "Will train" not in page.inner_text("[data-testid=plan-summary]")
    # Broken JSON is caught before asking the server.
    n = len(bodies)
    page.fill("textarea[name=advanced]", '{"epochs": ')
    page.wait_for_selector("[data-testid=train-error]:has-text('not valid JSON')")
    page.wait_for_timeout(400)
    assert len(bodies) == n
    # Fixed: the plan is back and the complaint goes.
    page.fill("textarea[name=advanced]", '{"epochs": 3}')
    page.wait_for_selector(f"{PLAN}[data-state=ok][data-epochs='3']")
    assert page.locator("[data-testid=train-error]").is_hidden()


def test_plan_preview_says_why_nothing_can_train(page, server, admin, user):  # type: ignore[no-untyped-def]
    url, _ = server
    project, _image = project_with_image(
        admin, user, "plan no hints", [{"name": "LV"}], ("a.png", png_bytes(32, 32), "image/png")
    )
    sign_in(page, url, user)
    page.goto(f"{url}/#/projects/{project['id']}/training")
    page.wait_for_selector(f"{PLAN}[data-state=error]")
    assert "nothing to train on" in page.inner_text("[data-testid=train-error]")


def _running_job(project_id: int, eta_s: float, elapsed_s: float, epoch: int) -> dict:
    return {
        "id": 778,
        "project_id": project_id,
        "kind": "train",
        "status": "running",
        "config": {"budget": "standard"},
        "model_version_id": None,
        "progress": {
            "phase": "training",
            "epoch": epoch,
            "epochs": 40,
            "step": 1,
            "steps": 2,
            "loss": 1.2,
            "elapsed_s": elapsed_s,
            "eta_s": eta_s,
        },
        "result": None,
        "error": None,
        "created_at": "2024-01-01T00:00:00Z",
    }


def test_running_job_shows_time_left_live(page, server, admin, user, artifacts):  # type: ignore[no-untyped-def]
    url, _ = server
    project = _hinted_project(admin, user, "plan eta")
    pid = project["id"]
    # A running job (stubbed): the list shows it, its event stream sends a later progress event
    # once the test lets it (the first connection ends at once; the app reconnects).
    first = _running_job(pid, eta_s=185.0, elapsed_s=75.0, epoch=3)
    later = _running_job(pid, eta_s=42.0, elapsed_s=218.0, epoch=31)
    stream = {"events": ": nothing yet\n\n"}
    page.route(
        f"**/api/projects/{pid}/jobs?*",
        lambda route: route.fulfill(json={"items": [first], "total": 1, "offset": 0, "limit": 20}),
    )
    page.route(
        "**/api/jobs/778/events",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=stream["events"]
        ),
    )
    page.route(
        "**/api/jobs/778",
        lambda route: route.fulfill(json=first),
    )
    sign_in(page, url, user)
    page.goto(f"{url}/#/projects/{pid}/training")
    page.wait_for_selector("[data-testid=job-eta]:not([hidden])")
    eta = page.inner_text("[data-testid=job-eta]")
    assert eta == "about 3 min left · 1:15 elapsed", eta
    assert "about 3 min left" in page.inner_text("[data-testid=job-card]")
    row = page.inner_text("tr.running")
    assert "epoch 3/40" in row and "about 3 min left" in row, row

    # A progress event moves it on.
    stream["events"] = f"event: progress\ndata: {json.dumps(later)}\n\n"
    page.wait_for_selector("[data-testid=job-eta]:has-text('42 s left')", timeout=20_000)
    assert page.inner_text("[data-testid=job-eta]") == "about 42 s left · 3:38 elapsed"
    assert "epoch 31 / 40" in page.inner_text("[data-testid=job-status]")
    screenshot(page, "training-time-left", artifacts)

    # Finished: no time left shown.
    done = {**later, "status": "succeeded", "progress": {**later["progress"], "eta_s": 0.0}}
    stream["events"] = f"event: end\ndata: {json.dumps(done)}\n\n"
    page.wait_for_selector("[data-testid=job-status].succeeded", timeout=20_000)
    assert page.locator("[data-testid=job-eta]").is_hidden()


def test_training_text_helpers(page, server):  # type: ignore[no-untyped-def]
    url, _ = server
    got = run(
        page,
        url,
        "training.js",
        """return [[0.4, 42, 89, 185, 600, 3600, 4980].map(m.fmtDuration),
                   m.fmtTimeLeft({eta_s: 185, elapsed_s: 75}),
                   m.fmtTimeLeft({eta_s: null, elapsed_s: 3725}),
                   m.fmtTimeLeft({}),
                   m.planSummary({config: {grid: 96, network: 'unet',
                                           network_kwargs: {width: 16}, epochs: 1},
                                  estimated_seconds: 590, device: 'cpu', num_slices: 12}),
                   m.planSummary({config: {grid: 64, epochs: 300}, epoch_ceiling: 300,
                                  estimated_seconds: 250, device: 'cpu', num_slices: 36}),
                   m.planSummary({config: {grid: 64, epochs: 120}, epoch_ceiling: 300,
                                  estimated_epochs: 300, timed_runs: 3,
                                  estimated_seconds: 200, device: 'cuda', num_slices: 1})];""",
    )
    assert got == [
        ["1 s", "42 s", "1 min", "3 min", "10 min", "1 h", "1 h 23 min"],
        "about 3 min left · 1:15 elapsed",
        "1:02:05 elapsed",
        "",
        "Will train 96 px UNet width 16, 1 epoch, about 10 min on cpu (12 slices)",
        "Will train 64 px UNet, 300 epochs (the plan's most: more passes would learn the"
        " drawings' errors), about 4 min on cpu (36 slices)",
        # Timed by earlier runs: the epochs the worker's re-plan will fit, not the cost model's.
        "Will train 64 px UNet, 300 epochs (the plan's most: more passes would learn the"
        " drawings' errors), about 3 min on cuda, timed by the last 3 trainings (1 slice)",
    ]
    # configFromForm: the budget unless a preset (form or advanced JSON) fixes the run.
    got = run(
        page,
        url,
        "training.js",
        """const {h} = await import('/js/dom.js');
           const form = (preset, budget, adv, epochs = '', fit = true) => h('form', {},
             h('select', {name: 'preset'}, h('option', {value: ''}, 'auto'),
               h('option', {value: 'paper', selected: preset === 'paper'}, 'paper')),
             h('select', {name: 'budget'}, ['quick', 'standard'].map(v =>
               h('option', {value: v, selected: v === budget}, v))),
             m.OPTIONS.map(o => h('input', {name: o.key, value: o.key === 'epochs' ? epochs : ''})),
             h('input', {type: 'checkbox', name: 'use_reference_masks'}),
             h('input', {type: 'checkbox', name: 'fit_hints', checked: fit}),
             h('textarea', {name: 'advanced'}, adv));
           return [m.configFromForm(form('', 'quick', '')),
                   m.configFromForm(form('', 'standard', '', '12')),
                   m.configFromForm(form('paper', 'quick', '')),
                   m.configFromForm(form('', 'quick', '{"preset": "paper"}')),
                   m.configFromForm(form('', 'quick', '{"budget": 900}')),
                   m.configFromForm(form('', 'quick', '', '', false))];""",
    )
    assert got == [
        {"budget": "quick"},
        {"budget": "standard", "epochs": 12},
        {"preset": "paper"},
        {"preset": "paper"},
        {"budget": 900},
        {"budget": "quick", "fit_hints": False},
    ]
