// The image screen's viewer wiring: the slice viewer (wheel = slice, right-drag = window, cursor
// readout, hint drawing with the active tool) and the second plane beside it.

import { SecondPlane } from "../plane2.js";
import { drawHints } from "../tools.js";
import { Viewer } from "../viewer.js";
import { goSlice, sliceBitmap } from "./slices.js";
import { windowDrag } from "./window.js";

/** The second plane (sagittal / coronal reformat) where the volume's spacing is known, else null. */
export function createPlane(page) {
  page.plane = SecondPlane.available(page.geom) ? new SecondPlane(page.ctx, (bz) => sliceBitmap(page, bz)) : null;
  return page.plane;
}

/** The viewer in page.el.stage (after the layout is mounted). */
export function createViewer(page) {
  const { ctx, geom } = page;
  const viewer = new Viewer(page.el.stage, {
    onWheelSlice: geom.slices > 1 ? (step) => goSlice(page, ctx.z + step) : null,
    onWindowDrag: (dc, dw, done) => windowDrag(page, dc, dw, done),
    onCursor: (p) => showCursor(page, p),
    drawHints: (g, v) => (drawHints(g, v, ctx, page.tool), page.tool && page.tool.draw && page.tool.draw(g, v)),
  });
  page.viewer = viewer;
  ctx.viewer = viewer;
  // Tests and power users reach the viewer's coordinate mapping from the console.
  window.shapehintViewer = viewer;
  return viewer;
}

export function destroyViewer(page) {
  page.viewer.destroy();
  if (window.shapehintViewer === page.viewer) delete window.shapehintViewer;
}

/** Cursor position (image px, and mm where the spacing is known); the second plane follows it. */
export function showCursor(page, p) {
  const { geom, plane } = page;
  const cursorInfo = page.el.cursorInfo;
  if (plane) plane.follow(p);
  if (!p || p.x < -0.5 || p.y < -0.5 || p.x > geom.width - 0.5 || p.y > geom.height - 0.5) {
    cursorInfo.textContent = "";
    return;
  }
  const px = `x ${p.x.toFixed(1)}, y ${p.y.toFixed(1)} px`;
  cursorInfo.textContent = geom.physical ? `${px} · ${(p.x * geom.spacing[1]).toFixed(1)}, ${(p.y * geom.spacing[0]).toFixed(1)} mm` : px;
}

/** Second plane: off → sagittal → coronal (V). */
export function cyclePlane(page) {
  const { plane } = page;
  const planeSelect = page.el.planeSelect;
  const order = ["off", "sagittal", "coronal"];
  planeSelect.value = order[(order.indexOf(planeSelect.value) + 1) % order.length];
  plane.setPlane(planeSelect.value);
}
