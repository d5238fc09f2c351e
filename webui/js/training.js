// Training: a form (time budget or preset + main options + warm start) with a preview of the
// resolved plan (POST /api/projects/{id}/jobs/plan), submit, live progress from the job's event
// stream (epoch, loss curve, validation Dice, time left), cancel; the project's jobs and models.

import * as api from "./api.js";
import { LineChart } from "./chart.js";
import { confirmDialog, h, mount, notify } from "./dom.js";
import { qualityPanel, warningsOf } from "./quality.js";
import { followJob } from "./sse.js";

/** Main options shown in the form; every other TrainConfig field goes in "advanced" JSON. */
export const OPTIONS = [
  { key: "epochs", label: "Epochs", type: "number", min: 1, step: 1 },
  { key: "batch_size", label: "Batch size", type: "number", min: 1, step: 1 },
  { key: "lr", label: "Learning rate", type: "number", min: 0, step: "any" },
];

/** Time budgets (config.budget): training seconds per device type, as the server plans them. */
export const BUDGETS = [
  { value: "quick", label: "Quick", seconds: { cpu: 120, cuda: 60 } },
  { value: "standard", label: "Standard", seconds: { cpu: 600, cuda: 300 } },
  { value: "thorough", label: "Thorough", seconds: { cpu: 1800, cuda: 900 } },
];
export const DEFAULT_BUDGET = "standard";

const budgetLabel = (b, device = "cpu") => `${b.label} (~${fmtDuration(b.seconds[device] || b.seconds.cpu)} on ${device === "cuda" ? "GPU" : "CPU"})`;

/** A duration in seconds as a reader says it: "40 s", "3 min", "1 h 20 min". */
export function fmtDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
}

/** Elapsed time as a clock: "0:42", "12:05", "1:02:05". */
export function fmtClock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const two = (n) => String(n).padStart(2, "0");
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  return hh ? `${hh}:${two(mm)}:${two(s % 60)}` : `${mm}:${two(s % 60)}`;
}

/** "about 3 min left · 1:20 elapsed" from a training job's progress, or "" when it has neither. */
export function fmtTimeLeft(progress) {
  const p = progress || {};
  const parts = [];
  if (typeof p.eta_s === "number" && Number.isFinite(p.eta_s)) parts.push(p.eta_s < 1 ? "almost done" : `about ${fmtDuration(p.eta_s)} left`);
  if (typeof p.elapsed_s === "number" && Number.isFinite(p.elapsed_s)) parts.push(`${fmtClock(p.elapsed_s)} elapsed`);
  return parts.join(" · ");
}

/** One line for a plan answer: "Will train 96 px UNet width 16, 40 epochs, about 9 min on cpu (12 slices)",
 * with ", timed by the last 3 trainings" after the device when earlier runs measured the pace. */
export function planSummary(plan) {
  const cfg = (plan && plan.config) || {};
  const kw = cfg.network_kwargs || {};
  const net = !cfg.network || cfg.network === "unet" ? "UNet" : cfg.network;
  const what = [cfg.grid ? `${cfg.grid} px` : null, net, kw.width ? `width ${kw.width}` : null].filter(Boolean).join(" ");
  const slices = typeof plan.num_slices === "number" ? ` (${plan.num_slices} slice${plan.num_slices === 1 ? "" : "s"})` : "";
  // Timed by earlier trainings, a budgeted run's estimate covers the epochs its re-plan will fit.
  const n = typeof plan.estimated_epochs === "number" ? plan.estimated_epochs : cfg.epochs;
  let epochs = typeof n === "number" ? `, ${n} epoch${n === 1 ? "" : "s"}` : "";
  // At its ceiling a plan ends before the budget is spent: say why the time is shorter.
  if (epochs && n === plan.epoch_ceiling) epochs += " (the plan's most: more passes would learn the drawings' errors)";
  const runs = plan.timed_runs || 0;
  const timed = runs ? `, timed by the last ${runs === 1 ? "training" : `${runs} trainings`}` : "";
  return `Will train ${what}${epochs}, about ${fmtDuration(plan.estimated_seconds)} on ${plan.device || "?"}${timed}${slices}`;
}

export const PRESETS = [
  ["", "None: planned from the time budget"],
  ["cpu-fast", "cpu-fast: small network, quick"],
  ["paper", "paper: the method's full setting"],
];

