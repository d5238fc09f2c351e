// Hint tools on the viewer (ellipse with handles, its hole with the same handles, centroid
// click) and the drawing of every class's hints on the hint canvas. Tools talk to the screen through `ctx` (see imagepage/state.js):
// ctx.z, ctx.cls, ctx.store, ctx.tolerance, ctx.radius, ctx.colorOf(cls), ctx.redraw().

import * as geo from "./geometry.js";
import * as inst from "./instances.js";

const HANDLE_PX = 7; // handle half-size on screen (css px)
const ROT_OFFSET_PX = 24; // rotation handle distance beyond the a-axis end (css px)

/** Hint of the selected class with its ellipse(s), or null. */
function currentEllipse(ctx) {
  const hint = ctx.store.get(ctx.z)[ctx.cls];
  return inst.hasEllipse(hint) ? hint : null;
}

/** Index of the selected instance of the selected class (clamped to what the hint has). */
export function selectedInstance(ctx, hint = ctx.store.get(ctx.z)[ctx.cls]) {
  const n = inst.instancesOf(hint).length;
  return Math.max(0, Math.min(ctx.instance || 0, n - 1));
}

/**
 * Draws and edits one ellipse of the selected instance of the selected class: `field` "ellipse"
 * (the outline) or "hole" (an inner ellipse cut out of it, making the instance a ring; needs the
 * ellipse first). A class may have several instances on a slice (two polyps): a drag inside
 * another instance selects and moves it; after "Add instance" (N) the next drag on empty image
 * adds one, else a drag on empty image redraws the selected instance.
 */
export class EllipseTool {
  constructor(ctx, field = "ellipse") {
    this.ctx = ctx;
    this.field = field;
    this.drag = null; // {kind: "new" | handle name, start, grab, ellipse, index, add}
    this.preview = null; // ellipse being edited (image px) or null
  }

  /** The ellipse this tool edits on the selected class, or null. */
  target() {
    const hint = currentEllipse(this.ctx);
    if (!hint) return null;
    const list = inst.instancesOf(hint);
    return list[selectedInstance(this.ctx, hint)][this.field] || null;
  }

  /** Which handle (or "move") of the selected instance is under image point p. */
  hit(p) {
    const el = this.target();
    if (!el) return null;
    const v = this.ctx.viewer;
    const hs = geo.handles(el, ROT_OFFSET_PX / v.scale);
    const tol = (HANDLE_PX + 2) / v.scale;
    for (const name of ["rot", "a1", "a2", "b1", "b2"]) {
      if (Math.abs(hs[name].x - p.x) <= tol && Math.abs(hs[name].y - p.y) <= tol) return name;
    }
    return geo.contains(el, p) ? "move" : null;
  }

  /** Another instance of the class whose edited ellipse contains p (to select it), or -1. */
  otherAt(p) {
    const hint = currentEllipse(this.ctx);
    if (!hint) return -1;
    const sel = selectedInstance(this.ctx, hint);
    let best = -1;
    inst.instancesOf(hint).forEach((it, i) => {
      const el = it[this.field];
      if (i !== sel && el && geo.contains(el, p) && (best < 0 || geo.area(el) < geo.area(inst.instancesOf(hint)[best][this.field]))) best = i;
    });
    return best;
  }

  hover(p) {
    if (this.field === "hole" && !currentEllipse(this.ctx)) return "not-allowed";
    if (this.ctx.addInstance) return "copy";
    const which = this.hit(p) || (this.otherAt(p) >= 0 ? "move" : null);
    return { move: "move", rot: "alias", a1: "ew-resize", a2: "ew-resize", b1: "ns-resize", b2: "ns-resize" }[which] || "crosshair";
  }

