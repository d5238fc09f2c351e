// Review mode: the predicted label map over the image (fill or outline, opacity, per-class
// toggles), the hints beside it, accept / reject / needs-hints, next unreviewed image, downloads,
// and retraining from the current model.

import * as api from "./api.js";
import { h, hexToRgb, mount, notify } from "./dom.js";
import { labelsToRgba } from "./maskedit.js";
import { imageQuality, warningBox } from "./quality.js";

/**
 * Colour an RGBA label image (label k in the red channel) into an overlay.
 * labels: Uint8ClampedArray RGBA of size w*h*4; colors: [[r,g,b] | null] indexed by label
 * (null = hidden); outline: keep only pixels with a 4-neighbour of another label.
 * Returns an ImageData-ready Uint8ClampedArray.
 */
export function colorLabels(labels, w, hgt, colors, outline, stride = 4) {
  const out = new Uint8ClampedArray(w * hgt * 4);
  const at = (x, y) => labels[(y * w + x) * stride];
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

/** True when a label PNG (as a bitmap) has any non-zero label. */
function hasLabel(bmp) {
  const c = document.createElement("canvas");
  c.width = bmp.width;
  c.height = bmp.height;
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(bmp, 0, 0);
  const data = g.getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < data.length; i += 4) if (data[i]) return true;
  return false;
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
    this.edits = new Map(); // "z|model" -> {labels: Uint8Array, w, h, undo, redo, dirty}
    this.referenceSlices = new Set(); // slices stored as reference mask ("all" = uploaded volume)
    this.referenceAll = false;
    this.predictedSlices = new Map(); // z -> the prediction has a class there (slice strip)
    this.scanToken = 0;
  }

  destroy() {}

  async init() {
    try {
      this.models = api.items(await api.get(`/api/projects/${this.ctx.project.id}/models`));
    } catch (err) {
      notify(err.message, "error");
    }
    await Promise.all([this.loadReview(), this.loadReference()]);
    this.render();
  }

  /** Which slices of the image have a reference mask (uploaded volume: all of them). */
  async loadReference() {
    try {
      // Answers 200 without a reference too (a 404 would be console noise on every image).
      const ref = await api.get(`/api/images/${this.ctx.image.id}/reference/slices`);
      this.referenceAll = ref.exists && (ref.slices === null || ref.slices === undefined);
      this.referenceSlices = new Set(ref.slices || []);
    } catch (err) {
      this.referenceAll = false;
      this.referenceSlices = new Set();
      notify(err.message, "error");
    }
    if (this.ctx.refreshStrip) this.ctx.refreshStrip();
  }

  isReference(z) {
    return this.referenceAll || this.referenceSlices.has(z);
  }

  // ---- mask editing (brush / eraser / fill act on a copy of the slice's labels)

  /** The editable label map of the shown slice (created from the prediction on first use). */
  editable() {
    if (!this.labels) return null;
    let edit = this.edits.get(this.labels.key);
    if (!edit) {
      const { data, w, h: hgt } = this.labels;
      const labels = new Uint8Array(w * hgt);
      for (let i = 0; i < labels.length; i++) labels[i] = data[i * 4];
      edit = { labels, w, h: hgt, undo: [], redo: [], dirty: false };
      this.edits.set(this.labels.key, edit);
    }
    return edit;
  }

  beginEdit() {
    const edit = this.editable();
    edit.undo.push(edit.labels.slice());
    if (edit.undo.length > 50) edit.undo.shift();
    edit.redo = [];
  }

  endEdit(changed) {
    const edit = this.editable();
    if (!changed) edit.undo.pop();
    else edit.dirty = true;
    this.repaint();
    this.render();
  }

  undo() {
    const edit = this.labels && this.edits.get(this.labels.key);
    if (!edit || !edit.undo.length) return;
    edit.redo.push(edit.labels);
    edit.labels = edit.undo.pop();
    edit.dirty = true;
    this.repaint();
    this.render();
  }

  redo() {
    const edit = this.labels && this.edits.get(this.labels.key);
    if (!edit || !edit.redo.length) return;
    edit.undo.push(edit.labels);
    edit.labels = edit.redo.pop();
    edit.dirty = true;
    this.repaint();
    this.render();
  }

  repaint() {
    this.paint();
    this.renderHintSummary();
  }

  /** Save the shown slice's (corrected) mask as the image's reference mask for this slice. */
  async useAsReference() {
    if (!this.labels) return;
    const z = this.ctx.z;
    const edit = this.editable();
    const c = document.createElement("canvas");
    c.width = edit.w;
    c.height = edit.h;
    c.getContext("2d").putImageData(new ImageData(labelsToRgba(edit.labels), edit.w, edit.h), 0, 0);
    const blob = await new Promise((resolve) => c.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("file", blob, `slice-${z}.png`);
    try {
      const ref = await api.request("PUT", `/api/images/${this.ctx.image.id}/reference/slices/${z}`, { form });
      this.referenceAll = ref.slices === null || ref.slices === undefined;
      this.referenceSlices = new Set(ref.slices || []);
      edit.dirty = false;
      notify(`Slice ${z + 1} saved as reference mask: a training with "reference masks" ticked learns from it`, "ok", 4000);
    } catch (err) {
      notify(err.message, "error");
    }
    if (this.ctx.refreshStrip) this.ctx.refreshStrip();
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
    this.scanPredictions();
  }

  /** Which slices have a predicted class (for the slice strip): every slice's label PNG, read
   * in the background (volumes of up to 96 slices; larger ones mark the slices seen). */
  async scanPredictions() {
    const token = ++this.scanToken;
    this.predictedSlices = new Map();
    this.predictionsScanned = false;
    const n = this.ctx.geom.slices;
    if (n < 2 || n > 96 || this.prediction === false) return this.ctx.refreshStrip && this.ctx.refreshStrip();
    for (let z = 0; z < n; z++) {
      let bmp;
      try {
        bmp = await api.loadImage(`/api/images/${this.ctx.image.id}/prediction`, { format: "png", z, model: this.model });
      } catch {
        return;
      }
      if (token !== this.scanToken) return;
      this.predictedSlices.set(z, hasLabel(bmp));
      this.predictionsScanned = z === n - 1;
      if (z % 8 === 7 || z === n - 1) this.ctx.refreshStrip();
    }
  }

  shortcuts() {
    return [
      { keys: "O", match: ["o"], label: "Show / hide predicted mask", run: () => this.set({ show: !this.show }) },
      { keys: "F", match: ["f"], label: "Fill / outline", run: () => this.set({ outline: !this.outline }) },
      { keys: "Shift+A", match: ["shift+a"], label: "Accept image", run: () => this.review("accepted") },
      { keys: "Shift+R", match: ["shift+r"], label: "Reject image", run: () => this.review("rejected") },
      { keys: "Shift+H", match: ["shift+h"], label: "Needs hints", run: () => this.review("needs-hints") },
      { keys: "N", match: ["n"], label: "Next unreviewed image", run: () => this.nextUnreviewed() },
      { keys: "B", match: ["b"], label: "Brush: paint the selected class on the mask", run: () => this.ctx.actions.setTool("brush") },
      { keys: "X", match: ["x"], label: "Eraser: remove the selected class from the mask", run: () => this.ctx.actions.setTool("eraser") },
      { keys: "G", match: ["g"], label: "Fill inside a contour of the selected class", run: () => this.ctx.actions.setTool("fill") },
      { keys: "[", match: ["["], label: "Brush size − 1", run: () => this.ctx.setBrushSize(this.ctx.brushSize - 1) },
      { keys: "]", match: ["]"], label: "Brush size + 1", run: () => this.ctx.setBrushSize(this.ctx.brushSize + 1) },
      { keys: "Ctrl+Z", match: ["ctrl+z"], label: "Undo a mask edit", run: () => this.undo() },
      { keys: "Ctrl+Shift+Z / Ctrl+Y", match: ["ctrl+shift+z", "ctrl+y"], label: "Redo a mask edit", run: () => this.redo() },
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
    this.predictedSlices.set(z, this.labels.data.some((v, i) => i % 4 === 0 && v > 0));
    if (this.ctx.refreshStrip) this.ctx.refreshStrip();
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
    const edit = this.edits.get(this.labels.key);
    const { w, h: hgt } = this.labels;
    const [data, stride] = edit ? [edit.labels, 1] : [this.labels.data, 4];
    const rgba = colorLabels(data, w, hgt, colors, this.outline, stride);
    const c = document.createElement("canvas");
    c.width = w;
    c.height = hgt;
    c.getContext("2d").putImageData(new ImageData(rgba, w, hgt), 0, 0);
    v.setMask(c, this.opacity);
    // Counts per class on this slice, for the panel and for tests reading the overlay.
    const counts = {};
    for (let i = 0; i < w * hgt; i++) {
      const k = data[i * stride];
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
        const s = !hint ? "no hint" : hint.present === false ? "absent" : hint.instances ? `${hint.instances.length} instances` : hint.ellipse ? `${hint.hole ? "ring" : "ellipse"} ${Math.round(hint.ellipse.a)}×${Math.round(hint.ellipse.b)} px` : "intervals";
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
      this.renderEditor(),
      h("h3", {}, "Hints on this slice"),
      h("ul", { class: "others" }, this.summary),
      h("label", {}, "Comment", h("textarea", { rows: 2, "data-field": "comment" })),
      h("div", { class: "row wrap" }, reviewButton("accepted", "Accept", "primary"), reviewButton("rejected", "Reject", "danger"), reviewButton("needs-hints", "Needs hints", "secondary")),
      h("div", { class: "row wrap" }, h("button", { type: "button", class: "secondary", "data-testid": "next-unreviewed", onclick: () => this.nextUnreviewed() }, "Next unreviewed (N)"), h("button", { type: "button", class: "secondary", "data-testid": "retrain", onclick: () => this.retrain() }, "Retrain from this model")),
      this.quality ? warningBox(this.quality) : null,
      this.quality ? imageQuality(this.quality, ctx.image.id, colorOf) : null,
      h("h3", {}, "Download this mask"),
      h("div", { class: "row wrap" }, formats.map(downloadButton)),
      h("p", { class: "muted" }, "Where the mask is wrong: correct it with the brush and save it as a reference, or add hints in the Hints tab; then retrain."),
    );
  }

  /** Mask correction: undo / redo and "use as reference" for the shown slice. */
  renderEditor() {
    const ctx = this.ctx;
    const edit = this.labels && this.edits.get(this.labels.key);
    const slice = ctx.geom.slices > 1 ? `slice ${ctx.z + 1}` : "this image";
    const state = !this.labels
      ? ""
      : edit && edit.dirty
        ? `Edited: ${slice} is not saved as reference yet`
        : this.isReference(ctx.z)
          ? `${slice[0].toUpperCase()}${slice.slice(1)} has a reference mask`
          : "Brush (B), eraser (X) or fill (G) with the class selected on the left";
    const can = ctx.canEdit() && !!this.labels;
    return h(
      "fieldset",
      { "data-testid": "mask-editor" },
      h("legend", {}, "Correct the mask"),
      h("p", { class: `muted reference-state ${edit && edit.dirty ? "dirty" : ""}`, "data-testid": "reference-state" }, state),
      h(
        "div",
        { class: "row wrap" },
        h("button", { type: "button", class: "secondary", "data-testid": "mask-undo", disabled: !edit || !edit.undo.length, onclick: () => this.undo() }, "Undo"),
        h("button", { type: "button", class: "secondary", "data-testid": "mask-redo", disabled: !edit || !edit.redo.length, onclick: () => this.redo() }, "Redo"),
        h("button", { type: "button", class: "primary", "data-testid": "use-as-reference", disabled: !can, title: "Store this slice's mask as a reference mask: the next training with reference masks ticked learns from it", onclick: () => this.useAsReference() }, "Use as reference"),
      ),
    );
  }
}
