// The hint panel of the selected class on the current slice: state, absent toggle, ellipse
// and hole numbers, tolerance, centroid radius, and every interval as the API derived it (px and mm) with
// numeric editing of explicit intervals. Derived values always come from the API's answer.

import * as api from "./api.js";
import { fmtInterval, h, mount } from "./dom.js";
import * as geo from "./geometry.js";
import * as inst from "./instances.js";

/**
 * Descriptor components in bound-array order, filled by loadUnits() from GET /api/units (the
 * one definition is models/units.py): {key, descriptor, sub, label, axes, unit: {px, mm}, f},
 * where f(row_mm, col_mm) is the mm-per-px factor of the value.
 */
export const COMPONENTS = [];

// How a value scales with the pixel axes (models/units.py Component.axes): x = column, y = row.
const SCALE = {
  "": () => 1,
  x: (r, c) => c,
  y: (r) => r,
  xx: (r, c) => c * c,
  yy: (r) => r * r,
  xy: (r, c) => r * c,
  L: (r, c) => Math.sqrt(r * c),
};

let loading = null;

/** Fill COMPONENTS once (later calls wait for the same request). */
export function loadUnits() {
  loading ??= api.get("/api/units", { noAuthRedirect: true }).then((table) => {
    COMPONENTS.splice(0, COMPONENTS.length, ...table.components.map((c) => ({ ...c, f: SCALE[c.axes] })));
  }).catch((e) => {
    loading = null; // a later screen may retry
    throw e;
  });
  return loading;
}

/** Explicit interval of component `comp` in a hint, or null. */
export function explicitInterval(hint, comp) {
  if (!hint) return null;
  const d = hint[comp.descriptor];
  if (!d) return null;
  return comp.sub ? d[comp.sub] || null : d;
}

/** Hint with component `comp` set to `interval` ([lo, hi], null ends open) or removed (null). */
export function withInterval(hint, comp, interval) {
  const next = JSON.parse(JSON.stringify(hint || { present: true }));
  if (comp.sub) {
    const d = { ...(next[comp.descriptor] || {}) };
    if (interval) d[comp.sub] = interval;
    else delete d[comp.sub];
    if (Object.keys(d).length) next[comp.descriptor] = d;
    else delete next[comp.descriptor];
  } else if (interval) next[comp.descriptor] = interval;
  else delete next[comp.descriptor];
  return next;
}

/**
 * Convert the explicit intervals of a hint to another unit system (px <-> mm) using the slice
 * spacing [row_mm, col_mm]; the ellipse stays in px (it always is).
 */
export function convertHint(hint, toUnit, spacing) {
  const from = hint.unit || "px";
  if (from === toUnit) return hint;
  let next = { ...hint, unit: toUnit };
  for (const comp of COMPONENTS) {
    const iv = explicitInterval(hint, comp);
    if (!iv) continue;
    const f = comp.f(spacing[0], spacing[1]);
    const k = toUnit === "mm" ? f : 1 / f;
    next = withInterval(next, comp, iv.map((v) => (v === null ? null : geo.r2(v * k))));
  }
  if (toUnit === "px") delete next.unit;
  return next;
}

/**
 * A refusal as the user typed it: the server quotes intervals in px ("size intervals do not
 * overlap: [a, b] px^2 and ..."); for a hint in mm each such interval gets its mm value first.
 */
export function errorInUnit(message, unit, spacing) {
  if (unit !== "mm" || !message || !spacing) return message;
  const comp = COMPONENTS.find((c) => message.includes(` ${c.sub ? `${c.descriptor}.${c.sub}` : c.descriptor} `));
  if (!comp) return message;
  const f = comp.f(spacing[0], spacing[1]);
  const num = (t) => (t === "open" ? "open" : String(geo.r2(Number(t) * f)));
  return message.replace(/\[(open|[-\d.e+]+), (open|[-\d.e+]+)\] (px\^2|px)/g, (all, lo, hi) => `[${num(lo)}, ${num(hi)}] ${comp.unit.mm} (${all})`);
}

