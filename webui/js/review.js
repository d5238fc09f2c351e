// Review mode: the predicted label map over the image (fill or outline, opacity, per-class
// toggles), the hints beside it, accept / reject / needs-hints, next unreviewed image, downloads,
// and retraining from the current model.

import * as api from "./api.js";
import { h, hexToRgb, mount, notify } from "./dom.js";
import { imageQuality, warningBox } from "./quality.js";

/**
 * Colour an RGBA label image (label k in the red channel) into an overlay.
 * labels: Uint8ClampedArray RGBA of size w*h*4; colors: [[r,g,b] | null] indexed by label
 * (null = hidden); outline: keep only pixels with a 4-neighbour of another label.
 * Returns an ImageData-ready Uint8ClampedArray.
 */
export function colorLabels(labels, w, hgt, colors, outline) {
  const out = new Uint8ClampedArray(w * hgt * 4);
  const at = (x, y) => labels[(y * w + x) * 4];
  for (let y = 0; y < hgt; y++) {
    for (let x = 0; x < w; x++) {
      const k = at(x, y);
      const c = k ? colors[k] : null;
      if (!c) continue;
      if (outline && x > 0 && y > 0 && x < w - 1 && y < hgt - 1 && at(x - 1, y) === k && at(x + 1, y) === k && at(x, y - 1) === k && at(x, y + 1) === k) continue;
      const i = (y * w + x) * 4;
      out[i] = c[0];
      out[i + 1] = c[1];
      out[i + 2] = c[2];
      out[i + 3] = 255;
    }
  }
  return out;
}

export class ReviewPanel {
  constructor(side, ctx) {
    this.side = side;
    this.ctx = ctx;
    this.show = true;
    this.outline = false;
    this.opacity = 0.5;
    this.visible = new Set(ctx.classes.map((c) => c.index));
    this.models = [];
    this.model = ""; // "" = newest
    this.labels = null; // {z, model, data, w, h}
    this.prediction = null;
    this.summary = h("div", { class: "hint-summary" });
  }

  destroy() {}

  async init() {
    try {
      this.models = api.items(await api.get(`/api/projects/${this.ctx.project.id}/models`));
    } catch (err) {
      notify(err.message, "error");
    }
    await this.loadReview();
    this.render();
  }

  /** The review state of the selected model version's mask (reviews are per version). */
  async loadReview() {
    try {
      this.reviewState = await api.get(`/api/images/${this.ctx.image.id}/review`, { query: { model: this.model } });
    } catch (err) {
      this.reviewState = null;
      if (err.status !== 404) notify(err.message, "error");
    }
    await this.loadQuality();
  }

  /** The train job's quality report of the shown model version (nothing when it has none). */
  async loadQuality() {
    const id = this.reviewState && this.reviewState.model_version_id;
    const version = this.models.find((m) => m.id === id);
    this.quality = null;
    if (!version || !version.job_id) return;
    try {
      const job = await api.get(`/api/jobs/${version.job_id}`);
      this.quality = job.result || null;
    } catch {
      /* no report: nothing to show */
    }
  }

  async selectModel(value) {
    this.model = value;
    await Promise.all([this.loadMask(), this.loadReview()]);
    this.render();
  }

  shortcuts() {
    return [
      { keys: "O", match: ["o"], label: "Show / hide predicted mask", run: () => this.set({ show: !this.show }) },
      { keys: "F", match: ["f"], label: "Fill / outline", run: () => this.set({ outline: !this.outline }) },
      { keys: "Shift+A", match: ["shift+a"], label: "Accept image", run: () => this.review("accepted") },
      { keys: "Shift+R", match: ["shift+r"], label: "Reject image", run: () => this.review("rejected") },
      { keys: "Shift+H", match: ["shift+h"], label: "Needs hints", run: () => this.review("needs-hints") },
      { keys: "N", match: ["n"], label: "Next unreviewed image", run: () => this.nextUnreviewed() },
    ];
  }

  set(changes) {
    Object.assign(this, changes);
    this.paint();
    this.render();
  }

