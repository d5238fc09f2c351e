// The image screen's shared state. Two objects travel between the screen's pieces:
//   ctx   the state the tools and panels (tools.js, hintpanel.js, review.js, maskedit.js,
//         plane2.js, slicestrip.js) read and change: slice, class, tool, instance, window…
//   page  ctx plus what only the screen's own wiring needs: the image and project answers, the
//         DOM elements (page.el, see layout.js), the viewer, hint store, second plane, review
//         panel, the active tool object and the actions.
// Every wiring function in imagepage/ takes `page` and reads all it needs from it.

import { notify } from "../dom.js";

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

/** The slice to open: the one asked for, else the one last shown (this tab), else the middle one. */
function firstSlice(imageId, z, geom) {
  if (z !== null && z !== undefined) return z;
  const savedRaw = sessionStorage.getItem(`shapehint.z.${imageId}`);
  const savedZ = savedRaw === null ? NaN : Number(savedRaw);
  return Number.isFinite(savedZ) && savedZ < geom.slices ? savedZ : Math.floor(geom.slices / 2);
}

/** The page object with its ctx; the pieces (store, viewer, panels, actions) are added by the wiring. */
export function createPage({ imageId, image, project, mode, z }) {
  const geom = imageGeometry(image);
  const canEdit = project.role !== "viewer";
  const presets = Array.isArray(image.window_presets) ? image.window_presets : [];
  const page = {
    imageId,
    image,
    project,
    geom,
    mode,
    presets,
    el: null, // DOM elements (layout.js)
    store: null, // HintStore (autosave.js)
    viewer: null, // Viewer (viewing.js)
    plane: null, // SecondPlane, where the volume has one (viewing.js)
    reviewPanel: null, // ReviewPanel in Review mode (panel.js)
    tool: null, // the active tool object (toolbar.js)
    actions: null, // slice-level actions (actions.js)
    slices: { cache: new Map(), loadToken: 0, lastWindow: null }, // slices.js, window.js
    queued: { strip: false, panel: false }, // coalesced re-renders
    ctx: null,
  };
  const ctx = {
    image,
    project,
    classes: project.classes,
    z: firstSlice(imageId, z, geom),
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
    redraw: () => page.viewer.renderHints(),
    notify,
    // Filled in by the wiring: store, viewer, goSlice, refreshStrip, setBrushSize, actions,
    // selectInstance.
  };
  page.ctx = ctx;
  return page;
}

export function round(v) {
  return Math.round(v * 100) / 100;
}