function parseNum(text) {
  const t = String(text).trim();
  if (!t) return null;
  const v = Number(t);
  return Number.isFinite(v) ? v : NaN;
}

/** Render the panel into `side` for ctx.cls on ctx.z. */
export function renderHintPanel(side, ctx, actions) {
  const { store, z, cls } = ctx;
  if (!cls) return mount(side, h("p", { class: "muted" }, "This project has no classes."));
  const focused = document.activeElement && side.contains(document.activeElement) ? document.activeElement.dataset.field : null;
  // Values typed but not yet committed survive a re-render (another field's commit re-renders).
  const pending = {};
  if (side.dataset.where === `${z}|${cls}`) {
    for (const el of side.querySelectorAll("input[data-dirty]")) pending[el.dataset.field] = el.value;
  }
  side.dataset.where = `${z}|${cls}`;
  const hint = store.get(z)[cls];
  const derived = store.derivedFor(z, cls);
  const color = ctx.colorOf(cls);
  const editable = ctx.canEdit();
  const list = inst.instancesOf(hint);
  const sel = Math.max(0, Math.min(ctx.instance || 0, list.length - 1));
  const cur = list[sel];
  const state = !hint ? "no hint" : hint.present === false ? "absent on this slice" : list.length > 1 ? `${list.length} instances` : list.length ? (cur.hole ? "ring (ellipse with hole)" : "ellipse") : hint.centroid ? "centroid / intervals" : "intervals";
  const hints = store.get(z);
  const error = store.errors.get(z);

  const setHint = (next, label) => store.setClass(z, cls, next, { label });

  // ---- ellipse and hole numbers (`key` is the hint field: "ellipse" or "hole")
  const ellipseFields = (key) => {
    const field = (name, step) =>
      h(
        "label",
        { class: "num" },
        name,
        h("input", {
          type: "number",
          step,
          value: cur[key][name],
          disabled: !editable,
          "data-field": `${key}-${name}`,
          onchange: (e) => {
            const v = parseNum(e.target.value);
            if (v === null || Number.isNaN(v)) return;
            const el = { ...cur[key], [name]: name === "angle" ? geo.foldAngle(v) : v };
            const next = list.map((it, i) => (i === sel ? { ...it, [key]: el } : it));
            setHint(inst.withInstances(hint, next, ctx.tolerance), `${key} ${name}`);
          },
        }),
      );
    return h("div", { class: "grid5" }, field("cx", 0.5), field("cy", 0.5), field("a", 0.5), field("b", 0.5), field("angle", 1));
  };
  // A contour shared with another class (the Myo hole is the LV outline): say so, offer to unlink.
  const linkNote = (key) => {
    const links = inst.linksOf(hints, cls, sel, key);
    if (!links.length) return null;
    const names = links.map((c) => `${c.cls}${inst.instancesOf(hints[c.cls]).length > 1 ? ` #${c.index + 1}` : ""}'s ${c.field === "hole" ? "hole" : "outline"}`).join(", ");
    return h(
      "p",
      { class: "link-note", "data-testid": `link-${key}` },
      h("span", {}, `Linked: one contour with ${names} (editing one edits both)`),
      " ",
      h("button", { type: "button", class: "ghost", disabled: !editable, "data-testid": `unlink-${key}`, title: "Edit this contour on its own from now on", onclick: () => actions.unlink(key) }, "Unlink"),
    );
  };
  // No link yet, but another class has an outline inside this ring: offer to use it as the hole.
  const linkOffer = () => {
    const inner = cur && cur.hole && !inst.linksOf(hints, cls, sel, "hole").length ? inst.innerOutline(hints, cls, cur.ellipse) : null;
    if (!inner || !editable) return null;
    return h("button", { type: "button", class: "secondary", "data-testid": "offer-link-hole", title: `Make the hole ${inner.cls}'s outline: one contour, edited once`, onclick: () => actions.linkTo("hole", inner) }, `Use ${inner.cls}'s outline as the hole`);
  };
  let instancesBox = null;
  if (list.length) {
    const row = (it, i) =>
      h(
        "li",
        { class: i === sel ? "selected" : "", "data-testid": `instance-${i + 1}`, "aria-current": i === sel ? "true" : null },
        h("button", { type: "button", class: "link", "data-testid": `select-instance-${i + 1}`, onclick: () => ctx.selectInstance(i) }, `#${i + 1}`),
        ` ${it.hole ? "ring" : "ellipse"} at (${geo.r2(it.ellipse.cx)}, ${geo.r2(it.ellipse.cy)}), ${geo.r2(it.ellipse.a)} × ${geo.r2(it.ellipse.b)} px `,
        list.length > 1 ? h("button", { type: "button", class: "ghost", disabled: !editable, title: `Delete instance ${i + 1} (Del when selected)`, "data-testid": `remove-instance-${i + 1}`, onclick: () => actions.removeInstance(i) }, "×") : null,
      );
    instancesBox = h(
      "fieldset",
      { class: "instances", "data-testid": "instances" },
      h("legend", {}, `Instances of ${cls} on this slice (${list.length})`),
      list.length > 1 ? h("ol", { class: "instance-list" }, list.map(row)) : null,
      h(
        "button",
        { type: "button", class: `secondary ${ctx.addInstance ? "on" : ""}`, "aria-pressed": String(!!ctx.addInstance), disabled: !editable || list.length >= inst.MAX_INSTANCES, "data-testid": "add-instance", title: "Another one of this class on this slice (e.g. a second polyp): the next ellipse drag adds it (N)", onclick: () => actions.addInstance() },
        ctx.addInstance ? "Drag on the image… (Esc cancels)" : "Add instance",
      ),
      list.length > 1 ? h("p", { class: "muted" }, "Drag inside an instance (or S) to select it; tolerance and intervals apply to all.") : null,
    );
  }
  let ellipseBox = null;
  let holeBox = null;
  if (cur) {
    const which = list.length > 1 ? ` #${sel + 1}` : "";
    ellipseBox = h("fieldset", { class: "ellipse-fields" }, h("legend", {}, `Ellipse${which} (image px; angle in ° from +x towards +y)`), ellipseFields("ellipse"), linkNote("ellipse"));
    // A hole turns the class into the ring between the two ellipses (e.g. a myocardium).
    holeBox = cur.hole
      ? h(
          "fieldset",
          { class: "ellipse-fields hole-fields", "data-testid": "hole-fields" },
          h("legend", {}, `Hole${which} (inner ellipse; the class is the ring between)`),
          ellipseFields("hole"),
          linkNote("hole"),
          h("div", { class: "row wrap" }, h("button", { type: "button", class: "secondary", disabled: !editable, "data-testid": "remove-hole", onclick: () => actions.removeHole() }, "Remove hole"), linkOffer()),
        )
      : h("button", { type: "button", class: "secondary", disabled: !editable, "data-testid": "add-hole", title: "Cut an inner ellipse out of this one: the class becomes a ring; another class's outline inside it becomes the hole, linked (R = hole tool)", onclick: () => actions.addHole() }, "Add hole");
  } else if (ctx.tool === "hole") {
    holeBox = h("p", { class: "muted", "data-testid": "hole-needs-ellipse" }, "The hole tool cuts a hole out of the class's ellipse: draw the ellipse first (E).");
  }

  // ---- tolerance and radius
  const tol = list.length ? hint.tolerance ?? ctx.tolerance : ctx.tolerance;
  const tolOut = h("output", { "data-testid": "tolerance-value" }, `${Math.round(tol * 100)} %`);
  const tolerance = h(
    "label",
    { class: "slider" },
    "Tolerance",
    h("input", {
      type: "range",
      min: 0,
      max: 0.9,
      step: 0.05,
      value: tol,
      "data-testid": "tolerance",
      "data-field": "tolerance",
      disabled: !editable,
      oninput: (e) => (tolOut.textContent = `${Math.round(Number(e.target.value) * 100)} %`),
      onchange: (e) => actions.setTolerance(Number(e.target.value)),
    }),
    tolOut,
  );
  const radius = h(
    "label",
    { class: "num" },
    "Centroid click radius (px)",
    h("input", { type: "number", min: 0, step: 1, value: ctx.radius, "data-field": "radius", onchange: (e) => (ctx.radius = Math.max(0, Number(e.target.value) || 0)) }),
  );

  // ---- intervals
  const unit = hint && hint.unit === "mm" ? "mm" : ctx.unit;
  const unitSelect = h(
    "select",
    {
      "aria-label": "Unit of typed intervals",
      "data-field": "unit",
      "data-testid": "interval-unit",
      onchange: (e) => {
        ctx.unit = e.target.value;
        if (hint && hint.present !== false && COMPONENTS.some((c) => explicitInterval(hint, c))) setHint(convertHint(hint, ctx.unit, ctx.spacing), "unit");
        else renderHintPanel(side, ctx, actions);
      },
    },
    h("option", { value: "px", selected: unit === "px" }, "px"),
    h("option", { value: "mm", selected: unit === "mm", disabled: !ctx.geom.physical }, "mm"),
  );
  const comps = (derived && derived.components) || {};
  const rows = COMPONENTS.map((comp) => {
    const d = comps[comp.key];
    const explicit = explicitInterval(hint, comp);
    const shown = d ? (unit === "mm" ? d.mm : d.px) : null;
    const unitText = (d && (unit === "mm" ? d.unit_mm : d.unit_px)) || comp.unit[unit];
    const input = (end) =>
      h("input", {
        type: "text",
        inputmode: "decimal",
        class: "iv",
        "data-field": `${comp.key}-${end ? "hi" : "lo"}`,
        "data-testid": `iv-${comp.key}-${end ? "hi" : "lo"}`,
        "aria-label": `${comp.label} ${end ? "upper" : "lower"} bound (${unitText})`,
        value: explicit && explicit[end] !== null && explicit[end] !== undefined ? explicit[end] : "",
        placeholder: shown && shown[end] !== null ? geo.r2(shown[end]) : "open",
        disabled: !editable || (hint && hint.present === false),
        // Commit on Enter or when leaving a changed field (not "change": a re-render may have
        // replaced the element, and a restored value never fires "change").
        oninput: (e) => (e.target.dataset.dirty = "1"),
        // min and max are one interval: moving between them (Tab) does not save half of it.
        onblur: (e) => !row.contains(e.relatedTarget) && row.querySelector("input[data-dirty]") && commitRow(comp, row),
        onkeydown: (e) => e.key === "Enter" && commitRow(comp, row),
      });
    const row = h(
      "tr",
      { class: explicit ? "explicit" : "", "data-component": comp.key },
      h(
        "th",
        { title: d ? d.label : comp.label },
        comp.label,
        h("small", { class: "derived", "data-testid": `derived-${comp.key}` }, d ? fmtInterval(d.px, d.unit_px) : "open"),
        d && d.mm && ctx.geom.physical ? h("small", { class: "derived", "data-testid": `derived-${comp.key}-mm` }, fmtInterval(d.mm, d.unit_mm)) : null,
      ),
      h("td", {}, input(0)),
      h("td", {}, input(1)),
      h("td", { class: "unit" }, unitText),
      h("td", {}, explicit ? h("button", { type: "button", class: "ghost", title: "Remove this typed interval", "data-testid": `clear-${comp.key}`, onclick: () => setHint(withInterval(hint, comp, null), "clear interval") }, "×") : null),
    );
    return row;
  });

  function commitRow(comp, row) {
    for (const el of row.querySelectorAll("input[data-dirty]")) delete el.dataset.dirty;
    const lo = parseNum(row.querySelector(`[data-field="${comp.key}-lo"]`).value);
    const hi = parseNum(row.querySelector(`[data-field="${comp.key}-hi"]`).value);
    if (Number.isNaN(lo) || Number.isNaN(hi)) {
      store.errors.set(z, `${comp.label}: type a number (or leave empty for an open end)`);
      renderHintPanel(side, ctx, actions);
      return;
    }
    // The server validates (lo <= hi, inside the image, ...) and its message is shown if refused.
    let base = hint && hint.present !== false ? hint : { present: true };
    if ((base.unit || "px") !== unit) base = convertHint(base, unit, ctx.spacing);
    if (unit === "mm") base = { ...base, unit: "mm" };
    const next = withInterval(base, comp, lo === null && hi === null ? null : [lo, hi]);
    setHint(next, `interval ${comp.key}`);
  }

  const others = ctx.classes
    .filter((c) => c.name !== cls)
    .map((c) => {
      const o = store.get(z)[c.name];
      const n = inst.instancesOf(o).length;
      const s = !o ? "—" : o.present === false ? "absent" : n > 1 ? `${n} instances` : n ? (inst.instancesOf(o)[0].hole ? "ring" : "ellipse") : "intervals";
      return h("li", {}, h("button", { type: "button", class: "link", style: { "--c": c.color }, onclick: () => actions.selectClass(c.name) }, h("span", { class: "swatch" }), c.name), ` ${s}`);
    });

  mount(
    side,
    h("h2", { class: "panel-title", style: { "--c": color } }, h("span", { class: "swatch" }), ctx.geom.slices > 1 ? `${cls} · slice ${z + 1}` : cls),
    h("p", { class: "hint-state", "data-testid": "hint-state" }, state),
    error ? h("p", { class: "error", role: "alert", "data-testid": "hint-error" }, `Not saved: ${errorInUnit(error, hint && hint.unit, ctx.spacing)}`) : null,
    (store.conflicts.get(z) || {})[cls] ? h("p", { class: "warn", role: "status" }, `Annotators' hints contradict each other: ${store.conflicts.get(z)[cls]}`) : null,
    h(
      "div",
      { class: "row wrap" },
      h("button", { type: "button", class: `toggle ${hint && hint.present === false ? "on" : ""}`, "aria-pressed": String(!!(hint && hint.present === false)), "data-testid": "absent-toggle", disabled: !editable, onclick: () => actions.toggleAbsent(), title: "Absent on this slice (A)" }, "Absent here"),
      h("button", { type: "button", class: "secondary", disabled: !editable || !hint, "data-testid": "delete-hint", onclick: () => actions.deleteHint(), title: list.length > 1 ? "Delete the class's hint on this slice, every instance (Del deletes the selected instance)" : "Delete (Del)" }, "Delete"),
      // Slice-to-slice actions only where there are slices.
      ctx.geom.slices > 1 ? h("button", { type: "button", class: "secondary", disabled: !editable, "data-testid": "copy-previous", onclick: () => actions.copyPrevious(), title: "Copy from previous hinted slice (P)" }, "Copy previous") : null,
      ctx.geom.slices > 2 ? h("button", { type: "button", class: "secondary", disabled: !editable, "data-testid": "interpolate", onclick: () => actions.interpolate(), title: "Interpolate ellipses (each instance, paired by nearest centres) between hinted slices (I)" }, "Interpolate") : null,
    ),
    instancesBox,
    ellipseBox,
    holeBox,
    tolerance,
    ctx.tool === "centroid" ? radius : null,
    h(
      "div",
      { class: "intervals" },
      h("div", { class: "row" }, h("h3", {}, "Intervals"), h("span", { class: "muted" }, "type to constrain; empty = from the drawing"), unitSelect),
      h(
        "table",
        { class: "table intervals-table", "data-testid": "intervals" },
        h("thead", {}, h("tr", {}, h("th", {}, "derived by the server"), h("th", {}, "min"), h("th", {}, "max"), h("th", {}, ""), h("th", {}, ""))),
        h("tbody", {}, rows),
      ),
      derived && derived.orientation_deg !== undefined ? h("p", { class: "muted" }, `orientation ≈ ${derived.orientation_deg.toFixed(1)}°`) : null,
    ),
    h("h3", {}, "Other classes on this slice"),
    h("ul", { class: "others" }, others),
  );
  for (const [field, value] of Object.entries(pending)) {
    const el = side.querySelector(`input[data-field="${field}"]`);
    if (el) {
      el.value = value;
      el.dataset.dirty = "1";
    }
  }
  if (focused) {
    const el = side.querySelector(`[data-field="${focused}"]`);
    if (el) el.focus();
  }
}
