// A second plane beside the slice: the volume reformatted along one image column (sagittal: rows
// across, slices down) or one image row (coronal: columns across, slices down), at the cursor's
// position, drawn to scale from the voxel spacing. Built in the browser from the slice images the
// viewer loads anyway (same window), so it needs no server support; only offered when the image
// has slices and a known spacing. The hints of every loaded slice are drawn where they cut the
// plane (a ring shows as two segments), the current slice as a line; a click picks that slice.

import { h } from "./dom.js";
import { instancesOf } from "./instances.js";
import * as geo from "./geometry.js";

const WIDTH = 280; // css px of the inset (its height follows the physical proportions)
const MAX_HEIGHT = 300;
// In a small window (1024 px: a viewer about 500 px wide) at most this part of the viewer, so the
// inset does not hide the slice it is meant to sit beside.
const MAX_SHARE_W = 0.4;
const MAX_SHARE_H = 0.45;

export class SecondPlane {
  /**
   * @param {object} ctx  the image screen's ctx (z, geom, store, classes, goSlice)
   * @param {(z: number) => Promise<ImageBitmap>} loadBitmap  slice z in the current window
   */
  constructor(ctx, loadBitmap) {
    this.ctx = ctx;
    this.loadBitmap = loadBitmap;
    this.plane = "off"; // "off" | "sagittal" | "coronal"
    this.pos = null; // column (sagittal) or row (coronal) in image px
    this.grey = new Map(); // z -> Uint8ClampedArray (H * W) of the slice in the current window
    this.windowKey = null;
    this.canvas = h("canvas", { "data-testid": "plane2-canvas" });
    this.label = h("div", { class: "plane2-label", "data-testid": "plane2-label" });
    this.el = h("div", { class: "plane2", "data-testid": "plane2", hidden: true }, this.label, this.canvas);
    this.canvas.addEventListener("click", (e) => this._click(e));
    this.loading = null;
    this.token = 0;
  }

  /** Can this image have a second plane? (slices and a physical spacing) */
  static available(geom) {
    return geom.slices > 1 && geom.physical && !!geom.zSpacing;
  }

  setPlane(plane) {
    this.plane = plane;
    this.el.hidden = plane === "off";
    if (plane !== "off") {
      if (this.pos === null) this.pos = plane === "sagittal" ? Math.floor(this.ctx.geom.width / 2) : Math.floor(this.ctx.geom.height / 2);
      this.ensureLoaded();
      this.render();
    }
  }

  /** Follow the cursor (image px) while it is on the image. */
  follow(p) {
    if (this.plane === "off" || !p) return;
    const { width, height } = this.ctx.geom;
    const v = Math.round(this.plane === "sagittal" ? p.x : p.y);
    if (v < 0 || v >= (this.plane === "sagittal" ? width : height) || v === this.pos) return;
    this.pos = v;
    this.render();
  }

  /** The window changed: slices are read again. */
  invalidate(windowKey) {
    if (windowKey === this.windowKey) return;
    this.windowKey = windowKey;
    this.grey.clear();
    this.token++;
    this.loading = null;
    if (this.plane !== "off") this.ensureLoaded();
  }

  ensureLoaded() {
    if (this.loading) return this.loading;
    const token = this.token;
    const { slices, width, height } = this.ctx.geom;
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const g = canvas.getContext("2d", { willReadFrequently: true });
    const queue = [];
    for (let z = 0; z < slices; z++) if (!this.grey.has(z)) queue.push(z);
    const worker = async () => {
      while (queue.length && token === this.token) {
        const z = queue.shift();
        const bmp = await this.loadBitmap(z);
        if (token !== this.token) return;
        g.clearRect(0, 0, width, height);
        g.drawImage(bmp, 0, 0, width, height);
        const rgba = g.getImageData(0, 0, width, height).data;
        const grey = new Uint8ClampedArray(width * height);
        for (let i = 0; i < grey.length; i++) grey[i] = rgba[i * 4];
        this.grey.set(z, grey);
        if (this.grey.size % 8 === 0 || !queue.length) this.render();
      }
    };
    this.loading = Promise.all([worker(), worker(), worker()]).then(() => {
      if (token === this.token) this.el.dataset.loaded = "1";
      this.render();
    });
    return this.loading;
  }

