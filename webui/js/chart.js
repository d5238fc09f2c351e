// A small line chart on a canvas: loss (left axis, log scale when it spans decades) and
// optional metrics in [0, 1] (right axis) against training progress (epochs).

export class LineChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.loss = []; // [x (epochs, fractional), loss]
    this.metric = []; // [x, value in 0..1]
    this.metricName = "";
  }

  clear() {
    this.loss = [];
    this.metric = [];
    this.draw();
  }

  /** Add a job's progress (x = epoch - 1 + step / steps); repeated x are ignored. */
  addProgress(p) {
    if (!p || p.loss === null || p.loss === undefined || !p.epoch) return;
    const x = p.steps ? p.epoch - 1 + (p.step || 0) / p.steps : p.epoch;
    const last = this.loss[this.loss.length - 1];
    if (!last || x > last[0]) this.loss.push([x, Number(p.loss)]);
    const m = p.metrics || {};
    const key = ["val_dice", "dice_mean", "dice"].find((k) => typeof m[k] === "number");
    if (key) {
      this.metricName = key.replace("_", " ");
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
    const pad = { l: 48, r: 40, t: 12, b: 26 };
    const pw = w - pad.l - pad.r;
    const ph = hgt - pad.t - pad.b;
    g.strokeStyle = "#8888";
    g.strokeRect(pad.l, pad.t, pw, ph);
    g.fillStyle = "#888";
    g.font = "11px system-ui, sans-serif";
    if (!this.loss.length) {
      g.fillText("The loss curve appears when training starts.", pad.l + 8, pad.t + ph / 2);
      return;
    }
    const xs = this.loss.map((p) => p[0]);
    const ys = this.loss.map((p) => p[1]).filter((v) => Number.isFinite(v));
    const x0 = 0;
    const x1 = Math.max(1, ...xs);
    const pos = ys.every((v) => v > 0);
    let y0 = Math.min(...ys);
    let y1 = Math.max(...ys);
    const log = pos && y1 / y0 > 30;
    const fy = (v) => (log ? Math.log10(v) : v);
    y0 = fy(y0);
    y1 = fy(y1);
    if (y1 - y0 < 1e-9) {
      y0 -= 0.5;
      y1 += 0.5;
    }
    const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * pw;
    const sy = (v) => pad.t + (1 - (fy(v) - y0) / (y1 - y0)) * ph;
    g.fillText(`loss${log ? " (log)" : ""}`, 4, pad.t + 8);
    g.fillText((log ? 10 ** y1 : y1).toPrecision(3), 4, pad.t + 22);
    g.fillText((log ? 10 ** y0 : y0).toPrecision(3), 4, pad.t + ph);
    g.fillText("epoch", pad.l + pw / 2 - 12, hgt - 6);
    g.fillText("0", pad.l, hgt - 12);
    g.fillText(String(Math.round(x1 * 10) / 10), pad.l + pw - 12, hgt - 12);
    g.strokeStyle = "#3b82f6";
    g.lineWidth = 1.5;
    g.beginPath();
    this.loss.forEach(([x, v], i) => (i ? g.lineTo(sx(x), sy(v)) : g.moveTo(sx(x), sy(v))));
    g.stroke();
    if (this.metric.length) {
      g.strokeStyle = "#16a34a";
      g.beginPath();
      this.metric.forEach(([x, v], i) => {
        const y = pad.t + (1 - v) * ph;
        i ? g.lineTo(sx(x), y) : g.moveTo(sx(x), y);
      });
      g.stroke();
      g.fillStyle = "#16a34a";
      g.fillText(this.metricName, w - pad.r + 4, pad.t + 8);
      g.fillText("1", w - pad.r + 4, pad.t + 22);
      g.fillText("0", w - pad.r + 4, pad.t + ph);
    }
  }
}
