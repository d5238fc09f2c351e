// Slice navigation on the image screen: the slice images (a few cached, in the current window),
// moving to a slice, the slice label and the slice strip.

import * as api from "../api.js";
import { notify } from "../dom.js";
import { renderSliceStrip } from "../slicestrip.js";
import { refreshPanel } from "./panel.js";
import { round } from "./state.js";

/** Slice bz in the current window (a few recent ones cached). */
export async function sliceBitmap(page, bz) {
  const { ctx } = page;
  const cache = page.slices.cache; // key -> ImageBitmap
  const query = ctx.wc !== null && ctx.ww !== null ? { wc: round(ctx.wc), ww: round(ctx.ww) } : {};
  const key = `${bz}|${query.wc}|${query.ww}`;
  let bmp = cache.get(key);
  if (!bmp) {
    bmp = await api.loadImage(`/api/images/${page.imageId}/slices/${bz}.png`, query);
    cache.set(key, bmp);
    if (cache.size > 24) cache.delete(cache.keys().next().value);
  }
  return bmp;
}

/** Show the current slice in the current window (a newer request wins). */
export async function loadSlice(page) {
  const { ctx, plane } = page;
  const token = ++page.slices.loadToken;
  if (plane) plane.invalidate(ctx.wc !== null && ctx.ww !== null ? `${round(ctx.wc)}|${round(ctx.ww)}` : "auto");
  const bmp = await sliceBitmap(page, ctx.z);
  if (token !== page.slices.loadToken) return;
  // The window the server last rendered with (if it tells): where a window drag starts.
  if (bmp.renderWindow) page.slices.lastWindow = bmp.renderWindow;
  page.viewer.setImage(bmp);
  page.el.stage.dataset.loadedZ = String(ctx.z);
}

export async function goSlice(page, nz) {
  const { ctx, geom, viewer, store, plane, reviewPanel } = page;
  nz = Math.max(0, Math.min(geom.slices - 1, nz));
  if (nz === ctx.z && viewer.image) return;
  ctx.z = nz;
  ctx.instance = 0;
  ctx.addInstance = false;
  sessionStorage.setItem(`shapehint.z.${page.imageId}`, String(nz));
  page.el.sliceSlider.value = nz;
  updateSliceLabel(page);
  if (plane) plane.render();
  page.tool && (page.tool.preview = null);
  const jobs = [loadSlice(page), store.loadSlice(nz).then(() => (viewer.renderHints(), refreshPanel(page)))];
  if (reviewPanel) jobs.push(reviewPanel.loadMask());
  await Promise.all(jobs).catch((err) => notify(err.message, "error"));
}

export function updateSliceLabel(page) {
  const { ctx, geom } = page;
  const hinted = page.store.get(ctx.z);
  const n = Object.keys(hinted).length;
  const zmm = geom.zSpacing && geom.slices > 1 ? ` · ${(ctx.z * geom.zSpacing).toFixed(1)} mm` : "";
  page.el.sliceLabel.textContent = `Slice ${ctx.z + 1} / ${geom.slices}${zmm}${n ? ` · ${n} hint${n > 1 ? "s" : ""}` : ""}`;
  refreshStrip(page);
}

/** The slice strip: one cell per slice with its hint / absent / prediction / reference marks. */
export function refreshStrip(page) {
  if (!page.el.strip || page.queued.strip) return;
  page.queued.strip = true;
  requestAnimationFrame(() => {
    page.queued.strip = false;
    renderSliceStrip(page.el.strip, page.ctx, page.reviewPanel, (z) => goSlice(page, z));
  });
}

/** The slider, and ctx's hooks for the panels (plane2, review) to move and mark slices. */
export function wireSlices(page) {
  const { ctx, el } = page;
  ctx.goSlice = (z) => goSlice(page, z);
  ctx.refreshStrip = () => refreshStrip(page);
  el.sliceSlider.addEventListener("input", () => goSlice(page, Number(el.sliceSlider.value)));
}