  /** Size of the plane: `across` image px times `slices`, in mm -> css px. */
  _layout() {
    const { slices, width, height, spacing, zSpacing } = this.ctx.geom;
    const sag = this.plane === "sagittal";
    const across = sag ? height : width;
    const acrossMm = across * (sag ? spacing[0] : spacing[1]);
    const downMm = slices * zSpacing;
    const stage = this.el.parentElement;
    const maxW = stage && stage.clientWidth ? Math.min(WIDTH, Math.max(120, stage.clientWidth * MAX_SHARE_W)) : WIDTH;
    const maxH = stage && stage.clientHeight ? Math.min(MAX_HEIGHT, Math.max(90, stage.clientHeight * MAX_SHARE_H)) : MAX_HEIGHT;
    let scale = maxW / acrossMm;
    if (downMm * scale > maxH) scale = maxH / downMm;
    return { sag, across, w: Math.max(1, Math.round(acrossMm * scale)), h: Math.max(1, Math.round(downMm * scale)) };
  }

  render() {
    if (this.plane === "off" || this.pos === null) return;
    const { slices, width } = this.ctx.geom;
    const { sag, across, w, h: hgt } = this._layout();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${hgt}px`;
    const g = this.canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#000";
    g.fillRect(0, 0, w, hgt);
    // The reformatted image: one row per slice, `across` px wide.
    const img = new ImageData(across, slices);
    for (let z = 0; z < slices; z++) {
      const grey = this.grey.get(z);
      if (!grey) continue;
      for (let i = 0; i < across; i++) {
        const v = sag ? grey[i * width + this.pos] : grey[this.pos * width + i];
        const o = (z * across + i) * 4;
        img.data[o] = img.data[o + 1] = img.data[o + 2] = v;
        img.data[o + 3] = 255;
      }
    }
    const tmp = document.createElement("canvas");
    tmp.width = across;
    tmp.height = slices;
    tmp.getContext("2d").putImageData(img, 0, 0);
    g.imageSmoothingEnabled = false;
    g.drawImage(tmp, 0, 0, w, hgt);
    const fx = w / across;
    const fz = hgt / slices;
    // Hints where they cut the plane: one segment per run of inside samples.
    if (this.ctx.showHints) {
      for (let z = 0; z < slices; z++) {
        const hints = this.ctx.store.get(z);
        for (const cls of this.ctx.classes) {
          const list = instancesOf(hints[cls.name]);
          if (!list.length) continue;
          g.fillStyle = cls.color;
          for (const it of list) {
            for (const [a, b] of cut(it, this.pos, sag, across)) g.fillRect(a * fx, (z + 0.3) * fz, Math.max(1, (b - a) * fx), Math.max(2, 0.4 * fz));
          }
        }
      }
    }
    // The current slice.
    g.strokeStyle = "#ffd700";
    g.lineWidth = 1;
    g.strokeRect(0.5, this.ctx.z * fz + 0.5, w - 1, Math.max(1, fz - 1));
    this.label.textContent = `${sag ? "Sagittal" : "Coronal"} · ${sag ? "column" : "row"} ${this.pos} · slice 1 at the top`;
    this.el.dataset.pos = String(this.pos);
    this.el.dataset.z = String(this.ctx.z);
  }

  _click(e) {
    const r = this.canvas.getBoundingClientRect();
    const z = Math.floor(((e.clientY - r.top) / r.height) * this.ctx.geom.slices);
    if (z >= 0 && z < this.ctx.geom.slices) this.ctx.goSlice(z);
  }
}

/**
 * Where instance `it` (outline minus hole) crosses column `pos` (sagittal: along y) or row `pos`
 * (coronal: along x): [[from, to], ...] in image px along the plane.
 */
export function cut(it, pos, sagittal, across) {
  const e = it.ellipse;
  const r = Math.max(e.a, e.b);
  const c = sagittal ? e.cy : e.cx;
  const runs = [];
  let start = null;
  const lo = Math.max(0, Math.floor(c - r) - 1);
  const hi = Math.min(across, Math.ceil(c + r) + 1);
  for (let t = lo; t <= hi; t += 0.25) {
    const p = sagittal ? { x: pos, y: t } : { x: t, y: pos };
    const inside = geo.contains(e, p) && !(it.hole && geo.contains(it.hole, p));
    if (inside && start === null) start = t;
    if (!inside && start !== null) {
      runs.push([start + 0.5, t + 0.5]);
      start = null;
    }
  }
  if (start !== null) runs.push([start + 0.5, hi + 0.5]);
  return runs;
}
