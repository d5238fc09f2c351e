// Quality of a trained model, from its train job's result (GET /api/jobs/{id}):
//   result.warnings: ["RV: predicted empty on 6 of 6 hinted slices where it was hinted present", ...]
//   result.quality: {classes: {cls: {hinted_slices, meeting_bounds, fraction_meeting_bounds,
//                    empty_where_present}}, images: {image_id: {cls: {hinted_slices,
//                    meeting_bounds, empty_where_present, dice | null}}}}
// A job without these fields shows nothing.

import { h } from "./dom.js";

const pct = (f) => `${Math.round(f * 100)} %`;

/** The warnings of a job result (possibly empty). */
export function warningsOf(result) {
  return result && Array.isArray(result.warnings) ? result.warnings.filter((w) => typeof w === "string" && w) : [];
}

/** A warning box for a job card, or null when the result has no warning. */
export function warningBox(result) {
  const warnings = warningsOf(result);
  if (!warnings.length) return null;
  return h(
    "div",
    { class: "quality-warning", role: "alert", "data-testid": "quality-warning" },
    h("strong", {}, warnings.length === 1 ? "A class failed:" : `${warnings.length} problems:`),
    h("ul", {}, warnings.map((w) => h("li", {}, w))),
    h("p", { class: "muted" }, "Add hints where the mask is wrong (or mark the class absent), then retrain."),
  );
}

function classRow(name, q, colorOf) {
  const hinted = Number(q.hinted_slices) || 0;
  const meeting = Number(q.meeting_bounds) || 0;
  const frac = typeof q.fraction_meeting_bounds === "number" ? q.fraction_meeting_bounds : hinted ? meeting / hinted : null;
  const empty = Number(q.empty_where_present) || 0;
  const bad = empty > 0 || (frac !== null && frac < 0.5);
  const dice = typeof q.dice === "number" ? q.dice.toFixed(3) : "—";
  return h(
    "tr",
    { class: bad ? "bad" : "", "data-class": name },
    h("th", {}, h("span", { class: "swatch", style: { "--c": colorOf(name) } }), name),
    h("td", {}, `${meeting} / ${hinted} slices`),
    h("td", {}, frac === null ? "—" : pct(frac)),
    h("td", { class: empty ? "error" : "" }, `${empty} slice${empty === 1 ? "" : "s"}`),
    "dice" in q ? h("td", {}, dice) : null,
  );
}

/**
 * A quality table. `perClass`: {cls: {...}} (project-wide or one image's); `withDice` adds the
 * Dice column (images with a reference mask). Returns null when there is nothing to show.
 */
export function qualityTable(perClass, colorOf = () => "#888", { withDice = false, caption = "" } = {}) {
  if (!perClass || typeof perClass !== "object" || !Object.keys(perClass).length) return null;
  const head = ["Class", "Prediction within the hint's bounds", "", "Empty where hinted present"];
  if (withDice) head.push("Dice vs reference");
  return h(
    "table",
    { class: "table quality-table", "data-testid": "quality-table" },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, head.map((t) => h("th", {}, t)))),
    h("tbody", {}, Object.entries(perClass).map(([name, q]) => classRow(name, withDice ? { dice: null, ...q } : q, colorOf))),
  );
}

/** The whole quality panel of a job result (warnings + per-class table), or null. */
export function qualityPanel(result, colorOf) {
  const quality = result && result.quality;
  const warning = warningBox(result);
  const table = quality ? qualityTable(quality.classes, colorOf, { caption: "Hinted slices of every image" }) : null;
  if (!warning && !table) return null;
  const slices = typeof (result && result.reference_slices) === "number" ? result.reference_slices : null;
  return h(
    "div",
    { class: "quality stack", "data-testid": "quality-panel" },
    h("h3", {}, "Quality of this model"),
    warning,
    table,
    slices !== null ? h("p", { class: "muted", "data-testid": "reference-slices" }, `Trained with ${slices} corrected slice${slices === 1 ? "" : "s"} (reference masks)`) : null,
  );
}

/** One image's quality under a model (review panel), or null. */
export function imageQuality(result, imageId, colorOf) {
  const q = result && result.quality && result.quality.images ? result.quality.images[String(imageId)] : null;
  if (!q) return null;
  const withDice = Object.values(q).some((c) => c && typeof c.dice === "number");
  return h(
    "div",
    { class: "quality stack", "data-testid": "image-quality" },
    h("h3", {}, "Quality on this image"),
    qualityTable(q, colorOf, { withDice }),
  );
}
