// The image screen's keyboard shortcuts (registered with shortcuts.js, which also lists them in
// the "?" help): slices, zoom, window, second plane, classes, tools and the hint actions; Review
// mode drops the hint-editing keys and adds the review panel's own.

import * as inst from "../instances.js";
import { registerShortcuts } from "../shortcuts.js";
import { selectedInstance } from "../tools.js";
import { goSlice } from "./slices.js";
import { selectClass, setTool } from "./toolbar.js";
import { cyclePlane } from "./viewing.js";
import { cyclePreset } from "./window.js";

// Hint-editing keys belong to the Hints mode.
const HINT_KEYS = new Set(["e", "n", "s", "escape", "r", "c", "a", "delete", "p", "i", "[", "]", "ctrl+z", "ctrl+y", "ctrl+s"]);

/** Select the next instance of the class (S). */
function cycleInstance(page) {
  const { ctx, store } = page;
  const n = inst.instancesOf(store.get(ctx.z)[ctx.cls]).length;
  if (n > 1) ctx.selectInstance((selectedInstance(ctx) + 1) % n);
}

/** The shortcuts of the image screen in page.mode (the review panel must exist in Review mode). */
export function imageShortcuts(page) {
  const { ctx, geom, project, plane, store, actions } = page;
  const viewer = page.viewer;
  const classKeys = project.classes.slice(0, 9).map((c, i) => ({ keys: String(i + 1), label: `Select class ${c.name}`, run: () => selectClass(page, c.name) }));
  const common = [
    { keys: "↑ / → / PgUp", match: ["arrowup", "arrowright", "pageup"], label: "Next slice", run: () => goSlice(page, ctx.z + 1) },
    { keys: "↓ / ← / PgDn", match: ["arrowdown", "arrowleft", "pagedown"], label: "Previous slice", run: () => goSlice(page, ctx.z - 1) },
    { keys: "Home", match: ["home"], label: "First slice", run: () => goSlice(page, 0) },
    { keys: "End", match: ["end"], label: "Last slice", run: () => goSlice(page, geom.slices - 1) },
    { keys: "+", match: ["+", "=", "shift++"], label: "Zoom in", run: () => viewer.zoomCenter(1.25) },
    { keys: "-", match: ["-"], label: "Zoom out", run: () => viewer.zoomCenter(0.8) },
    { keys: "0", match: ["0"], label: "Fit image to window", run: () => viewer.fit() },
    { keys: "W", match: ["w"], label: "Next window preset", run: () => cyclePreset(page) },
    ...(plane ? [{ keys: "V", match: ["v"], label: "Second plane: off / sagittal / coronal (follows the cursor)", run: () => cyclePlane(page) }] : []),
    ...classKeys,
    { keys: "E", match: ["e"], label: "Ellipse tool (drag; Shift = circle; drag inside another instance selects it)", run: () => setTool(page, "ellipse") },
    { keys: "N", match: ["n"], label: "Add instance: the next ellipse drag adds another one of the class (two polyps)", run: () => actions.addInstance() },
    { keys: "S", match: ["s"], label: "Select the next instance of the class", run: () => cycleInstance(page) },
    { keys: "R", match: ["r"], label: "Hole tool: an inner ellipse making the class a ring (drag)", run: () => setTool(page, "hole") },
    { keys: "C", match: ["c"], label: "Centroid tool (click)", run: () => setTool(page, "centroid") },
    { keys: "H", match: ["h"], label: "Pan tool", run: () => setTool(page, "pan") },
    { keys: "A", match: ["a"], label: "Toggle 'absent on this slice'", run: () => actions.toggleAbsent() },
    { keys: "Delete", match: ["delete", "backspace"], label: "Delete the selected instance (the class's hint when it has one)", run: () => actions.deleteSelected() },
    { keys: "Esc", match: ["escape"], label: "Cancel 'Add instance'", run: () => ctx.addInstance && actions.addInstance() },
    { keys: "P", match: ["p"], label: "Copy hints from the previous hinted slice", run: () => actions.copyPrevious() },
    { keys: "I", match: ["i"], label: "Interpolate ellipses between hinted slices", run: () => actions.interpolate() },
    { keys: "[", match: ["["], label: "Tolerance − 0.05", run: () => actions.setTolerance(ctx.tolerance - 0.05) },
    { keys: "]", match: ["]"], label: "Tolerance + 0.05", run: () => actions.setTolerance(ctx.tolerance + 0.05) },
    { keys: "Ctrl+Z", match: ["ctrl+z"], label: "Undo", run: () => store.undo() },
    { keys: "Ctrl+Shift+Z / Ctrl+Y", match: ["ctrl+shift+z", "ctrl+y"], label: "Redo", run: () => store.redo() },
    { keys: "Ctrl+S", match: ["ctrl+s"], label: "Save now", run: () => store.flush() },
  ];
  const shortcuts = page.reviewPanel ? [...common.filter((s) => !(s.match || [s.keys.toLowerCase()]).some((m) => HINT_KEYS.has(m))), ...page.reviewPanel.shortcuts()] : common;
  // Shortcut list shown in help: drop the helper duplicates that only exist for matching.
  return shortcuts.filter((s, i, all) => all.findIndex((t) => t.label === s.label) === i);
}

/** Register the screen's shortcuts; returns the unregister function. */
export function wireKeys(page) {
  return registerShortcuts(imageShortcuts(page));
}
