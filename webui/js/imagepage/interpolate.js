// Hints across slices on the image screen: copy the hints of the nearest hinted slice below (P)
// and interpolate the selected class's ellipses (and holes) between hinted slices (I).

import { confirmDialog, notify } from "../dom.js";
import * as geo from "../geometry.js";
import * as inst from "../instances.js";
import { updateSliceLabel } from "./slices.js";

/** Replace the slice's hints with those of the nearest hinted slice below (asks first if it has some). */
export async function copyPrevious(page) {
  const { ctx, store } = page;
  // The nearest hinted slice below this one (loaded on demand).
  for (let pz = ctx.z - 1; pz >= 0; pz--) {
    const hints = await store.loadSlice(pz);
    if (Object.keys(hints).length) {
      const here = store.get(ctx.z);
      if (Object.keys(here).length && !(await confirmDialog(`Replace the hints of slice ${ctx.z + 1} with those of slice ${pz + 1}?`, { ok: "Replace" }))) return;
      // Whole hints, so an ellipse's hole (a ring) comes along.
      store.set(ctx.z, JSON.parse(JSON.stringify(hints)), { label: "copy previous" });
      notify(`Copied ${Object.keys(hints).length} hint(s) from slice ${pz + 1}`, "ok", 2500);
      return;
    }
  }
  notify("No hinted slice below this one", "info", 3000);
}

/** Fill the unhinted slices between two slices with ellipses of the selected class (I). */
export async function interpolate(page) {
  const { ctx, geom, store } = page;
  const cls = ctx.cls;
  if (!cls || geom.slices < 3) return;
  for (let zz = 0; zz < geom.slices; zz++) await store.loadSlice(zz);
  // Slices where the class has one or more ellipses (instances).
  const keys = [];
  for (let zz = 0; zz < geom.slices; zz++) {
    if (inst.instancesOf(store.get(zz)[cls]).length) keys.push(zz);
  }
  // Gaps between consecutive ellipse slices where the class has no hint at all.
  const gaps = [];
  for (let i = 0; i + 1 < keys.length; i++) {
    const [z0, z1] = [keys[i], keys[i + 1]];
    const free = [];
    for (let zz = z0 + 1; zz < z1; zz++) if (!store.get(zz)[cls]) free.push(zz);
    if (!free.length) continue;
    const n0 = inst.instancesOf(store.get(z0)[cls]).length;
    const n1 = inst.instancesOf(store.get(z1)[cls]).length;
    gaps.push({ z0, z1, free, n0, n1, ok: n0 === n1 });
  }
  const here = gaps.filter((g) => g.z0 < ctx.z && ctx.z < g.z1);
  const candidates = here.length ? here : gaps;
  const chosen = candidates.filter((g) => g.ok);
  const skipped = candidates.filter((g) => !g.ok);
  // Instances are paired one to one: slices with different counts cannot be (which one
  // appears or vanishes between them is unknown), so they are left alone, and said so.
  const skipText = skipped.length
    ? `${cls}: not interpolated between ${skipped.map((g) => `slice ${g.z0 + 1} (${plural(g.n0, "instance")}) and slice ${g.z1 + 1} (${plural(g.n1, "instance")})`).join("; ")}: both slices need the same number of instances`
    : "";
  const count = chosen.reduce((n, g) => n + g.free.length, 0);
  if (!count) {
    if (skipText) notify(`${skipText}.`, "error", 10000);
    else notify(`Nothing to interpolate: ${cls} needs ellipses on two slices with unhinted slices between them`, "info", 5000);
    return;
  }
  const ranges = chosen.map((g) => `${g.z0 + 1}–${g.z1 + 1}`).join(", ");
  const several = chosen.some((g) => g.n0 > 1);
  if (!(await confirmDialog(`Fill ${count} slice(s) of ${cls} between slices ${ranges} by interpolating the ${several ? "instances' ellipses (paired by nearest centres)" : "ellipses"}?${skipText ? ` (${skipText}.)` : ""}`, { ok: "Interpolate" }))) return;
  const changes = [];
  for (const g of chosen) {
    const h0 = store.get(g.z0)[cls];
    const h1 = store.get(g.z1)[cls];
    const pairs = inst.pairInstances(inst.instancesOf(h0), inst.instancesOf(h1));
    const tolerance = Math.max(h0.tolerance ?? ctx.tolerance, h1.tolerance ?? ctx.tolerance);
    for (const zz of g.free) {
      const list = pairs.map(([i0, i1]) => {
        const ellipse = geo.interpolate(i0.ellipse, g.z0, i1.ellipse, g.z1, zz);
        const hole = interpolateHole(i0, i1, g.z0, g.z1, zz, ellipse);
        return hole ? { ellipse, hole } : { ellipse };
      });
      changes.push([zz, { ...store.get(zz), [cls]: inst.withInstances(null, list, tolerance) }]);
    }
  }
  const n = store.setMany(changes, "interpolate");
  if (skipText) notify(`Interpolated ${n} slice(s) of ${cls}. ${skipText}.`, "info", 10000);
  else notify(`Interpolated ${n} slice(s) of ${cls}`, "ok", 3000);
  updateSliceLabel(page);
}

/**
 * Hole of an interpolated slice: interpolated only when both end slices have one (a ring that
 * starts or ends between them has no known shape there), and dropped where it would not be
 * smaller than the interpolated ellipse (the server would refuse the slice).
 */
function interpolateHole(h0, h1, z0, z1, z, ellipse) {
  if (!h0.hole || !h1.hole) return null;
  const hole = geo.interpolate(h0.hole, z0, h1.hole, z1, z);
  return geo.area(hole) < geo.area(ellipse) ? hole : null;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