  /** Fetch the label map of the current slice (PNG, label k = grey level k). */
  async loadMask() {
    const { z, image } = this.ctx;
    const key = `${z}|${this.model}`;
    if (this.labels && this.labels.key === key) return this.paint();
    let bmp;
    try {
      bmp = await api.loadImage(`/api/images/${image.id}/prediction`, { format: "png", z, model: this.model });
      this.prediction = true;
    } catch (err) {
      this.labels = null;
      this.prediction = false;
      this.predictionError = err.status === 404 || err.status === 409 ? "No prediction yet: train a model first." : err.message;
      this.ctx.viewer.setMask(null);
      this.render();
      return;
    }
    if (this.ctx.z !== z) return;
    const c = document.createElement("canvas");
    c.width = bmp.width;
    c.height = bmp.height;
    const g = c.getContext("2d", { willReadFrequently: true });
    g.drawImage(bmp, 0, 0);
    this.labels = { key, data: g.getImageData(0, 0, c.width, c.height).data, w: c.width, h: c.height };
    this.paint();
    this.render();
  }

  paint() {
    const v = this.ctx.viewer;
    if (!this.labels || !this.show) {
      v.setMask(null);
      v.maskCanvas.dataset.painted = "0";
      return;
    }
    const colors = [];
    for (const cls of this.ctx.classes) colors[cls.index] = this.visible.has(cls.index) ? hexToRgb(cls.color) : null;
    const { data, w, h: hgt } = this.labels;
    const rgba = colorLabels(data, w, hgt, colors, this.outline);
    const c = document.createElement("canvas");
    c.width = w;
    c.height = hgt;
    c.getContext("2d").putImageData(new ImageData(rgba, w, hgt), 0, 0);
    v.setMask(c, this.opacity);
    // Counts per class on this slice, for the panel and for tests reading the overlay.
    const counts = {};
    for (let i = 0; i < w * hgt; i++) {
      const k = data[i * 4];
      if (k) counts[k] = (counts[k] || 0) + 1;
    }
    this.counts = counts;
    v.maskCanvas.dataset.painted = "1";
  }

  async review(status) {
    const comment = this.side.querySelector("[data-field=comment]");
    try {
      const body = { status, comment: comment ? comment.value : "" };
      const version = this.reviewState && this.reviewState.model_version_id;
      if (version) body.model_version_id = version;
      const answer = await api.put(`/api/images/${this.ctx.image.id}/review`, body);
      this.reviewState = answer;
      if (!this.model) this.ctx.image.review_status = answer.status;
      notify(`Image marked ${status}${version ? ` for ${this.versionLabel(version)}` : ""}`, "ok", 2500);
      this.render();
    } catch (err) {
      notify(err.message, "error");
    }
  }

  async nextUnreviewed() {
    try {
      const images = await api.getAll(`/api/projects/${this.ctx.project.id}/images`);
      const i = images.findIndex((im) => im.id === this.ctx.image.id);
      const order = [...images.slice(i + 1), ...images.slice(0, Math.max(i, 0))];
      const next = order.find((im) => !im.review_status);
      if (next) location.hash = `#/images/${next.id}/review`;
      else notify("Every image of this project is reviewed", "ok", 4000);
    } catch (err) {
      notify(err.message, "error");
    }
  }

  async downloadImage(format) {
    const ext = { nifti: "nii.gz", png: "png", "dicom-seg": "dcm" }[format];
    try {
      const z = format === "png" && this.ctx.geom.slices > 1 ? this.ctx.z : null; // PNG: one slice
      await api.download(`/api/images/${this.ctx.image.id}/prediction`, { format, model: this.model, z }, `${this.ctx.image.name}-mask.${ext}`);
    } catch (err) {
      notify(err.message, "error");
    }
  }

  retrain() {
    const latest = this.model ? this.models.find((m) => String(m.id) === String(this.model)) : this.models[0];
    sessionStorage.setItem("shapehint.warm-start", latest ? String(latest.id) : "");
    location.hash = `#/projects/${this.ctx.project.id}/training`;
  }

  renderHintSummary() {
    const hints = this.ctx.store.get(this.ctx.z);
    mount(
      this.summary,
      this.ctx.classes.map((c) => {
        const hint = hints[c.name];
        const s = !hint ? "no hint" : hint.present === false ? "absent" : hint.ellipse ? `${hint.hole ? "ring" : "ellipse"} ${Math.round(hint.ellipse.a)}×${Math.round(hint.ellipse.b)} px` : "intervals";
        const n = this.counts && this.labels ? this.counts[c.index] || 0 : null;
        return h("li", { style: { "--c": c.color } }, h("span", { class: "swatch" }), `${c.name}: hint ${s}`, n !== null ? ` · mask ${n} px` : "");
      }),
    );
  }

  versionLabel(id) {
    const m = this.models.find((x) => x.id === id);
    return m ? `v${m.version}` : `model ${id}`;
  }

