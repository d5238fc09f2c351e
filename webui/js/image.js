// The image screen: slice viewer with hint tools (mode "hints") or predicted-mask review
// (mode "review"). Both modes share the viewer, slice navigation, window/level and the hint layer.
// The pieces live in imagepage/: state (page + ctx), layout, viewing (viewer, second plane),
// slices, window, autosave (hint store), toolbar (palette, tools), panel, actions, keys.

import * as api from "./api.js";
import { notify } from "./dom.js";
import { loadUnits } from "./hintpanel.js";
import { setCrumbs } from "./main.js";
import { createActions } from "./imagepage/actions.js";
import { createStore, guardUnload } from "./imagepage/autosave.js";
import { wireKeys } from "./imagepage/keys.js";
import { buildLayout } from "./imagepage/layout.js";
import { wirePanel } from "./imagepage/panel.js";
import { goSlice, refreshStrip, updateSliceLabel, wireSlices } from "./imagepage/slices.js";
import { createPage } from "./imagepage/state.js";
import { renderPalette, setTool, wireTools } from "./imagepage/toolbar.js";
import { createPlane, createViewer, destroyViewer } from "./imagepage/viewing.js";
import { showWindow, wireWindow } from "./imagepage/window.js";

export { imageGeometry } from "./imagepage/state.js";

export async function render(root, { imageId, mode, z }) {
  await loadUnits();
  const image = await api.get(`/api/images/${imageId}`);
  const project = await api.get(`/api/projects/${image.project_id}`);
  setCrumbs([
    ["Projects", "#/projects"],
    [project.name, `#/projects/${project.id}`],
    [image.name, null],
  ]);
  root.classList.add("full");
  const page = createPage({ imageId, image, project, mode, z });
  createPlane(page);
  buildLayout(root, page);
  createStore(page);
  createViewer(page);
  wireTools(page);
  wireSlices(page);
  wireWindow(page);
  createActions(page);
  wirePanel(page);
  const unregister = wireKeys(page);

  renderPalette(page);
  setTool(page, mode === "review" ? "pan" : "ellipse");
  showWindow(page);
  updateSliceLabel(page);
  await openSlices(page);
  const unguard = guardUnload(page);
  return () => {
    page.store.flush();
    unregister();
    destroyViewer(page);
    if (page.reviewPanel) page.reviewPanel.destroy();
    unguard();
  };
}

/** Load the hints (and the review panel's predictions) and show the first slice. */
async function openSlices(page) {
  const { ctx, store, plane, reviewPanel } = page;
  try {
    await store.loadAll();
  } catch (err) {
    notify(err.message, "error");
  }
  // The strip marks hinted and absent slices: read the hinted slices in the background.
  if (page.el.strip && store.hinted) {
    Promise.all([...store.hinted].slice(0, 256).map((hz) => store.loadSlice(hz)))
      .then(() => (refreshStrip(page), plane && plane.render()))
      .catch(() => {});
  }
  if (reviewPanel) await reviewPanel.init();
  const firstZ = ctx.z;
  ctx.z = -1;
  await goSlice(page, firstZ);
  if (reviewPanel) reviewPanel.scanPredictions();
}
