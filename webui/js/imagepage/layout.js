// The image screen's layout: class palette and tools on the left, the viewer with its slice strip
// and footer (slice slider, window preset, second plane, cursor, save state) in the middle, the
// hint or review panel on the right. Builds and mounts the elements; page.el holds them.

import { h, mount } from "../dom.js";
import { goSlice } from "./slices.js";

/** Build the screen into `root`; the second plane (page.plane) must exist already. */
export function buildLayout(root, page) {
  const { ctx, geom, presets, plane, mode, imageId } = page;
  const stage = h("div", { class: "stage", "data-testid": "viewer" });
  const strip = geom.slices > 1 ? h("div", { class: "slice-strip", role: "toolbar", "aria-label": "Slices", "data-testid": "slice-strip" }) : null;
  const saveState = h("span", { class: "save-state saved", "data-testid": "save-state", role: "status" }, "Saved");
  const sliceSlider = h("input", { type: "range", min: 0, max: geom.slices - 1, step: 1, value: ctx.z, "aria-label": "Slice", "data-testid": "slice-slider", disabled: geom.slices < 2 });
  const sliceLabel = h("span", { class: "slice-label", "data-testid": "slice-label" });
  const cursorInfo = h("span", { class: "cursor-info muted" });
  const presetSelect = h(
    "select",
    { "aria-label": "Window preset", "data-testid": "window-preset" },
    h("option", { value: "" }, "Auto window"),
    presets.map((p, i) => h("option", { value: i }, `${p.name} (C ${p.center} / W ${p.width})`)),
  );
  if (presets.length) presetSelect.value = "0";
  // A second plane (sagittal / coronal reformat) where the volume's spacing is known.
  const planeSelect = plane
    ? h(
        "select",
        { "aria-label": "Second plane", "data-testid": "plane2-select", title: "Second plane: the volume cut along the cursor's column or row (V)" },
        h("option", { value: "off" }, "2nd plane: off"),
        h("option", { value: "sagittal" }, "Sagittal"),
        h("option", { value: "coronal" }, "Coronal"),
      )
    : null;
  if (plane) {
    stage.append(plane.el);
    planeSelect.addEventListener("change", () => plane.setPlane(planeSelect.value));
  }
  const wlInfo = h("span", { class: "muted wl-info" });
  const palette = h("div", { class: "palette", role: "radiogroup", "aria-label": "Class" });
  const toolbar = h("div", { class: "toolbar" });
  const side = h("aside", { class: "side-panel", "data-testid": mode === "review" ? "review-panel" : "hint-panel" });
  const modeTabs = h(
    "nav",
    { class: "tabs small" },
    h("a", { href: `#/images/${imageId}/hints`, class: mode === "hints" ? "active" : "", "data-testid": "mode-hints" }, "Hints"),
    h("a", { href: `#/images/${imageId}/review`, class: mode === "review" ? "active" : "", "data-testid": "mode-review" }, "Review"),
  );
  mount(
    root,
    h(
      "div",
      { class: `image-screen mode-${mode}` },
      h("div", { class: "left-col" }, modeTabs, h("h3", {}, "Class"), palette, h("h3", {}, "Tools"), toolbar),
      h(
        "div",
        { class: "center-col" },
        stage,
        strip,
        h(
          "div",
          { class: "viewer-footer" },
          // A single 2D image has no slices to move between.
          geom.slices > 1 ? [h("button", { type: "button", class: "ghost", title: "Previous slice (↓)", onclick: () => goSlice(page, ctx.z - 1) }, "◀"), sliceSlider, h("button", { type: "button", class: "ghost", title: "Next slice (↑)", onclick: () => goSlice(page, ctx.z + 1) }, "▶"), sliceLabel] : null,
          presetSelect,
          planeSelect,
          wlInfo,
          cursorInfo,
          saveState,
        ),
      ),
      side,
    ),
  );
  page.el = { root, stage, strip, saveState, sliceSlider, sliceLabel, cursorInfo, presetSelect, planeSelect, wlInfo, palette, toolbar, side };
  return page.el;
}