  render() {
    const ctx = this.ctx;
    const rs = this.reviewState;
    const status = rs ? rs.status : ctx.image.review_status;
    const judged = rs && rs.model_version_id ? ` (${this.versionLabel(rs.model_version_id)})` : "";
    const modelSelect = h(
      "select",
      { "aria-label": "Model version", "data-testid": "model-select", onchange: (e) => this.selectModel(e.target.value) },
      h("option", { value: "" }, "Newest model"),
      this.models.map((m) => h("option", { value: m.id, selected: String(m.id) === String(this.model) }, `v${m.version}${m.metrics && m.metrics.dice_mean !== undefined ? ` · Dice ${Number(m.metrics.dice_mean).toFixed(3)}` : ""}`)),
    );
    const colorOf = (name) => (ctx.classes.find((c) => c.name === name) || {}).color || "#888";
    // DICOM SEG refers to the DICOM series it segments: only DICOM images have one.
    const formats = [["nifti", "NIfTI"], ["png", ctx.geom.slices > 1 ? `PNG (slice ${ctx.z + 1})` : "PNG"]];
    if (ctx.image.source_kind === "dicom") formats.push(["dicom-seg", "DICOM SEG"]);
    const reviewButton = (value, label, cls) =>
      h("button", { type: "button", class: `${cls} ${status === value ? "on" : ""}`, "aria-pressed": String(status === value), "data-testid": `review-${value}`, disabled: !ctx.canEdit(), onclick: () => this.review(value) }, label);
    const downloadButton = ([format, label]) => h("button", { type: "button", class: "secondary", "data-testid": `download-${format}`, onclick: () => this.downloadImage(format) }, label);
    this.renderHintSummary();
    mount(
      this.side,
      h("h2", {}, "Review"),
      h("p", { "data-testid": "review-status", class: `review-status ${status || "none"}` }, status ? `Status: ${status}${judged}` : `Not reviewed yet${judged}`),
      this.prediction === false ? h("p", { class: "muted", "data-testid": "no-prediction" }, this.predictionError) : null,
      h("label", {}, "Model", modelSelect),
      h(
        "fieldset",
        {},
        h("legend", {}, "Predicted mask"),
        h("label", { class: "check" }, h("input", { type: "checkbox", checked: this.show, "data-testid": "overlay-show", onchange: (e) => this.set({ show: e.target.checked }) }), "Show (O)"),
        h(
          "div",
          { class: "row" },
          h("label", { class: "check" }, h("input", { type: "radio", name: "ov-mode", checked: !this.outline, onchange: () => this.set({ outline: false }) }), "Fill"),
          h("label", { class: "check" }, h("input", { type: "radio", name: "ov-mode", checked: this.outline, "data-testid": "overlay-outline", onchange: () => this.set({ outline: true }) }), "Outline"),
        ),
        h("label", { class: "slider" }, "Opacity", h("input", { type: "range", min: 0, max: 1, step: 0.05, value: this.opacity, "data-testid": "overlay-opacity", oninput: (e) => ((this.opacity = Number(e.target.value)), this.paint()) })),
        h(
          "div",
          { class: "stack" },
          ctx.classes.map((c) =>
            h(
              "label",
              { class: "check", style: { "--c": c.color } },
              h("input", { type: "checkbox", checked: this.visible.has(c.index), "data-testid": `overlay-class-${c.name}`, onchange: (e) => (e.target.checked ? this.visible.add(c.index) : this.visible.delete(c.index), this.paint()) }),
              h("span", { class: "swatch" }),
              c.name,
            ),
          ),
        ),
      ),
      h("h3", {}, "Hints on this slice"),
      h("ul", { class: "others" }, this.summary),
      h("label", {}, "Comment", h("textarea", { rows: 2, "data-field": "comment" })),
      h("div", { class: "row wrap" }, reviewButton("accepted", "Accept", "primary"), reviewButton("rejected", "Reject", "danger"), reviewButton("needs-hints", "Needs hints", "secondary")),
      h("div", { class: "row wrap" }, h("button", { type: "button", class: "secondary", "data-testid": "next-unreviewed", onclick: () => this.nextUnreviewed() }, "Next unreviewed (N)"), h("button", { type: "button", class: "secondary", "data-testid": "retrain", onclick: () => this.retrain() }, "Retrain from this model")),
      this.quality ? warningBox(this.quality) : null,
      this.quality ? imageQuality(this.quality, ctx.image.id, colorOf) : null,
      h("h3", {}, "Download this mask"),
      h("div", { class: "row wrap" }, formats.map(downloadButton)),
      h("p", { class: "muted" }, "Where the mask is wrong: add hints in the Hints tab, then retrain."),
    );
  }
}