  down(p, e) {
    if (e.button !== 0 || !this.ctx.canEdit()) return false;
    // A hole is cut out of the class's ellipse: without one there is nothing to cut.
    if (this.field === "hole" && !currentEllipse(this.ctx)) return false;
    const add = !!this.ctx.addInstance && this.field === "ellipse";
    let which = add ? null : this.hit(p);
    if (!which && !add) {
      // A press inside another instance selects it (and moves it, if dragged).
      const other = this.otherAt(p);
      if (other >= 0) {
        this.ctx.selectInstance(other);
        which = "move";
      }
    }
    const el = this.target();
    const index = selectedInstance(this.ctx);
    if (which && el) {
      this.drag = { kind: which, grab: { x: p.x - el.cx, y: p.y - el.cy }, ellipse: { ...el }, index };
    } else {
      this.drag = { kind: "new", start: p, index, add };
    }
    this.preview = null;
    return true;
  }

  move(p, e) {
    const d = this.drag;
    if (!d) return;
    if (d.kind === "new") {
      let end = p;
      if (e && e.shiftKey) {
        // Shift: a circle (equal semi-axes), as in most drawing tools.
        const s = Math.max(Math.abs(p.x - d.start.x), Math.abs(p.y - d.start.y));
        end = { x: d.start.x + Math.sign(p.x - d.start.x || 1) * s, y: d.start.y + Math.sign(p.y - d.start.y || 1) * s };
      }
      d.end = end;
      this.preview = geo.ellipseFromDrag(d.start, end);
    } else {
      this.preview = geo.dragHandle(d.ellipse, d.kind, p, d.grab);
    }
    this.ctx.redraw();
  }

  up() {
    const d = this.drag;
    this.drag = null;
    let el = this.preview;
    this.preview = null;
    if (!d || !el) return this.ctx.redraw();
    if (d.kind === "new" && (el.a < 1 || el.b < 1)) return this.ctx.redraw(); // a click, not a drag
    const { ctx } = this;
    const hints = ctx.store.get(ctx.z);
    const old = hints[ctx.cls];
    if (this.field === "hole" && !currentEllipse(ctx)) return ctx.redraw(); // undone meanwhile
    if (d.add) ctx.addInstance = false;
    let snapped = null;
    if (d.kind === "new") {
      // A new contour drawn over another class's matching one becomes that contour, linked:
      // the Myo hole onto the LV outline, the LV outline onto the Myo hole.
      snapped = inst.snapTarget(hints, ctx.cls, this.field, el);
      if (snapped) el = { ...snapped.ellipse };
    }
    const count = inst.instancesOf(old).length;
    if (d.add && count >= inst.MAX_INSTANCES) {
      if (ctx.notify) ctx.notify(`${ctx.cls}: at most ${inst.MAX_INSTANCES} instances on a slice`, "error", 5000);
      return ctx.redraw();
    }
    // Through the store like every edit: one undo step, autosaved, refusals shown in the panel.
    const label = d.add ? "add instance" : d.kind === "new" ? `draw ${this.field}` : `${this.field} ${d.kind}`;
    ctx.store.setClass(ctx.z, ctx.cls, this.edited(old, d, el), { label });
    if (d.add) ctx.selectInstance(count);
    if (snapped && ctx.notify) {
      const what = snapped.field === "hole" ? `${snapped.cls}'s hole` : `${snapped.cls}'s outline`;
      ctx.notify(`${ctx.cls}: the ${this.field === "hole" ? "hole" : "ellipse"} snapped to ${what}; they are one contour now (Unlink in the panel)`, "ok", 5000);
    } else if (d.kind === "new" && !d.add && count === 1 && old[this.field] && ctx.notify) {
      // A plain drag redraws the class's ellipse, and says so.
      ctx.notify(`${ctx.cls}: the ${this.field === "hole" ? "hole" : "ellipse"} was replaced (Ctrl+Z brings the old one back; N or "Add instance" draws a second one)`, "info", 5000);
    }
  }

