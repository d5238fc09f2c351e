// The image screen's hint store (hintstore.js saves edits in the background): the save-state
// readout, what a change re-renders, and the flush when the page is left or the tab closed.

import { HintStore } from "../hintstore.js";
import { refreshPanel } from "./panel.js";
import { goSlice, updateSliceLabel } from "./slices.js";

export function createStore(page) {
  const { ctx } = page;
  const saveState = page.el.saveState;
  const store = new HintStore(page.imageId, {
    onState: (state, message) => {
      saveState.className = `save-state ${state}`;
      saveState.textContent = { saved: "Saved", saving: "Saving…", unsaved: "Unsaved changes", error: `Not saved: ${message}` }[state];
      saveState.title = message || "";
    },
    onChange: (changedZ) => {
      if (changedZ === ctx.z) {
        page.viewer.renderHints();
        refreshPanel(page);
      }
      if (page.plane && page.plane.plane !== "off") page.plane.render();
      updateSliceLabel(page);
    },
    onJump: (toZ) => toZ !== ctx.z && goSlice(page, toZ),
  });
  page.store = store;
  ctx.store = store;
  return store;
}

/** Flush unsaved hints (and ask the browser to hold on) when the tab is closed; returns the remover. */
export function guardUnload(page) {
  const store = page.store;
  const beforeUnload = (e) => {
    if (store.dirty.size || store.state === "saving") {
      store.flush();
      e.preventDefault();
    }
  };
  window.addEventListener("beforeunload", beforeUnload);
  return () => window.removeEventListener("beforeunload", beforeUnload);
}
