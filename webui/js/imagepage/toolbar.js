// The image screen's left column: the class palette and the tool bar (hint tools in Hints mode;
// pan, brush, eraser and fill in Review mode), and switching tools.

import { h, mount } from "../dom.js";
import { MaskTool } from "../maskedit.js";
import { CentroidTool, EllipseTool } from "../tools.js";
import { refreshPanel } from "./panel.js";

/** Make tool `name` the active one (ellipse, hole, centroid, pan, brush, eraser, fill). */
export function setTool(page, name) {
  const { ctx, viewer, reviewPanel } = page;
  ctx.tool = name;
  viewer.panTool = name === "pan";
  const maskTool = ["brush", "eraser", "fill"].includes(name);
  page.tool = name === "ellipse" ? new EllipseTool(ctx) : name === "hole" ? new EllipseTool(ctx, "hole") : name === "centroid" ? new CentroidTool(ctx) : maskTool && reviewPanel ? new MaskTool(ctx, reviewPanel, name) : null;
  viewer.tool = page.tool;
  renderToolbar(page);
  refreshPanel(page);
}

export function setBrushSize(page, r, rerender = true) {
  const { ctx } = page;
  ctx.brushSize = Math.max(0, Math.min(30, Math.round(r)));
  if (rerender) renderToolbar(page);
  else {
    const label = page.el.toolbar.querySelector("[data-testid=brush-size-label]");
    if (label) label.textContent = `Size ${ctx.brushSize} px`;
  }
  page.viewer.renderHints();
}

export function selectClass(page, name) {
  const { ctx } = page;
  if (name !== ctx.cls) ctx.instance = 0;
  ctx.cls = name;
  ctx.addInstance = false;
  renderPalette(page);
  page.viewer.renderHints();
  refreshPanel(page);
}

export function renderPalette(page) {
  const { ctx } = page;
  mount(
    page.el.palette,
    page.project.classes.map((c, i) =>
      h(
        "button",
        {
          type: "button",
          role: "radio",
          "aria-checked": String(c.name === ctx.cls),
          class: `class-button ${c.name === ctx.cls ? "active" : ""}`,
          style: { "--c": c.color },
          title: `Select ${c.name} (${i + 1})`,
          "data-testid": `class-${c.name}`,
          onclick: () => selectClass(page, c.name),
        },
        h("span", { class: "swatch" }),
        h("span", {}, c.name),
        h("kbd", {}, String(i + 1)),
      ),
    ),
  );
}

export function renderToolbar(page) {
  const { ctx, viewer, store } = page;
  const toolbar = page.el.toolbar;
  const btn = (name, label, key) =>
    h("button", { type: "button", class: `tool ${ctx.tool === name ? "active" : ""}`, "aria-pressed": String(ctx.tool === name), "data-testid": `tool-${name}`, title: `${label} (${key})`, onclick: () => setTool(page, name) }, label, h("kbd", {}, key));
  if (ctx.mode === "review") {
    // Review judges and corrects the mask: no hint tool is active here, so a drag never makes a
    // hint; brush, eraser and fill edit the predicted mask of the selected class.
    mount(
      toolbar,
      btn("pan", "Pan", "H"),
      ctx.canEdit() ? [btn("brush", "Brush", "B"), btn("eraser", "Eraser", "X"), btn("fill", "Fill", "G")] : null,
      ctx.canEdit()
        ? h(
            "label",
            { class: "slider brush-size" },
            h("span", { "data-testid": "brush-size-label" }, `Size ${ctx.brushSize} px`),
            h("input", { type: "range", min: 0, max: 30, step: 1, value: ctx.brushSize, "aria-label": "Brush size (px radius)", "data-testid": "brush-size", oninput: (e) => setBrushSize(page, Number(e.target.value), false) }),
          )
        : null,
      h("hr"),
      h("button", { type: "button", class: "tool", title: "Fit to window (0)", onclick: () => viewer.fit() }, "Fit", h("kbd", {}, "0")),
      h("label", { class: "check" }, h("input", { type: "checkbox", checked: ctx.showHints, onchange: (e) => ((ctx.showHints = e.target.checked), viewer.renderHints()) }), "Show hints"),
      h("a", { href: `#/images/${page.imageId}/hints`, class: "muted", "data-testid": "edit-hints-link" }, "Edit hints →"),
    );
    return;
  }
  mount(
    toolbar,
    btn("ellipse", "Ellipse", "E"),
    btn("hole", "Hole", "R"),
    btn("centroid", "Centroid", "C"),
    btn("pan", "Pan", "H"),
    h("hr"),
    h("button", { type: "button", class: "tool", title: "Undo (Ctrl+Z)", "data-testid": "undo", onclick: () => store.undo() }, "Undo", h("kbd", {}, "Ctrl+Z")),
    h("button", { type: "button", class: "tool", title: "Redo (Ctrl+Shift+Z)", "data-testid": "redo", onclick: () => store.redo() }, "Redo", h("kbd", {}, "Ctrl+Y")),
    h("button", { type: "button", class: "tool", title: "Fit to window (0)", onclick: () => viewer.fit() }, "Fit", h("kbd", {}, "0")),
    h("label", { class: "check" }, h("input", { type: "checkbox", checked: ctx.showHints, onchange: (e) => ((ctx.showHints = e.target.checked), viewer.renderHints()) }), "Show hints"),
  );
}

/** ctx's hook for the review panel's brush-size control. */
export function wireTools(page) {
  page.ctx.setBrushSize = (r, rerender = true) => setBrushSize(page, r, rerender);
}