  /** The class's hint after drag `d` made `el`; the preview draws exactly what up() stores. */
  edited(old, d, el) {
    const list = inst.instancesOf(old);
    const i = Math.min(d.index, list.length - 1);
    // The hole's size is checked by the server (smaller than the ellipse), whose refusal shows.
    if (this.field === "hole") {
      list[i] = { ...list[i], hole: el };
      return inst.withInstances(old, list, this.ctx.tolerance);
    }
    if (d.add && list.length) {
      list.push({ ellipse: el });
      return inst.withInstances(old, list, this.ctx.tolerance);
    }
    if (d.kind === "new" && list.length > 1) {
      // Several instances: a fresh drag redraws only the selected one.
      list[i] = { ellipse: el };
      return inst.withInstances(old, list, this.ctx.tolerance);
    }
    // A fresh drag replaces the class's hint; a handle edit keeps its other fields.
    const base = d.kind === "new" || !old || old.present === false ? {} : { ...old };
    if (!list.length || d.kind === "new") return { present: true, ellipse: el, tolerance: base.tolerance ?? this.ctx.tolerance };
    // Moving an outline carries its hole along so the ring keeps its shape; resizing or turning
    // the outline leaves the hole where the user put it.
    const moved = { ...list[i], ellipse: el };
    if (d.kind === "move" && list[i].hole) moved.hole = geo.shifted(list[i].hole, el.cx - d.ellipse.cx, el.cy - d.ellipse.cy);
    list[i] = moved;
    return inst.withInstances(base, list, this.ctx.tolerance);
  }

  /** `hint` as it will be once the drag in progress ends (what drawHints shows). */
  previewHint(hint) {
    return this.drag && this.preview ? this.edited(hint, this.drag, this.preview) : hint;
  }

  /** The slice's hints as they will be once the drag ends, linked contours included. */
  previewSlice(hints) {
    if (!this.drag || !this.preview) return hints;
    const next = { ...hints, [this.ctx.cls]: this.previewHint(hints[this.ctx.cls]) };
    return inst.propagateLinks(hints, next, this.ctx.cls);
  }
}

export class CentroidTool {
  constructor(ctx) {
    this.ctx = ctx;
  }

  hover() {
    return "crosshair";
  }

  down(p, e) {
    if (e.button !== 0 || !this.ctx.canEdit()) return false;
    const old = this.ctx.store.get(this.ctx.z)[this.ctx.cls];
    const base = !old || old.present === false ? {} : { ...old };
    const r = this.ctx.radius;
    // Centroid boxes live in the hint's unit system; clicks are in px, so a mm hint gets px clicks
    // converted by the caller's unit only when the hint is px (the default).
    const hint = { ...base, present: true, centroid: geo.centroidHint(p, r) };
    if (hint.unit === "mm") {
      const [row, col] = this.ctx.spacing;
      hint.centroid = { x: [geo.r2((p.x - r) * col), geo.r2((p.x + r) * col)], y: [geo.r2((p.y - r) * row), geo.r2((p.y + r) * row)] };
    }
    this.ctx.store.setClass(this.ctx.z, this.ctx.cls, hint, { label: "centroid click" });
    return true;
  }
}

/**
 * Draw every class's hints of slice z; the selected instance of the selected class gets handles.
 * With several instances each carries its number; a contour two classes share (linked) is drawn
 * dashed in both colours with a link mark.
 */
