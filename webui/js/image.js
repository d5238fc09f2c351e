// The image screen: slice viewer with hint tools (mode "hints") or predicted-mask review
// (mode "review"). Both modes share the viewer, slice navigation, window/level and the hint layer.

import * as api from "./api.js";
import { confirmDialog, debounce, h, mount, notify } from "./dom.js";
import * as geo from "./geometry.js";
import { HintStore } from "./hintstore.js";
import * as inst from "./instances.js";
import { loadUnits, renderHintPanel } from "./hintpanel.js";
import { setCrumbs } from "./main.js";
import { ReviewPanel } from "./review.js";
import { SecondPlane } from "./plane2.js";
import { registerShortcuts } from "./shortcuts.js";
import { MaskTool } from "./maskedit.js";
import { renderSliceStrip } from "./slicestrip.js";
import { CentroidTool, EllipseTool, drawHints, selectedInstance } from "./tools.js";
import { Viewer } from "./viewer.js";

/** Image geometry from the API's image answer: slices, height, width, spacing (row, col mm). */
export function imageGeometry(img) {
  const shape = img.shape || [img.num_slices, img.channels, img.height, img.width];
  const slices = img.num_slices ?? shape[0] ?? 1;
  const height = img.height ?? shape[shape.length - 2];
  const width = img.width ?? shape[shape.length - 1];
  const sp = img.spacing || [1, 1, 1];
  // Volume spacing is (z, row, col) mm; a 2D answer may give (row, col).
  const spacing = sp.length >= 3 ? [Number(sp[1]), Number(sp[2])] : [Number(sp[0]), Number(sp[1])];
  const zSpacing = sp.length >= 3 ? Number(sp[0]) : null;
  // PNG/JPG/TIFF ("raster") carry no trustworthy pixel spacing: show px only.
  const physical = img.source_kind !== "raster";
  return { slices, height, width, spacing, zSpacing, physical };
}

