// Hint tools on the viewer (ellipse with handles, its hole with the same handles, centroid
// click) and the drawing of every class's hints on the hint canvas. Tools talk to the screen through `ctx` (see image.js):
// ctx.z, ctx.cls, ctx.store, ctx.tolerance, ctx.radius, ctx.colorOf(cls), ctx.redraw().

import * as geo from "./geometry.js";

const HANDLE_PX = 7; // handle half-size on screen (css px)
const ROT_OFFSET_PX = 24; // rotation handle distance beyond the a-axis end (css px)

/** Hint of the selected class with its ellipse, or null. */
function currentEllipse(ctx) {
  const hint = ctx.store.get(ctx.z)[ctx.cls];
  return hint && hint.present !== false && hint.ellipse ? hint : null;
}

/**
 * Draws and edits one ellipse of the selected class: `field` "ellipse" (the outline) or "hole"
 * (an inner ellipse cut out of it, making the class a ring; needs the ellipse first).
 */
export class EllipseTool {
  constructor(ctx, field = "ellipse") {
    this.ctx = ctx;
    this.field = field;
    this.drag = null; // {kind: "new" | handle name, start, grab, ellipse}
    this.preview = null; // ellipse being edited (image px) or null
  }

  /** The ellipse this tool edits on the selected class, or null. */
  target() {
    const hint = currentEllipse(this.ctx);
    return hint ? hint[this.field] || null : null;
  }

  /** Which handle (or "move") is under image point p, for the edited ellipse. */
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

  hover(p) {
    if (this.field === "hole" && !currentEllipse(this.ctx)) return "not-allowed";
    const which = this.hit(p);
    return { move: "move", rot: "alias", a1: "ew-resize", a2: "ew-resize", b1: "ns-resize", b2: "ns-resize" }[which] || "crosshair";
  }

  down(p, e) {
    if (e.button !== 0 || !this.ctx.canEdit()) return false;
    // A hole is cut out of the class's ellipse: without one there is nothing to cut.
    if (this.field === "hole" && !currentEllipse(this.ctx)) return false;
    const which = this.hit(p);
    const el = this.target();
    if (which && el) {
      this.drag = { kind: which, grab: { x: p.x - el.cx, y: p.y - el.cy }, ellipse: { ...el } };
    } else {
      this.drag = { kind: "new", start: p };
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
    const el = this.preview;
    this.preview = null;
    if (!d || !el) return this.ctx.redraw();
    if (d.kind === "new" && (el.a < 1 || el.b < 1)) return this.ctx.redraw(); // a click, not a drag
    const old = this.ctx.store.get(this.ctx.z)[this.ctx.cls];
    if (this.field === "hole" && !currentEllipse(this.ctx)) return this.ctx.redraw(); // undone meanwhile
    // Through the store like every edit: one undo step, autosaved, refusals shown in the panel.
    const label = d.kind === "new" ? `draw ${this.field}` : `${this.field} ${d.kind}`;
    this.ctx.store.setClass(this.ctx.z, this.ctx.cls, this.edited(old, d, el), { label });
    // One ellipse per class and slice: a new drag replaces the old one, and says so.
    if (d.kind === "new" && old && old[this.field] && this.ctx.notify) this.ctx.notify(`${this.ctx.cls}: the ${this.field === "hole" ? "hole" : "ellipse"} was replaced (one per class on a slice; Ctrl+Z brings the old one back)`, "info", 5000);
  }

  /** The class's hint after drag `d` made `el`; the preview draws exactly what up() stores. */
  edited(old, d, el) {
    // The hole's size is checked by the server (smaller than the ellipse), whose refusal shows.
    if (this.field === "hole") return { ...old, hole: el };
    // A fresh drag replaces the class's hint; a handle edit keeps its other fields.
    const base = d.kind === "new" || !old || old.present === false ? {} : { ...old };
    const hint = { ...base, present: true, ellipse: el, tolerance: base.tolerance ?? this.ctx.tolerance };
    // Moving the outline carries its hole along so the ring keeps its shape; resizing or turning
    // the outline leaves the hole where the user put it.
    if (d.kind === "move" && base.hole) hint.hole = geo.shifted(base.hole, el.cx - d.ellipse.cx, el.cy - d.ellipse.cy);
    return hint;
  }

  /** `hint` as it will be once the drag in progress ends (what drawHints shows). */
  previewHint(hint) {
    return this.drag && this.preview ? this.edited(hint, this.drag, this.preview) : hint;
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

/** Draw every class's hints of slice z; the selected class gets handles. */
export function drawHints(g, viewer, ctx, tool) {
  if (!ctx.showHints) return;
  const hints = ctx.store.get(ctx.z);
  const absent = [];
  for (const cls of ctx.classes) {
    let hint = hints[cls.name];
    const selected = cls.name === ctx.cls;
    if (selected && tool && tool.previewHint) hint = tool.previewHint(hint);
    if (!hint) continue;
    const color = cls.color;
    if (hint.present === false) {
      absent.push(cls);
      continue;
    }
    g.lineWidth = selected ? 2 : 1.5;
    g.strokeStyle = color;
    // Handles go on what the tool edits: the hole with the hole tool, else the outline.
    if (hint.ellipse) drawEllipseHint(g, viewer, hint, color, selected ? (tool && tool.field) || "ellipse" : null);
    if (hint.centroid && hint.centroid.x && hint.centroid.y) {
      // Centroid boxes in mm are drawn in px: x scales with the column spacing, y with the row's.
      const [row, col] = hint.unit === "mm" ? ctx.spacing : [1, 1];
      const scale = (iv, f) => iv.map((v) => (v === null || v === undefined ? v : v / f));
      drawCentroidBox(g, viewer, { x: scale(hint.centroid.x, col), y: scale(hint.centroid.y, row) }, color);
    }
  }
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