export function drawHints(g, viewer, ctx, tool) {
  if (!ctx.showHints) return;
  let hints = ctx.store.get(ctx.z);
  if (tool && tool.previewSlice) hints = tool.previewSlice(hints);
  const absent = [];
  for (const cls of ctx.classes) {
    const hint = hints[cls.name];
    const selected = cls.name === ctx.cls;
    if (!hint) continue;
    const color = cls.color;
    if (hint.present === false) {
      absent.push(cls);
      continue;
    }
    g.lineWidth = selected ? 2 : 1.5;
    g.strokeStyle = color;
    const list = inst.instancesOf(hint);
    const sel = selected ? selectedInstance(ctx, hint) : -1;
    list.forEach((it, i) => {
      // Handles go on what the tool edits: the hole with the hole tool, else the outline.
      drawEllipseHint(g, viewer, { ...it, tolerance: hint.tolerance }, color, i === sel ? (tool && tool.field) || "ellipse" : null);
      if (list.length > 1) drawLabel(g, viewer, it.ellipse, String(i + 1), color);
    });
    if (hint.centroid && hint.centroid.x && hint.centroid.y) {
      // Centroid boxes in mm are drawn in px: x scales with the column spacing, y with the row's.
      const [row, col] = hint.unit === "mm" ? ctx.spacing : [1, 1];
      const scale = (iv, f) => iv.map((v) => (v === null || v === undefined ? v : v / f));
      drawCentroidBox(g, viewer, { x: scale(hint.centroid.x, col), y: scale(hint.centroid.y, row) }, color);
    }
  }
  drawLinks(g, viewer, ctx, hints);
  // "Absent" badges in the top-left corner, one per class.
  g.font = "13px system-ui, sans-serif";
  absent.forEach((cls, i) => {
    const text = `${cls.name}: absent`;
    const w = g.measureText(text).width + 12;
    g.fillStyle = "rgba(0,0,0,0.65)";
    g.fillRect(8, 8 + i * 22, w, 19);
    g.fillStyle = cls.color;
    g.fillText(text, 14, 22 + i * 22);
  });
}

/** Instance number as a tag in the class's colour at the upper left of the outline. */
function drawLabel(g, viewer, el, text, color) {
  const t = geo.pointAt(el, (-3 * Math.PI) / 4);
  const c = viewer.toScreen(t.x, t.y);
  g.save();
  g.setLineDash([]);
  g.font = "bold 13px system-ui, sans-serif";
  const w = g.measureText(text).width + 8;
  g.fillStyle = color;
  g.fillRect(c.x - w, c.y - 17, w, 17);
  g.fillStyle = "#fff";
  g.strokeStyle = "rgba(0,0,0,0.6)";
  g.lineWidth = 3;
  g.strokeText(text, c.x - w + 4, c.y - 4);
  g.fillText(text, c.x - w + 4, c.y - 4);
  g.restore();
}

/** Shared contours: the second class's colour dashed over the first, and a link mark on top. */
function drawLinks(g, viewer, ctx, hints) {
  const all = inst.contours(hints);
  const done = new Set();
  all.forEach((c, i) => {
    for (let j = i + 1; j < all.length; j++) {
      const o = all[j];
      if (o.cls === c.cls || done.has(j) || !inst.sameEllipse(c.ellipse, o.ellipse)) continue;
      done.add(j);
      // One contour in both classes' colours: alternating dashes.
      g.save();
      g.lineWidth = 2.5;
      g.setLineDash([]);
      g.strokeStyle = ctx.colorOf(c.cls);
      g.beginPath();
      ellipsePath(g, viewer, c.ellipse);
      g.stroke();
      g.strokeStyle = ctx.colorOf(o.cls);
      g.setLineDash([7, 7]);
      g.beginPath();
      ellipsePath(g, viewer, c.ellipse);
      g.stroke();
      g.restore();
      // A chain mark (two rings) where the contour is topmost.
      const top = geo.pointAt(c.ellipse, -Math.PI / 2);
      const s = viewer.toScreen(top.x, top.y);
      g.save();
      g.lineWidth = 2;
      for (const [dx, col] of [[-3, ctx.colorOf(c.cls)], [3, ctx.colorOf(o.cls)]]) {
        g.strokeStyle = col;
        g.beginPath();
        g.arc(s.x + dx, s.y, 4, 0, 2 * Math.PI);
        g.stroke();
      }
      g.restore();
    }
  });
}

/**
 * An ellipse hint: the outline solid; with a hole, the hole dashed and the ring between them
 * filled lightly (a filled ellipse is never filled, so a ring stands out). `handlesOn` names the
 * ellipse ("ellipse" | "hole") that gets handles and the tolerance band, or null.
 */
function drawEllipseHint(g, viewer, hint, color, handlesOn) {
  const hole = hint.hole;
  if (hole) fillRing(g, viewer, hint.ellipse, hole, color);
  drawEllipse(g, viewer, hint.ellipse, color, handlesOn === "ellipse", hint.tolerance);
  if (hole) drawEllipse(g, viewer, hole, color, handlesOn === "hole", hint.tolerance, [7, 4]);
}

