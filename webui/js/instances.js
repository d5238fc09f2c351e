// Several instances of one class on a slice (two polyps in one image) and contours shared by two
// classes (the Myo ring's hole is the LV's outline).
//
// Hint JSON (docs/interfaces.md): one instance is the top-level `ellipse` (+ `hole`); two to
// sixteen are `instances: [{ellipse, hole?}, ...]` instead, with `tolerance` and typed intervals
// still top-level. The editor keeps hints in exactly that form: `instancesOf` reads either,
// `withInstances` writes the right one back.
//
// A link between two classes' contours is no stored field: two ellipses of different classes on
// one slice that are equal (same cx, cy, a, b, angle) are one contour, and an edit of one moves the
// other (`propagateLinks`). Unlinking makes them differ by 0.01 px (`unlinked`), which no drawing
// shows but keeps them apart for good.

import * as geo from "./geometry.js";

export const MAX_INSTANCES = 16;

/** The instances of a hint: [{ellipse, hole?}, ...] (empty without an ellipse or when absent). */
export function instancesOf(hint) {
  if (!hint || hint.present === false) return [];
  if (Array.isArray(hint.instances)) return hint.instances.filter((i) => i && i.ellipse).map((i) => (i.hole ? { ellipse: i.ellipse, hole: i.hole } : { ellipse: i.ellipse }));
  if (hint.ellipse) return [hint.hole ? { ellipse: hint.ellipse, hole: hint.hole } : { ellipse: hint.ellipse }];
  return [];
}

/** True when the hint has at least one ellipse. */
export const hasEllipse = (hint) => instancesOf(hint).length > 0;

/**
 * The hint with its instances replaced by `list`: one instance = top-level ellipse (+ hole),
 * several = `instances`, none = no ellipse (and no tolerance, which needs one); the other
 * fields (present, unit, intervals, centroid) stay. Returns null when nothing is left.
 */
export function withInstances(hint, list, tolerance = 0.2) {
  const next = { ...(hint && hint.present !== false ? hint : {}) };
  delete next.instances;
  delete next.ellipse;
  delete next.hole;
  if (!list.length) {
    delete next.tolerance;
    const rest = Object.keys(next).filter((k) => k !== "present" && k !== "unit");
    return rest.length ? { ...next, present: true } : null;
  }
  const shapes = list.length === 1 ? { ellipse: list[0].ellipse, ...(list[0].hole ? { hole: list[0].hole } : {}) } : { instances: list.map((i) => (i.hole ? { ellipse: i.ellipse, hole: i.hole } : { ellipse: i.ellipse })) };
  // `present` and the shapes first, `tolerance` (which needs an ellipse) last, as a person writes it.
  const { present, tolerance: tol, ...rest } = next;
  return { present: true, ...shapes, ...rest, tolerance: tol ?? tolerance };
}

/** Index of the instance whose outline contains image point p (the smallest one), or -1. */
export function instanceAt(hint, p) {
  let best = -1;
  let bestArea = Infinity;
  instancesOf(hint).forEach((inst, i) => {
    if (geo.contains(inst.ellipse, p) && geo.area(inst.ellipse) < bestArea) {
      best = i;
      bestArea = geo.area(inst.ellipse);
    }
  });
  return best;
}

const sameEllipse = (a, b) => !!a && !!b && ["cx", "cy", "a", "b", "angle"].every((k) => Math.abs(a[k] - b[k]) < 1e-6);
export { sameEllipse };

/** Every contour of a slice's hints: [{cls, index, field ("ellipse" | "hole"), ellipse}]. */
export function contours(hints) {
  const out = [];
  for (const [cls, hint] of Object.entries(hints || {})) {
    instancesOf(hint).forEach((inst, index) => {
      out.push({ cls, index, field: "ellipse", ellipse: inst.ellipse });
      if (inst.hole) out.push({ cls, index, field: "hole", ellipse: inst.hole });
    });
  }
  return out;
}

/** Contours of other classes linked to (equal to) contour `field` of instance `index` of `cls`. */
export function linksOf(hints, cls, index, field) {
  const inst = instancesOf((hints || {})[cls])[index];
  const el = inst && inst[field];
  if (!el) return [];
  return contours(hints).filter((c) => c.cls !== cls && sameEllipse(c.ellipse, el));
}

/** Replace contour (cls, index, field) of `hints` (a slice map, changed in place) by `el`. */
function setContour(hints, cls, index, field, el) {
  const list = instancesOf(hints[cls]);
  list[index] = { ...list[index], [field]: el };
  hints[cls] = withInstances(hints[cls], list);
}

/**
 * `next` (the slice's hints after class `cls` changed; changed in place and returned) with every
 * contour of another class that was linked to a changed contour of `cls` changed the same way.
 * Only contours that still exist at the same place (same instance, same field) carry their link:
 * deleting an ellipse leaves the other class's contour where it is.
 */