// Metrics a user reads, with their names; the rest (barrier sharpness t, timings, raw loss) is
// internal to the optimiser and left out.
const METRIC_LABELS = { val_dice: "validation Dice", dice_mean: "mean Dice", val_dice_per_class: "Dice per class", dice: "Dice", reference_dice: "Dice vs reference" };
const HIDDEN_METRICS = new Set(["t", "seconds", "steps", "resumed_at_step", "train_loss", "loss", "epoch", "epochs", "lr", "step"]);

export function fmtMetrics(metrics) {
  if (!metrics || typeof metrics !== "object") return "—";
  const parts = [];
  for (const [key, v] of Object.entries(metrics)) {
    if (HIDDEN_METRICS.has(key)) continue;
    const k = METRIC_LABELS[key] || key.replace(/_/g, " ");
    if (typeof v === "number") parts.push(`${k} ${Number.isInteger(v) ? v : Math.abs(v) < 1000 ? v.toFixed(3) : v.toExponential(2)}`);
    else if (v && typeof v === "object" && !Array.isArray(v)) {
      const inner = Object.entries(v)
        .filter(([, x]) => typeof x === "number")
        .map(([c, x]) => `${c} ${x.toFixed(3)}`);
      if (inner.length) parts.push(`${k}: ${inner.join(", ")}`);
    }
  }
  return parts.join(" · ") || "—";
}

/** Build the job config from the form: preset + the options the user filled + advanced JSON. */
export function configFromForm(form) {
  const config = {};
  const preset = form.querySelector("[name=preset]").value;
  if (preset) config.preset = preset;
  // A time budget plans the run unless a preset does (the server refuses both together).
  const budget = form.querySelector("[name=budget]");
  if (!preset && budget && budget.value) config.budget = budget.value;
  for (const opt of OPTIONS) {
    const el = form.querySelector(`[name=${opt.key}]`);
    if (el && el.value !== "") config[opt.key] = Number(el.value);
  }
  if (form.querySelector("[name=use_reference_masks]").checked) config.use_reference_masks = true;
  // Fitting the drawings is the automatic plan's default: only turning it off is sent.
  const fit = form.querySelector("[name=fit_hints]");
  if (fit && !fit.disabled && !fit.checked) config.fit_hints = false;
  const adv = form.querySelector("[name=advanced]").value.trim();
  if (adv) {
    let extra;
    try {
      extra = JSON.parse(adv);
    } catch (err) {
      throw new Error(`Advanced options are not valid JSON: ${err.message}`);
    }
    if (!extra || typeof extra !== "object" || Array.isArray(extra)) throw new Error("Advanced options must be a JSON object");
    Object.assign(config, extra);
    if ("preset" in extra && !("budget" in extra)) delete config.budget;
  }
  return config;
}

/** The jobs table's progress cell: "epoch 3/10 · about 2 min left". */
function jobProgressText(job) {
  const p = job.progress || {};
  const parts = [];
  if (p.epoch) parts.push(`epoch ${p.epoch}/${p.epochs || "?"}`);
  if ((job.status === "running" || job.status === "queued") && typeof p.eta_s === "number" && p.phase !== "predicting") parts.push(`about ${fmtDuration(p.eta_s)} left`);
  return parts.join(" · ");
}