/** Start a closed ellipse subpath (no line joins it to the previous subpath). */
function ellipsePath(g, viewer, el) {
  const c = viewer.toScreen(el.cx, el.cy);
  const rx = Math.max(el.a * viewer.scale, 0.5);
  const rad = (el.angle * Math.PI) / 180;
  g.moveTo(c.x + rx * Math.cos(rad), c.y + rx * Math.sin(rad)); // where the arc starts
  g.ellipse(c.x, c.y, rx, Math.max(el.b * viewer.scale, 0.5), rad, 0, 2 * Math.PI);
}

function fillRing(g, viewer, outer, inner, color) {
  g.save();
  g.globalAlpha = 0.22;
  g.fillStyle = color;
  g.beginPath();
  ellipsePath(g, viewer, outer);
  ellipsePath(g, viewer, inner);
  // Even-odd: the hole stays unfilled whatever the direction of either path.
  g.fill("evenodd");
  g.restore();
}

function drawEllipse(g, viewer, el, color, selected, tolerance, dash = []) {
  const c = viewer.toScreen(el.cx, el.cy);
  const rad = (el.angle * Math.PI) / 180;
  g.beginPath();
  ellipsePath(g, viewer, el);
  g.setLineDash(dash);
  g.stroke();
  g.setLineDash([]);
  if (tolerance && selected) {
    // The tolerance band: the drawing may be off by this fraction of each semi-axis.
    g.save();
    g.setLineDash([4, 4]);
    g.globalAlpha = 0.6;
    for (const f of [1 - tolerance, 1 + tolerance]) {
      g.beginPath();
      g.ellipse(c.x, c.y, el.a * f * viewer.scale, el.b * f * viewer.scale, rad, 0, 2 * Math.PI);
      g.stroke();
    }
    g.restore();
  }
  // Centre cross.
  g.beginPath();
  g.moveTo(c.x - 4, c.y);
  g.lineTo(c.x + 4, c.y);
  g.moveTo(c.x, c.y - 4);
  g.lineTo(c.x, c.y + 4);
  g.stroke();
  if (!selected) return;
  const hs = geo.handles(el, ROT_OFFSET_PX / viewer.scale);
  const a1 = viewer.toScreen(hs.a1.x, hs.a1.y);
  const rot = viewer.toScreen(hs.rot.x, hs.rot.y);
  g.beginPath();
  g.moveTo(a1.x, a1.y);
  g.lineTo(rot.x, rot.y);
  g.stroke();
  for (const name of ["a1", "a2", "b1", "b2", "rot"]) {
    const s = viewer.toScreen(hs[name].x, hs[name].y);
    g.fillStyle = name === "rot" ? color : "#fff";
    g.strokeStyle = color;
    g.beginPath();
    if (name === "rot") g.arc(s.x, s.y, HANDLE_PX - 1, 0, 2 * Math.PI);
    else g.rect(s.x - HANDLE_PX / 2 - 1, s.y - HANDLE_PX / 2 - 1, HANDLE_PX + 2, HANDLE_PX + 2);
    g.fill();
    g.stroke();
  }
}

function drawCentroidBox(g, viewer, centroid, color) {
  const [x0, x1] = centroid.x;
  const [y0, y1] = centroid.y;
  if ([x0, x1, y0, y1].some((v) => v === null || v === undefined)) return;
  const p0 = viewer.toScreen(x0, y0);
  const p1 = viewer.toScreen(x1, y1);
  const c = viewer.toScreen((x0 + x1) / 2, (y0 + y1) / 2);
  g.save();
  g.setLineDash([3, 3]);
  g.strokeStyle = color;
  g.strokeRect(p0.x, p0.y, p1.x - p0.x, p1.y - p0.y);
  g.restore();
  g.beginPath();
  g.arc(c.x, c.y, 3, 0, 2 * Math.PI);
  g.fillStyle = color;
  g.fill();
}