export function propagateLinks(before, next, cls) {
  const old = instancesOf((before || {})[cls]);
  const now = instancesOf(next[cls]);
  if (old.length !== now.length) return next;
  const moves = [];
  old.forEach((inst, i) => {
    for (const field of ["ellipse", "hole"]) {
      if (inst[field] && now[i][field] && !sameEllipse(inst[field], now[i][field])) moves.push([inst[field], now[i][field]]);
    }
  });
  if (!moves.length) return next;
  for (const c of contours(before)) {
    if (c.cls === cls) continue;
    const move = moves.find(([from]) => sameEllipse(from, c.ellipse));
    if (!move) continue;
    // Only if the other class's contour is still the old one (nobody changed it in this edit).
    const cur = instancesOf(next[c.cls])[c.index];
    if (cur && sameEllipse(cur[c.field], move[0])) setContour(next, c.cls, c.index, c.field, { ...move[1] });
  }
  return next;
}

/** The ellipse made 0.01 px smaller on both axes: no longer equal to its linked partner. */
export function unlinked(el) {
  return { ...el, a: geo.r2(Math.max(0.5, el.a - 0.01)), b: geo.r2(Math.max(0.5, el.b - 0.01)) };
}

/**
 * Another class's contour that `el` (just drawn as contour `field` of class `cls`) is meant to be:
 * centres closer than 15 % of the mean radius, semi-axes within 15 % (an ellipse and the same
 * ellipse turned by 90 degrees with swapped axes count as well). Holes snap to other classes'
 * outlines (the Myo hole onto the LV), outlines to other classes' holes (the LV onto the Myo hole).
 */
export function snapTarget(hints, cls, field, el) {
  const wanted = field === "hole" ? "ellipse" : "hole";
  const r = (el.a + el.b) / 2;
  let best = null;
  let bestScore = Infinity;
  for (const c of contours(hints)) {
    if (c.cls === cls || c.field !== wanted) continue;
    const o = c.ellipse;
    const d = Math.hypot(o.cx - el.cx, o.cy - el.cy);
    if (d > 0.15 * r) continue;
    const turned = Math.abs(geo.angleDelta(el.angle, o.angle)) > 45;
    const [oa, ob] = turned ? [o.b, o.a] : [o.a, o.b];
    const ra = Math.abs(oa - el.a) / Math.max(el.a, 1e-9);
    const rb = Math.abs(ob - el.b) / Math.max(el.b, 1e-9);
    // Round-ish ellipses: the angle hardly matters, only the size.
    if (ra > 0.15 || rb > 0.15) {
      const round = Math.abs(el.a - el.b) < 0.15 * r && Math.abs(o.a - o.b) < 0.15 * r;
      if (!round || Math.abs(r - (o.a + o.b) / 2) > 0.15 * r) continue;
    }
    const score = d / r + ra + rb;
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/** The largest other-class outline lying inside `outer` (a hole candidate for a ring), or null. */
export function innerOutline(hints, cls, outer) {
  let best = null;
  for (const c of contours(hints)) {
    if (c.cls === cls || c.field !== "ellipse") continue;
    const e = c.ellipse;
    if (geo.area(e) >= geo.area(outer)) continue;
    // Inside: its centre and its four axis ends are inside the outline.
    const hs = geo.handles(e, 0);
    if (![{ x: e.cx, y: e.cy }, hs.a1, hs.a2, hs.b1, hs.b2].every((p) => geo.contains(outer, p))) continue;
    if (!best || geo.area(e) > geo.area(best.ellipse)) best = c;
  }
  return best;
}

/**
 * The instances of two slices (the same number on both) paired for interpolation: the pairing
 * with the smallest total distance between paired centres (exact, over subsets: at most 16
 * instances), ties to the lower index. Returns [[inst0, inst1], ...] in list0's order.
 */
export function pairInstances(list0, list1) {
  const n = list0.length;
  if (n !== list1.length) throw new Error("pairInstances: different numbers of instances");
  const dist = list0.map((a) => list1.map((b) => Math.hypot(a.ellipse.cx - b.ellipse.cx, a.ellipse.cy - b.ellipse.cy)));
  // cost[mask]: least total distance pairing list0[0 .. k-1] (k = bits in mask) with list1's
  // members in mask; pick[mask]: list1's index paired with list0[k-1] there.
  const size = 1 << n;
  const cost = new Float64Array(size).fill(Infinity);
  const pick = new Int8Array(size).fill(-1);
  const bits = new Uint8Array(size);
  for (let m = 1; m < size; m++) bits[m] = bits[m >> 1] + (m & 1);
  cost[0] = 0;
  for (let m = 1; m < size; m++) {
    const i = bits[m] - 1;
    for (let j = 0; j < n; j++) {
      if (!(m & (1 << j))) continue;
      const c = cost[m ^ (1 << j)] + dist[i][j];
      // 1e-9: equal totals (rounding) keep the earlier, lower index.
      if (c < cost[m] - 1e-9) {
        cost[m] = c;
        pick[m] = j;
      }
    }
  }
  const match = new Array(n);
  for (let m = size - 1, i = n - 1; i >= 0; i--) {
    match[i] = pick[m];
    m ^= 1 << pick[m];
  }
  return list0.map((a, i) => [a, list1[match[i]]]);
}
