// Training curves on a canvas, in terms a user can read: how far the prediction is from the
// hints' bounds (constraint violation per descriptor; left axis) and the validation Dice
// (right axis, 0..1) against training progress (epochs). The optimiser's barrier value is not
// plotted: it grows with the barrier's sharpness t even while the masks get better.

const COLORS = ["#3b82f6", "#f59e0b", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#64748b", "#84cc16", "#0ea5e9"];
// Terms that are not constraints on the hints (other losses mixed in).
const NOT_CONSTRAINTS = new Set(["ce", "entropy", "sure", "pairwise"]);

/**
 * What to plot from one progress event: {kind: "violation" | "terms", values: {name: number}}.
 * Prefers a violation the worker reports (`violation` on the progress or in its metrics: a
 * number or one per descriptor); else the per-descriptor constraint terms.
 */
export function constraintSeries(p) {
  const m = (p && p.metrics) || {};
  const v = p && p.violation !== undefined ? p.violation : m.violation ?? m.constraint_violation;
  if (typeof v === "number") return { kind: "violation", values: { violation: v } };
  if (v && typeof v === "object") return { kind: "violation", values: numeric(v) };
  const terms = numeric((p && p.terms) || {});
  for (const k of Object.keys(terms)) if (NOT_CONSTRAINTS.has(k)) delete terms[k];
  return { kind: "terms", values: terms };
}

function numeric(obj) {
  const out = {};
  for (const [k, x] of Object.entries(obj)) if (typeof x === "number" && Number.isFinite(x)) out[k] = x;
  return out;
}

export class LineChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.series = new Map(); // name -> [[x, value]]
    this.kind = "violation";
    this.metric = []; // [x, value in 0..1]
    this.metricName = "";
    this.lastX = -Infinity;
  }

  clear() {
    this.series = new Map();
    this.metric = [];
    this.lastX = -Infinity;
    this.draw();
  }

  /** Add a job's progress (x = epoch - 1 + step / steps); repeated x are ignored. */
  addProgress(p) {
    if (!p || !p.epoch) return;
    const x = p.steps ? p.epoch - 1 + (p.step || 0) / p.steps : p.epoch;
    if (!(x > this.lastX)) return;
    this.lastX = x;
    const { kind, values } = constraintSeries(p);
    this.kind = kind;
    for (const [name, v] of Object.entries(values)) {
      if (!this.series.has(name)) this.series.set(name, []);
      this.series.get(name).push([x, kind === "terms" ? Math.max(v, 0) : v]);
    }
    const m = p.metrics || {};
    const key = ["val_dice", "dice_mean", "dice"].find((k) => typeof m[k] === "number");
    if (key) {
      this.metricName = key === "val_dice" ? "validation Dice" : key.replace("_", " ");
      const lm = this.metric[this.metric.length - 1];
      if (!lm || x > lm[0]) this.metric.push([x, m[key]]);
    }
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 480;
    const hgt = c.clientHeight || 200;
    c.width = w * dpr;
    c.height = hgt * dpr;
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const pad = { l: 48, r: 40, t: 24, b: 26 };
    const pw = w - pad.l - pad.r;
    const ph = hgt - pad.t - pad.b;
    g.strokeStyle = "#8888";
    g.strokeRect(pad.l, pad.t, pw, ph);
    g.fillStyle = "#888";
    g.font = "11px system-ui, sans-serif";
    const all = [...this.series.values()].flat();
    if (!all.length && !this.metric.length) {
      g.fillText("The curves appear when training starts.", pad.l + 8, pad.t + ph / 2);
      return;
    }
    const x1 = Math.max(1, ...all.map((p) => p[0]), ...this.metric.map((p) => p[0]));
    const sx = (x) => pad.l + (x / x1) * pw;
    const ys = all.map((p) => p[1]).filter(Number.isFinite);
    const top = ys.length ? Math.max(...ys) : 1;
    const y1 = top > 0 ? top * 1.05 : 1;
    const sy = (v) => pad.t + (1 - v / y1) * ph;
    c.dataset.kind = this.kind;
    c.dataset.series = [...this.series.keys()].join(",");
    g.fillText(this.kind === "violation" ? "constraint violation (0 = every hint met)" : "constraint penalty per descriptor (0 = met)", pad.l, 12);
    g.fillText(y1.toPrecision(2), 4, pad.t + 8);
    g.fillText("0", 4, pad.t + ph);
    g.fillText("epoch", pad.l + pw / 2 - 12, hgt - 6);
    g.fillText("0", pad.l, hgt - 12);
    g.fillText(String(Math.round(x1 * 10) / 10), pad.l + pw - 12, hgt - 12);
    let legendX = pad.l + 6;
    [...this.series.entries()].forEach(([name, pts], i) => {
      const color = COLORS[i % COLORS.length];
      g.strokeStyle = color;
      g.lineWidth = 1.5;
      g.beginPath();
      pts.forEach(([x, v], j) => (j ? g.lineTo(sx(x), sy(v)) : g.moveTo(sx(x), sy(v))));
      g.stroke();
      g.fillStyle = color;
      g.fillText(name, legendX, pad.t + 12);
      legendX += g.measureText(name).width + 10;
    });
    if (this.metric.length) {
      g.strokeStyle = "#16a34a";
      g.lineWidth = 2;
      g.setLineDash([5, 3]);
      g.beginPath();
      this.metric.forEach(([x, v], i) => {
        const y = pad.t + (1 - v) * ph;
        i ? g.lineTo(sx(x), y) : g.moveTo(sx(x), y);
      });
      g.stroke();
      g.setLineDash([]);
      g.fillStyle = "#16a34a";
      g.fillText(this.metricName, w - pad.r - g.measureText(this.metricName).width, 12);
      g.fillText("1", w - pad.r + 4, pad.t + 8);
      g.fillText("0", w - pad.r + 4, pad.t + ph);
    }
  }
}