export async function render(root, { imageId, mode, z }) {
  await loadUnits();
  const image = await api.get(`/api/images/${imageId}`);
  const project = await api.get(`/api/projects/${image.project_id}`);
  const geom = imageGeometry(image);
  setCrumbs([
    ["Projects", "#/projects"],
    [project.name, `#/projects/${project.id}`],
    [image.name, null],
  ]);
  root.classList.add("full");
  const canEdit = project.role !== "viewer";
  const presets = Array.isArray(image.window_presets) ? image.window_presets : [];
  const savedRaw = sessionStorage.getItem(`shapehint.z.${imageId}`);
  const savedZ = savedRaw === null ? NaN : Number(savedRaw);
  const ctx = {
    image,
    project,
    classes: project.classes,
    z: z ?? (Number.isFinite(savedZ) && savedZ < geom.slices ? savedZ : Math.floor(geom.slices / 2)),
    cls: project.classes[0] ? project.classes[0].name : null,
    tool: "ellipse",
    instance: 0, // selected instance of the selected class (several: two polyps on one slice)
    addInstance: false, // armed by "Add instance" (N): the next ellipse drag adds one
    tolerance: 0.2,
    radius: 5,
    brushSize: 2, // px radius of the mask brush and eraser (Review)
    spacing: geom.spacing,
    geom,
    mode,
    showHints: true,
    unit: geom.physical ? "mm" : "px",
    wc: presets[0] ? presets[0].center : null,
    ww: presets[0] ? presets[0].width : null,
    canEdit: () => canEdit && (ctx.mode === "hints" || ctx.mode === "review"),
    colorOf: (name) => (project.classes.find((c) => c.name === name) || {}).color || "#ff0",
    redraw: () => viewer.renderHints(),
    notify,
    selectInstance: (i) => {
      ctx.instance = i;
      viewer.renderHints();
      refreshPanel();
    },
  };

  // ---- layout
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
  const plane = SecondPlane.available(geom) ? new SecondPlane(ctx, (bz) => sliceBitmap(bz)) : null;
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
          geom.slices > 1 ? [h("button", { type: "button", class: "ghost", title: "Previous slice (↓)", onclick: () => goSlice(ctx.z - 1) }, "◀"), sliceSlider, h("button", { type: "button", class: "ghost", title: "Next slice (↑)", onclick: () => goSlice(ctx.z + 1) }, "▶"), sliceLabel] : null,
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

  // ---- hints store
  const store = new HintStore(imageId, {
    onState: (state, message) => {
      saveState.className = `save-state ${state}`;
      saveState.textContent = { saved: "Saved", saving: "Saving…", unsaved: "Unsaved changes", error: `Not saved: ${message}` }[state];
      saveState.title = message || "";
    },
    onChange: (changedZ) => {
      if (changedZ === ctx.z) {
        viewer.renderHints();
        refreshPanel();
      }
      if (plane && plane.plane !== "off") plane.render();
      updateSliceLabel();
    },
    onJump: (toZ) => toZ !== ctx.z && goSlice(toZ),
  });
  ctx.store = store;

  // ---- viewer
  let tool = null;
  const viewer = new Viewer(stage, {
    onWheelSlice: geom.slices > 1 ? (step) => goSlice(ctx.z + step) : null,
    onWindowDrag: (dc, dw, done) => windowDrag(dc, dw, done),
    onCursor: (p) => showCursor(p),
    drawHints: (g, v) => (drawHints(g, v, ctx, tool), tool && tool.draw && tool.draw(g, v)),
  });
  ctx.viewer = viewer;
  // Tests and power users reach the viewer's coordinate mapping from the console.
  window.shapehintViewer = viewer;

  function setTool(name) {
    ctx.tool = name;
    viewer.panTool = name === "pan";
    const maskTool = ["brush", "eraser", "fill"].includes(name);
    tool = name === "ellipse" ? new EllipseTool(ctx) : name === "hole" ? new EllipseTool(ctx, "hole") : name === "centroid" ? new CentroidTool(ctx) : maskTool && reviewPanel ? new MaskTool(ctx, reviewPanel, name) : null;
    viewer.tool = tool;
    renderToolbar();
    refreshPanel();
  }

  function setBrushSize(r, rerender = true) {
    ctx.brushSize = Math.max(0, Math.min(30, Math.round(r)));
    if (rerender) renderToolbar();
    else {
      const label = toolbar.querySelector("[data-testid=brush-size-label]");
      if (label) label.textContent = `Size ${ctx.brushSize} px`;
    }
    viewer.renderHints();
  }
  ctx.setBrushSize = setBrushSize;

  function selectClass(name) {
    if (name !== ctx.cls) ctx.instance = 0;
    ctx.cls = name;
    ctx.addInstance = false;
    renderPalette();
    viewer.renderHints();
    refreshPanel();
  }

  function renderPalette() {
    mount(
      palette,
      project.classes.map((c, i) =>
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
            onclick: () => selectClass(c.name),
          },
          h("span", { class: "swatch" }),
          h("span", {}, c.name),
          h("kbd", {}, String(i + 1)),
        ),
      ),
    );
  }

  function renderToolbar() {
    const btn = (name, label, key) =>
      h("button", { type: "button", class: `tool ${ctx.tool === name ? "active" : ""}`, "aria-pressed": String(ctx.tool === name), "data-testid": `tool-${name}`, title: `${label} (${key})`, onclick: () => setTool(name) }, label, h("kbd", {}, key));
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
              h("input", { type: "range", min: 0, max: 30, step: 1, value: ctx.brushSize, "aria-label": "Brush size (px radius)", "data-testid": "brush-size", oninput: (e) => setBrushSize(Number(e.target.value), false) }),
            )
          : null,
        h("hr"),
        h("button", { type: "button", class: "tool", title: "Fit to window (0)", onclick: () => viewer.fit() }, "Fit", h("kbd", {}, "0")),
        h("label", { class: "check" }, h("input", { type: "checkbox", checked: ctx.showHints, onchange: (e) => ((ctx.showHints = e.target.checked), viewer.renderHints()) }), "Show hints"),
        h("a", { href: `#/images/${imageId}/hints`, class: "muted", "data-testid": "edit-hints-link" }, "Edit hints →"),
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

  // ---- slices
  const cache = new Map(); // key -> ImageBitmap (a few recent slices)
  let loadToken = 0;
  let lastWindow = null; // the window the server last rendered with (if it tells)
  /** Slice bz in the current window (a few recent ones cached). */
  async function sliceBitmap(bz) {
    const query = ctx.wc !== null && ctx.ww !== null ? { wc: round(ctx.wc), ww: round(ctx.ww) } : {};
    const key = `${bz}|${query.wc}|${query.ww}`;
    let bmp = cache.get(key);
    if (!bmp) {
      bmp = await api.loadImage(`/api/images/${imageId}/slices/${bz}.png`, query);
      cache.set(key, bmp);
      if (cache.size > 24) cache.delete(cache.keys().next().value);
    }
    return bmp;
  }

  async function loadSlice() {
    const token = ++loadToken;
    if (plane) plane.invalidate(ctx.wc !== null && ctx.ww !== null ? `${round(ctx.wc)}|${round(ctx.ww)}` : "auto");
    const bmp = await sliceBitmap(ctx.z);
    if (token !== loadToken) return;
    if (bmp.renderWindow) lastWindow = bmp.renderWindow;
    viewer.setImage(bmp);
    stage.dataset.loadedZ = String(ctx.z);
  }

  async function goSlice(nz) {
    nz = Math.max(0, Math.min(geom.slices - 1, nz));
    if (nz === ctx.z && viewer.image) return;
    ctx.z = nz;
    ctx.instance = 0;
    ctx.addInstance = false;
    sessionStorage.setItem(`shapehint.z.${imageId}`, String(nz));
    sliceSlider.value = nz;
    updateSliceLabel();
    if (plane) plane.render();
    tool && (tool.preview = null);
    const jobs = [loadSlice(), store.loadSlice(nz).then(() => (viewer.renderHints(), refreshPanel()))];
    if (reviewPanel) jobs.push(reviewPanel.loadMask());
    await Promise.all(jobs).catch((err) => notify(err.message, "error"));
  }
  ctx.goSlice = goSlice;

  function updateSliceLabel() {
    const hinted = store.get(ctx.z);
    const n = Object.keys(hinted).length;
    const zmm = geom.zSpacing && geom.slices > 1 ? ` · ${(ctx.z * geom.zSpacing).toFixed(1)} mm` : "";
    sliceLabel.textContent = `Slice ${ctx.z + 1} / ${geom.slices}${zmm}${n ? ` · ${n} hint${n > 1 ? "s" : ""}` : ""}`;
    refreshStrip();
  }

  // ---- slice strip: one cell per slice with its hint / absent / prediction / reference marks
  let stripQueued = false;
  function refreshStrip() {
    if (!strip || stripQueued) return;
    stripQueued = true;
    requestAnimationFrame(() => {
      stripQueued = false;
      renderSliceStrip(strip, ctx, reviewPanel, goSlice);
    });
  }
  ctx.refreshStrip = refreshStrip;

  function showCursor(p) {
    if (plane) plane.follow(p);
    if (!p || p.x < -0.5 || p.y < -0.5 || p.x > geom.width - 0.5 || p.y > geom.height - 0.5) {
      cursorInfo.textContent = "";
      return;
    }
    const px = `x ${p.x.toFixed(1)}, y ${p.y.toFixed(1)} px`;
    cursorInfo.textContent = geom.physical ? `${px} · ${(p.x * geom.spacing[1]).toFixed(1)}, ${(p.y * geom.spacing[0]).toFixed(1)} mm` : px;
  }

  // ---- window / level
  const reloadWindow = debounce(() => loadSlice().catch((err) => notify(err.message, "error")), 120);
  function showWindow() {
    wlInfo.textContent = ctx.wc !== null ? `C ${round(ctx.wc)} / W ${round(ctx.ww)}` : "";
  }
  function windowDrag(dCenterFrac, dWidthFrac, done) {
    if (ctx.wc === null) {
      // Start from the window of the current rendering; 8-bit data without one: 0..255.
      ctx.wc = lastWindow ? lastWindow.center : 127.5;
      ctx.ww = lastWindow ? lastWindow.width : 255;
    }
    // A drag across the whole viewer changes the window by its own width.
    const scale = Math.max(Math.abs(ctx.ww), 1);
    ctx.wc += dCenterFrac * scale;
    ctx.ww = Math.max(1, ctx.ww + dWidthFrac * scale * 2);
    presetSelect.value = "";
    showWindow();
    reloadWindow();
  }
  presetSelect.addEventListener("change", () => {
    const p = presets[Number(presetSelect.value)];
    ctx.wc = p ? p.center : null;
    ctx.ww = p ? p.width : null;
    showWindow();
    loadSlice().catch((err) => notify(err.message, "error"));
  });
  sliceSlider.addEventListener("input", () => goSlice(Number(sliceSlider.value)));

  // ---- panel
  let reviewPanel = null;
  let panelQueued = false;
  // Coalesced: several store events in one task re-render the panel once, after focus moved.
  function refreshPanel() {
    if (panelQueued) return;
    panelQueued = true;
    requestAnimationFrame(() => {
      panelQueued = false;
      if (ctx.mode === "hints") renderHintPanel(side, ctx, actions);
      else if (reviewPanel) reviewPanel.renderHintSummary();
    });
  }

  /** Slice-level actions shared by the panel buttons and the shortcuts. */
  const actions = {
    toggleAbsent() {
      if (!ctx.cls) return;
      const hint = store.get(ctx.z)[ctx.cls];
      store.setClass(ctx.z, ctx.cls, hint && hint.present === false ? null : { present: false }, { label: "absent" });
    },
    deleteHint() {
      if (ctx.cls) store.setClass(ctx.z, ctx.cls, null, { label: "delete hint" });
    },
    /** Del: the selected instance when the class has several on the slice, else the class's hint. */
    deleteSelected() {
      const n = inst.instancesOf(store.get(ctx.z)[ctx.cls]).length;
      if (n > 1) actions.removeInstance(selectedInstance(ctx));
      else actions.deleteHint();
    },
    /** Arm (or disarm) "the next ellipse drag adds another instance of the class". */
    addInstance() {
      if (!ctx.cls || !ctx.canEdit()) return;
      const n = inst.instancesOf(store.get(ctx.z)[ctx.cls]).length;
      if (n >= inst.MAX_INSTANCES) {
        notify(`${ctx.cls}: at most ${inst.MAX_INSTANCES} instances on a slice`, "error", 4000);
        return;
      }
      const arm = !ctx.addInstance;
      if (ctx.tool !== "ellipse") setTool("ellipse");
      ctx.addInstance = arm;
      if (arm) notify(`${ctx.cls}: drag on the image to add instance ${n + 1} (Esc or N again cancels)`, "info", 4000);
      refreshPanel();
      viewer.renderHints();
    },
    /** Remove instance i of the selected class (the others stay as they are). */
    removeInstance(i) {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      if (i < 0 || i >= list.length) return;
      list.splice(i, 1);
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "delete instance" });
      ctx.instance = Math.max(0, Math.min(i, list.length - 1));
      refreshPanel();
    },
    /**
     * Break the link between contour `field` of the selected instance and the other classes'
     * equal contours: it becomes 0.01 px smaller (invisible), so the two are edited separately.
     */
    unlink(field) {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list[i] || !list[i][field]) return;
      list[i] = { ...list[i], [field]: inst.unlinked(list[i][field]) };
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "unlink", link: false });
      notify(`${ctx.cls}: the ${field === "hole" ? "hole" : "ellipse"} is its own contour again`, "ok", 3000);
    },
    /** Make contour `field` of the selected instance equal to (linked with) contour `c` of another class. */
    linkTo(field, c) {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list[i]) return;
      list[i] = { ...list[i], [field]: { ...c.ellipse } };
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "link", link: false });
    },
    async copyPrevious() {
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
    },
    async interpolate() {
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
      updateSliceLabel();
    },
    /** Cut a hole out of the class's ellipse (a ring) and pick the hole tool to adjust it. */
    addHole() {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list.length) return;
      if (!list[i].hole) {
        // Another class's outline inside this one (the LV inside the Myo) is the hole, linked:
        // one contour, edited once. Else same centre and angle, 60 % of the axes: a ring of a
        // typical myocardium's proportions.
        const inner = inst.innerOutline(store.get(ctx.z), ctx.cls, list[i].ellipse);
        list[i] = { ...list[i], hole: inner ? { ...inner.ellipse } : geo.scaled(list[i].ellipse, 0.6) };
        store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "add hole" });
        if (inner) notify(`${ctx.cls}: the hole is ${inner.cls}'s outline, linked (editing one edits both; Unlink in the panel)`, "ok", 5000);
      }
      setTool("hole");
    },
    removeHole() {
      const hint = store.get(ctx.z)[ctx.cls];
      const list = inst.instancesOf(hint);
      const i = selectedInstance(ctx, hint);
      if (!list[i] || !list[i].hole) return;
      list[i] = { ellipse: list[i].ellipse };
      store.setClass(ctx.z, ctx.cls, inst.withInstances(hint, list, ctx.tolerance), { label: "remove hole" });
      if (ctx.tool === "hole") setTool("ellipse");
    },
    setTolerance(t) {
      ctx.tolerance = Math.round(Math.min(0.95, Math.max(0, t)) * 100) / 100;
      const hint = store.get(ctx.z)[ctx.cls];
      if (inst.hasEllipse(hint) && hint.tolerance !== ctx.tolerance) store.setClass(ctx.z, ctx.cls, { ...hint, tolerance: ctx.tolerance }, { label: "tolerance" });
      else refreshPanel();
      viewer.renderHints();
    },
    setTool,
    selectClass,
  };
  ctx.actions = actions;

  // ---- shortcuts
  const classKeys = project.classes.slice(0, 9).map((c, i) => ({ keys: String(i + 1), label: `Select class ${c.name}`, run: () => selectClass(c.name) }));
  const common = [
    { keys: "↑ / → / PgUp", match: ["arrowup", "arrowright", "pageup"], label: "Next slice", run: () => goSlice(ctx.z + 1) },
    { keys: "↓ / ← / PgDn", match: ["arrowdown", "arrowleft", "pagedown"], label: "Previous slice", run: () => goSlice(ctx.z - 1) },
    { keys: "Home", match: ["home"], label: "First slice", run: () => goSlice(0) },
    { keys: "End", match: ["end"], label: "Last slice", run: () => goSlice(geom.slices - 1) },
    { keys: "+", match: ["+", "=", "shift++"], label: "Zoom in", run: () => viewer.zoomCenter(1.25) },
    { keys: "-", match: ["-"], label: "Zoom out", run: () => viewer.zoomCenter(0.8) },
    { keys: "0", match: ["0"], label: "Fit image to window", run: () => viewer.fit() },
    { keys: "W", match: ["w"], label: "Next window preset", run: () => cyclePreset() },
    ...(plane ? [{ keys: "V", match: ["v"], label: "Second plane: off / sagittal / coronal (follows the cursor)", run: () => cyclePlane() }] : []),
    ...classKeys,
    { keys: "E", match: ["e"], label: "Ellipse tool (drag; Shift = circle; drag inside another instance selects it)", run: () => setTool("ellipse") },
    { keys: "N", match: ["n"], label: "Add instance: the next ellipse drag adds another one of the class (two polyps)", run: () => actions.addInstance() },
    { keys: "S", match: ["s"], label: "Select the next instance of the class", run: () => cycleInstance() },
    { keys: "R", match: ["r"], label: "Hole tool: an inner ellipse making the class a ring (drag)", run: () => setTool("hole") },
    { keys: "C", match: ["c"], label: "Centroid tool (click)", run: () => setTool("centroid") },
    { keys: "H", match: ["h"], label: "Pan tool", run: () => setTool("pan") },
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
  // Shortcut list shown in help: drop the helper duplicates that only exist for matching.
  const visible = (list) => list.filter((s, i, all) => all.findIndex((t) => t.label === s.label) === i);
  let shortcuts = common;

  function cyclePlane() {
    const order = ["off", "sagittal", "coronal"];
    planeSelect.value = order[(order.indexOf(planeSelect.value) + 1) % order.length];
    plane.setPlane(planeSelect.value);
  }

  function cycleInstance() {
    const n = inst.instancesOf(store.get(ctx.z)[ctx.cls]).length;
    if (n > 1) ctx.selectInstance((selectedInstance(ctx) + 1) % n);
  }

  function cyclePreset() {
    if (!presets.length) return;
    const next = (Number(presetSelect.value === "" ? -1 : presetSelect.value) + 1) % presets.length;
    presetSelect.value = String(next);
    presetSelect.dispatchEvent(new Event("change"));
  }

  // ---- mode
  if (mode === "review") {
    reviewPanel = new ReviewPanel(side, ctx);
    // Hint-editing keys belong to the Hints mode.
    const hintKeys = new Set(["e", "n", "s", "escape", "r", "c", "a", "delete", "p", "i", "[", "]", "ctrl+z", "ctrl+y", "ctrl+s"]);
    shortcuts = [...common.filter((s) => !(s.match || [s.keys.toLowerCase()]).some((m) => hintKeys.has(m))), ...reviewPanel.shortcuts()];
  }
  const unregister = registerShortcuts(visible(shortcuts));

  renderPalette();
  setTool(mode === "review" ? "pan" : "ellipse");
  showWindow();
  updateSliceLabel();
  try {
    await store.loadAll();
  } catch (err) {
    notify(err.message, "error");
  }
  // The strip marks hinted and absent slices: read the hinted slices in the background.
  if (strip && store.hinted) {
    Promise.all([...store.hinted].slice(0, 256).map((hz) => store.loadSlice(hz)))
      .then(() => (refreshStrip(), plane && plane.render()))
      .catch(() => {});
  }
  if (reviewPanel) await reviewPanel.init();
  const firstZ = ctx.z;
  ctx.z = -1;
  await goSlice(firstZ);
  if (reviewPanel) reviewPanel.scanPredictions();

  const beforeUnload = (e) => {
    if (store.dirty.size || store.state === "saving") {
      store.flush();
      e.preventDefault();
    }
  };
  window.addEventListener("beforeunload", beforeUnload);
  return () => {
    store.flush();
    unregister();
    viewer.destroy();
    if (reviewPanel) reviewPanel.destroy();
    window.removeEventListener("beforeunload", beforeUnload);
    if (window.shapehintViewer === viewer) delete window.shapehintViewer;
  };
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

function round(v) {
  return Math.round(v * 100) / 100;
}
