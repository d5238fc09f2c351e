// Window / level on the image screen: the preset menu, the right-drag on the viewer and the
// window readout. The server renders each slice in the window (wc, ww) asked for.

import { debounce, notify } from "../dom.js";
import { loadSlice } from "./slices.js";
import { round } from "./state.js";

export function showWindow(page) {
  const { ctx } = page;
  page.el.wlInfo.textContent = ctx.wc !== null ? `C ${round(ctx.wc)} / W ${round(ctx.ww)}` : "";
}

/** The viewer's window drag: fractions of the viewer's size moved (centre, width). */
export function windowDrag(page, dCenterFrac, dWidthFrac, done) {
  const { ctx } = page;
  if (ctx.wc === null) {
    // Start from the window of the current rendering; 8-bit data without one: 0..255.
    const lastWindow = page.slices.lastWindow;
    ctx.wc = lastWindow ? lastWindow.center : 127.5;
    ctx.ww = lastWindow ? lastWindow.width : 255;
  }
  // A drag across the whole viewer changes the window by its own width.
  const scale = Math.max(Math.abs(ctx.ww), 1);
  ctx.wc += dCenterFrac * scale;
  ctx.ww = Math.max(1, ctx.ww + dWidthFrac * scale * 2);
  page.el.presetSelect.value = "";
  showWindow(page);
  page.slices.reloadWindow();
}

/** Next window preset (W). */
export function cyclePreset(page) {
  const { presets } = page;
  const presetSelect = page.el.presetSelect;
  if (!presets.length) return;
  const next = (Number(presetSelect.value === "" ? -1 : presetSelect.value) + 1) % presets.length;
  presetSelect.value = String(next);
  presetSelect.dispatchEvent(new Event("change"));
}

export function wireWindow(page) {
  const { ctx, presets } = page;
  const presetSelect = page.el.presetSelect;
  page.slices.reloadWindow = debounce(() => loadSlice(page).catch((err) => notify(err.message, "error")), 120);
  presetSelect.addEventListener("change", () => {
    const p = presets[Number(presetSelect.value)];
    ctx.wc = p ? p.center : null;
    ctx.ww = p ? p.width : null;
    showWindow(page);
    loadSlice(page).catch((err) => notify(err.message, "error"));
  });
}
