// Training: a form (preset + main options + warm start), submit, live progress from the job's
// event stream (epoch, loss curve, validation Dice), cancel; the project's jobs and model versions.

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

export const PRESETS = [
  ["", "Automatic (suits the project and device)"],
  ["cpu-fast", "cpu-fast: small network, quick"],
  ["paper", "paper: the method's full setting"],
];

// Metrics a user reads, with their names; the rest (barrier sharpness t, timings, raw loss) is
// internal to the optimiser and left out.
const METRIC_LABELS = { val_dice: "validation Dice", dice_mean: "mean Dice", val_dice_per_class: "Dice per class", dice: "Dice", reference_dice: "Dice vs reference" };
const HIDDEN_METRICS = new Set(["t", "seconds", "steps", "train_loss", "loss", "epoch", "epochs", "lr", "step"]);

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
  for (const opt of OPTIONS) {
    const el = form.querySelector(`[name=${opt.key}]`);
    if (el && el.value !== "") config[opt.key] = Number(el.value);
  }
  if (form.querySelector("[name=use_reference_masks]").checked) config.use_reference_masks = true;
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
  }
  return config;
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
  const colorOf = (name) => (project.classes.find((c) => c.name === name) || {}).color || "#888";
  let follow = null;
  let current = null;

  const form = h(
    "form",
    { class: "card stack", "data-testid": "train-form", onsubmit: (e) => (e.preventDefault(), submit()) },
    h("h2", {}, "Train a model"),
    h("label", {}, "Preset", h("select", { name: "preset" }, PRESETS.map(([v, l]) => h("option", { value: v }, l)))),
    h(
      "div",
      { class: "grid3" },
      OPTIONS.map((o) => h("label", {}, o.label, h("input", { name: o.key, type: o.type, min: o.min, step: o.step, placeholder: "preset" }))),
    ),
    h("label", {}, "Warm start from", warm),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "use_reference_masks" }), "Also train on reference masks where an image has one"),
    h("details", {}, h("summary", {}, "Advanced options (JSON)"), h("textarea", { name: "advanced", rows: 3, placeholder: '{"seed": 1}' })),
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
    if (p.epoch) parts.push(`epoch ${p.epoch}${p.epochs ? ` / ${p.epochs}` : ""}`);
    if (p.step && p.steps) parts.push(`step ${p.step} / ${p.steps}`);
    jobStatus.textContent = parts.join(" · ");
    const warned = job.status === "succeeded" && warningsOf(job.result).length > 0;
    jobStatus.className = `job-status ${warned ? "warned" : job.status}`;
    const details = [];
    const metrics = fmtMetrics(p.metrics);
    if (metrics !== "—") details.push(metrics);
    if (job.error) details.push(`error: ${job.error}`);
    if (job.result && job.result.version) details.push(`model version ${job.result.version} saved`);
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
      error.textContent = err.message;
      error.hidden = false;
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
      error.textContent = err.message;
      error.hidden = false;
    }
  }

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
                h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => ((warm.value = String(m.id)), form.scrollIntoView()) }, "Retrain from this")),
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
            h("td", {}, j.error || (j.progress && j.progress.epoch ? `epoch ${j.progress.epoch}/${j.progress.epochs || "?"}` : "")),
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
  return () => follow && follow.close();
}
