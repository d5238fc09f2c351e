// Mask editing in Review: brush, eraser and fill on the predicted label map of a slice, per
// class, with undo/redo; the corrected slice can be saved as a reference mask (PUT
// /api/images/{id}/reference/slices/{z}), which a training with use_reference_masks learns from.
// Pure label-map helpers are exported for tests; MaskTool is the viewer tool.

/** Paint a disc of `radius` px around (x, y): value `label` (brush) or, with `erase`, 0 where
 * the pixel holds `label` (an eraser removes the selected class only). Returns changed count. */
export function paintDisc(labels, w, hgt, x, y, radius, label, erase) {
  const r = Math.max(0, radius);
  const cx = Math.round(x);
  const cy = Math.round(y);
  const ri = Math.ceil(r);
  let n = 0;
  for (let yy = Math.max(0, cy - ri); yy <= Math.min(hgt - 1, cy + ri); yy++) {
    for (let xx = Math.max(0, cx - ri); xx <= Math.min(w - 1, cx + ri); xx++) {
      if ((xx - cx) ** 2 + (yy - cy) ** 2 > r * r + 0.25) continue;
      const i = yy * w + xx;
      if (erase) {
        if (labels[i] === label) {
          labels[i] = 0;
          n++;
        }
      } else if (labels[i] !== label) {
        labels[i] = label;
        n++;
      }
    }
  }
  return n;
}

/** Paint discs along the segment a -> b (a brush stroke between two pointer events). */
export function paintLine(labels, w, hgt, a, b, radius, label, erase) {
  const steps = Math.max(1, Math.ceil(Math.hypot(b.x - a.x, b.y - a.y) / Math.max(0.5, radius / 2)));
  let n = 0;
  for (let s = 0; s <= steps; s++) {
    const t = s / steps;
    n += paintDisc(labels, w, hgt, a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, radius, label, erase);
  }
  return n;
}

/**
 * Fill inside a contour of `label`: the 4-connected region around (x, y) of pixels that are not
 * `label` becomes `label`. A region that reaches the image border is not enclosed: nothing
 * changes and -1 is returned. Returns the filled count otherwise (0 on a pixel of `label`).
 */
export function fillInside(labels, w, hgt, x, y, label) {
  const sx = Math.round(x);
  const sy = Math.round(y);
  if (sx < 0 || sy < 0 || sx >= w || sy >= hgt || labels[sy * w + sx] === label) return 0;
  const seen = new Uint8Array(w * hgt);
  const stack = [sy * w + sx];
  const region = [];
  seen[stack[0]] = 1;
  while (stack.length) {
    const i = stack.pop();
    region.push(i);
    const px = i % w;
    const py = (i - px) / w;
    if (px === 0 || py === 0 || px === w - 1 || py === hgt - 1) return -1;
    for (const j of [i - 1, i + 1, i - w, i + w]) {
      if (!seen[j] && labels[j] !== label) {
        seen[j] = 1;
        stack.push(j);
      }
    }
  }
  for (const i of region) labels[i] = label;
  return region.length;
}

/** Grey RGBA pixels (R = G = B = label, opaque) of a label map: what a canvas can encode as PNG
 * and the server reads back as labels. */
export function labelsToRgba(labels) {
  const out = new Uint8ClampedArray(labels.length * 4);
  for (let i = 0; i < labels.length; i++) {
    out[i * 4] = out[i * 4 + 1] = out[i * 4 + 2] = labels[i];
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** The viewer tool for brush / eraser / fill; `panel` is the ReviewPanel that owns the labels. */
export class MaskTool {
  constructor(ctx, panel, kind) {
    this.ctx = ctx;
    this.panel = panel;
    this.kind = kind; // "brush" | "eraser" | "fill"
    this.last = null;
    this.hoverAt = null;
  }

  classIndex() {
    const cls = this.ctx.classes.find((c) => c.name === this.ctx.cls);
    return cls ? cls.index : null;
  }

  down(p) {
    const label = this.classIndex();
    const edit = this.panel.editable();
    if (!edit || label === null || !this.ctx.canEdit()) return false;
    this.panel.beginEdit();
    if (this.kind === "fill") {
      const n = fillInside(edit.labels, edit.w, edit.h, p.x, p.y, label);
      if (n < 0) this.ctx.notify(`Not inside a closed ${this.ctx.cls} contour: nothing filled`, "info", 3500);
      this.panel.endEdit(n > 0);
      return false;
    }
    this.last = p;
    this.changed = paintDisc(edit.labels, edit.w, edit.h, p.x, p.y, this.ctx.brushSize, label, this.kind === "eraser") > 0;
    this.panel.repaint();
    return true;
  }

  move(p) {
    const edit = this.panel.editable();
    if (!this.last || !edit) return;
    if (paintLine(edit.labels, edit.w, edit.h, this.last, p, this.ctx.brushSize, this.classIndex(), this.kind === "eraser")) this.changed = true;
    this.last = p;
    this.panel.repaint();
  }

  up() {
    if (!this.last) return;
    this.last = null;
    this.panel.endEdit(this.changed);
  }

  hover(p) {
    this.hoverAt = p;
    this.ctx.redraw();
    return this.kind === "fill" ? "cell" : "crosshair";
  }

  /** The brush outline under the cursor (drawn on the hint layer). */
  draw(g, viewer) {
    if (this.kind === "fill" || !this.hoverAt) return;
    const s = viewer.toScreen(this.hoverAt.x, this.hoverAt.y);
    g.beginPath();
    g.arc(s.x, s.y, Math.max(1, (this.ctx.brushSize + 0.5) * viewer.scale), 0, Math.PI * 2);
    g.strokeStyle = this.kind === "eraser" ? "#fff" : this.ctx.colorOf(this.ctx.cls);
    g.setLineDash(this.kind === "eraser" ? [4, 3] : []);
    g.lineWidth = 1.5;
    g.stroke();
    g.setLineDash([]);
  }
}