export async function render(panel, project) {
  const chart = h("canvas", { class: "chart", "data-testid": "loss-chart", width: 480, height: 200 });
  const lc = new LineChart(chart);
  const progressBar = h("progress", { max: 1, value: 0, "data-testid": "job-progress" });
  const jobStatus = h("p", { class: "job-status", "data-testid": "job-status", role: "status" }, "No training running.");
  const jobDetail = h("p", { class: "muted", "data-testid": "job-detail" });
  const cancelButton = h("button", { type: "button", class: "danger", hidden: true, "data-testid": "cancel-job" }, "Cancel");
  const versions = h("tbody", { "data-testid": "model-versions" });
  const jobsBody = h("tbody", {});
  const warm = h("select", { name: "warm" }, h("option", { value: "" }, "No (train from scratch)"));
  const error = h("p", { class: "error", role: "alert", hidden: true, "data-testid": "train-error" });
  const qualityBox = h("div", { "data-testid": "job-quality" });
  const timeLeft = h("p", { class: "muted time-left", "data-testid": "job-eta", hidden: true });
  const budgetSelect = h("select", { name: "budget" }, BUDGETS.map((b) => h("option", { value: b.value, selected: b.value === DEFAULT_BUDGET }, budgetLabel(b))));
  const planText = h("span", { "data-testid": "plan-summary" }, "Planning…");
  const planConfig = h("pre", { class: "plan-config", "data-testid": "plan-config", hidden: true });
  const plan = h("details", { class: "train-plan muted", "data-testid": "train-plan" }, h("summary", {}, planText), planConfig);
  const colorOf = (name) => (project.classes.find((c) => c.name === name) || {}).color || "#888";
  let follow = null;
  let current = null;

  const form = h(
    "form",
    { class: "card stack", "data-testid": "train-form", onsubmit: (e) => (e.preventDefault(), submit()) },
    h("h2", {}, "Train a model"),
    h("label", {}, "Time budget", budgetSelect),
    h("label", {}, "Preset", h("select", { name: "preset" }, PRESETS.map(([v, l]) => h("option", { value: v }, l)))),
    h(
      "div",
      { class: "grid3" },
      OPTIONS.map((o) => h("label", {}, o.label, h("input", { name: o.key, type: o.type, min: o.min, step: o.step, placeholder: "planned" }))),
    ),
    h("label", {}, "Warm start from", warm),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "use_reference_masks" }), "Also train on reference masks where an image has one"),
    h(
      "label",
      { class: "check", title: "GrabCut cuts each drawn shape along the image's edges before training (about 0.3 s per slice); a cut that breaks the hint's bounds is dropped" },
      h("input", { type: "checkbox", name: "fit_hints", checked: true }),
      "Fit my drawings to the image's edges first",
    ),
    h("details", {}, h("summary", {}, "Advanced options (JSON)"), h("textarea", { name: "advanced", rows: 3, placeholder: '{"seed": 1}' })),
    plan,
    error,
    h("button", { type: "submit", class: "primary", "data-testid": "start-training" }, "Start training"),
  );

  mount(
    panel,
    h(
      "div",
      { class: "columns" },
      form,
      h(
        "div",
        { class: "card stack", "data-testid": "job-card" },
        h("h2", {}, "Progress"),
        jobStatus,
        progressBar,
        timeLeft,
        jobDetail,
        qualityBox,
        chart,
        h("div", { class: "row" }, cancelButton),
      ),
    ),
    h(
      "div",
      { class: "card" },
      h("h2", {}, "Model versions"),
      h("table", { class: "table" }, h("thead", {}, h("tr", {}, ["Version", "Created", "Epochs", "Metrics", "From", ""].map((t) => h("th", {}, t)))), versions),
    ),
    h("div", { class: "card" }, h("h2", {}, "Jobs"), h("table", { class: "table" }, h("thead", {}, h("tr", {}, ["Job", "Kind", "Status", "Created", "Progress / error"].map((t) => h("th", {}, t)))), jobsBody)),
  );
  lc.draw();

  function showJob(job) {
    current = job;
    const p = job.progress || {};
    const running = job.status === "queued" || job.status === "running";
    cancelButton.hidden = !running;
    panel.dataset.jobStatus = job.status;
    let frac = 0;
    if (job.status === "succeeded") frac = 1;
    else if (p.phase === "predicting" && p.images) frac = 0.9 + 0.1 * ((p.images_done || 0) / p.images);
    else if (p.epochs) frac = 0.9 * ((p.epoch ? p.epoch - 1 : 0) + (p.steps ? (p.step || 0) / p.steps : 0)) / p.epochs;
    progressBar.value = Math.max(0, Math.min(1, frac));
    const parts = [`Job ${job.id}: ${job.status}`];
    if (p.phase && running) parts.push(p.phase);
    if (p.phase === "predicting" && running && p.images) parts.push(`image ${p.images_done || 0} / ${p.images}`);
    if (p.phase === "fitting hints" && running && p.slices) parts.push(`slice ${p.slices_done || 0} / ${p.slices}`);
    if (p.epoch) parts.push(`epoch ${p.epoch}${p.epochs ? ` / ${p.epochs}` : ""}`);
    if (p.step && p.steps) parts.push(`step ${p.step} / ${p.steps}`);
    jobStatus.textContent = parts.join(" · ");
    const left = running && p.phase !== "predicting" ? fmtTimeLeft(p) : "";
    timeLeft.textContent = left;
    timeLeft.hidden = !left;
    const warned = job.status === "succeeded" && warningsOf(job.result).length > 0;
    jobStatus.className = `job-status ${job.status}${warned ? " warned" : ""}`; // "warned": succeeded, with warnings
    const details = [];
    const metrics = fmtMetrics(p.metrics);
    if (metrics !== "—") details.push(metrics);
    if (job.error) details.push(`error: ${job.error}`);
    if (job.result && job.result.version) details.push(`model version ${job.result.version} saved`);
    if (job.result && job.result.reference_slices) details.push(`${job.result.reference_slices} slice(s) supervised by reference masks`);
    if (job.model_version_id && job.kind === "train") details.push(`warm start from ${versionLabel(job.model_version_id)}`);
    jobDetail.textContent = details.join(" — ");
    mount(qualityBox, job.status === "succeeded" ? qualityPanel(job.result, colorOf) : null);
    lc.addProgress(p);
  }

  function watch(job) {
    if (follow) follow.close();
    lc.clear();
    showJob(job);
    if (job.status !== "queued" && job.status !== "running") return;
    follow = followJob(job.id, {
      onJob: showJob,
      onError: (err) => (jobDetail.textContent = `Live updates interrupted (${err.message}); reconnecting…`),
      onEnd: (final) => {
        showJob(final);
        follow = null;
        const ok = final.status === "succeeded";
        notify(`Training ${final.status}${final.error ? `: ${final.error}` : ""}`, ok ? "ok" : "error", 8000);
        refreshLists();
      },
    });
  }

  async function submit() {
    error.hidden = true;
    let config;
    try {
      config = configFromForm(form);
    } catch (err) {
      showError(err.message);
      return;
    }
    const body = { kind: "train", config };
    if (warm.value) body.model_version_id = Number(warm.value);
    try {
      const job = await api.post(`/api/projects/${project.id}/jobs`, body);
      notify(`Training job ${job.id} queued`, "ok", 3000);
      watch(job);
      refreshLists();
    } catch (err) {
      showError(err.message);
    }
  }

  // ---- plan preview: what the form's config resolves to, re-asked when the form changes
  let planTimer = null;
  let planAbort = null;
  let planSeq = 0;
  let device = "cpu";

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function syncBudget() {
    // A preset fixes the whole run: the budget does not apply then.
    const preset = form.querySelector("[name=preset]").value;
    budgetSelect.disabled = Boolean(preset);
    budgetSelect.title = preset ? "A preset fixes the run; choose no preset to plan by the time budget" : "";
    // Fitting the drawings is the automatic plan's (a preset trains as published).
    const fit = form.querySelector("[name=fit_hints]");
    if (fit.disabled !== Boolean(preset)) {
      fit.disabled = Boolean(preset);
      fit.checked = !preset; // back to the plan's default whenever the preset choice flips
    }
  }

  async function refreshPlan() {
    const seq = ++planSeq;
    if (planAbort) planAbort.abort();
    planAbort = null;
    let config;
    try {
      config = configFromForm(form);
    } catch (err) {
      planText.textContent = "No plan: the form has a problem.";
      planConfig.textContent = "";
      planConfig.hidden = true;
      plan.dataset.state = "error";
      showError(err.message);
      return;
    }
    planAbort = new AbortController();
    plan.dataset.state = "loading";
    try {
      // A warm start keeps its model's network: the plan shows the run it will really be.
      const body = { config };
      if (warm.value) body.model_version_id = Number(warm.value);
      const answer = await api.post(`/api/projects/${project.id}/jobs/plan`, body, { signal: planAbort.signal });
      if (seq !== planSeq) return;
      if (!answer || typeof answer !== "object" || !answer.config) throw new Error("the server sent no plan");
      planText.textContent = planSummary(answer);
      planConfig.textContent = JSON.stringify(answer.config, null, 2);
      planConfig.hidden = false;
      plan.hidden = false;
      plan.dataset.state = "ok";
      // The epochs the line shows: the timed estimate's where earlier trainings timed it.
      plan.dataset.epochs = String(answer.estimated_epochs ?? answer.config.epochs ?? "");
      if (answer.device && answer.device !== device) {
        device = answer.device;
        for (const opt of budgetSelect.options) opt.textContent = budgetLabel(BUDGETS.find((b) => b.value === opt.value), device);
      }
      // The form as it is now trains: an earlier complaint about it is stale.
      error.hidden = true;
    } catch (err) {
      if (seq !== planSeq || err.name === "AbortError") return;
      planConfig.textContent = "";
      planConfig.hidden = true;
      plan.dataset.state = "error";
      // A viewer may not plan (nor train): no preview, and nothing to complain about.
      plan.hidden = err.status === 403;
      if (err.status === 403) return;
      planText.textContent = err.status === 422 ? "No plan: the server refuses this configuration." : `No plan: ${err.message}`;
      if (err.status === 422) showError(err.message);
    }
  }

  function schedulePlan() {
    syncBudget();
    clearTimeout(planTimer);
    planTimer = setTimeout(refreshPlan, 300);
  }
  form.addEventListener("input", schedulePlan);
  form.addEventListener("change", schedulePlan);

  cancelButton.addEventListener("click", async () => {
    if (!current || !(await confirmDialog(`Cancel job ${current.id}?`, { ok: "Cancel job", cancel: "Keep running" }))) return;
    try {
      showJob(await api.post(`/api/jobs/${current.id}/cancel`, {}));
    } catch (err) {
      notify(err.message, "error");
    }
  });

  let versionOf = new Map(); // model version id -> its number in the project
  const versionLabel = (id) => (versionOf.has(id) ? `v${versionOf.get(id)}` : `model ${id}`);

  async function refreshLists() {
    try {
      const [models, jobs] = await Promise.all([api.get(`/api/projects/${project.id}/models`, { query: { limit: 50 } }), api.get(`/api/projects/${project.id}/jobs`, { query: { limit: 20 } })]);
      const mv = api.items(models);
      // Keep what the user picked (a job just started from it still warm-starts from it).
      const wanted = sessionStorage.getItem("shapehint.warm-start") || warm.value;
      versionOf = new Map(mv.map((m) => [m.id, m.version]));
      mount(warm, h("option", { value: "" }, "No (train from scratch)"), mv.map((m) => h("option", { value: m.id, selected: wanted === String(m.id) }, `v${m.version}`)));
      mount(
        versions,
        mv.length
          ? mv.map((m) =>
              h(
                "tr",
                {},
                h("td", {}, `v${m.version}`),
                h("td", {}, new Date(m.created_at).toLocaleString()),
                h("td", {}, String(m.epochs)),
                h("td", { class: "metrics" }, fmtMetrics(m.metrics)),
                h("td", {}, m.parent_id ? `warm start from ${versionLabel(m.parent_id)}` : "scratch"),
                h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => ((warm.value = String(m.id)), schedulePlan(), form.scrollIntoView()) }, "Retrain from this")),
              ),
            )
          : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No model yet.")),
      );
      const jl = api.items(jobs);
      mount(
        jobsBody,
        jl.map((j) =>
          h(
            "tr",
            { class: j.status },
            h("td", {}, h("button", { type: "button", class: "link", onclick: () => watch(j) }, `#${j.id}`)),
            h("td", {}, j.kind),
            h("td", {}, j.status === "succeeded" && warningsOf(j.result).length ? h("span", { class: "warn", "data-testid": "job-warned", title: warningsOf(j.result).join("\n") }, "succeeded ⚠") : j.status),
            h("td", {}, new Date(j.created_at).toLocaleString()),
            h("td", {}, j.error || jobProgressText(j)),
          ),
        ),
      );
      // Resume watching a job that is still running (e.g. after a page reload).
      if (!follow && !current) {
        const live = jl.find((j) => j.status === "running" || j.status === "queued");
        if (live) watch(live);
      }
    } catch (err) {
      notify(err.message, "error");
    }
  }
  await refreshLists();
  sessionStorage.removeItem("shapehint.warm-start");
  syncBudget();
  refreshPlan();
  return () => {
    clearTimeout(planTimer);
    if (planAbort) planAbort.abort();
    planSeq += 1;
    if (follow) follow.close();
  };
}
