// The slice strip under the viewer: one cell per slice of a volume, marked where the slice has a
// hint (present), is hinted absent, has a predicted mask (Review) or a reference mask (an
// uploaded one, or a slice corrected in Review). A click jumps to the slice.

import { h, mount } from "./dom.js";

/** Marks of slice z: {hinted, absent, predicted, reference} (booleans; predicted may be undefined
 * while unknown). */
export function sliceMarks(ctx, review, z) {
  const hints = Object.values(ctx.store.get(z) || {}).filter(Boolean);
  const hinted = hints.some((hint) => hint.present !== false);
  return {
    hinted,
    absent: !hinted && hints.some((hint) => hint.present === false),
    predicted: review ? review.predictedSlices.get(z) : undefined,
    reference: review ? review.isReference(z) : false,
  };
}

export function renderSliceStrip(el, ctx, review, goSlice) {
  const cells = [];
  for (let z = 0; z < ctx.geom.slices; z++) {
    const m = sliceMarks(ctx, review, z);
    const words = [m.hinted ? "hint" : m.absent ? "absent" : null, m.predicted ? "predicted mask" : null, m.reference ? "reference mask" : null].filter(Boolean);
    const cls = ["cell", z === ctx.z ? "current" : "", m.hinted ? "hinted" : m.absent ? "absent" : "", m.predicted ? "predicted" : "", m.reference ? "reference" : ""];
    cells.push(
      h(
        "button",
        {
          type: "button",
          class: cls.filter(Boolean).join(" "),
          title: `Slice ${z + 1}${words.length ? `: ${words.join(", ")}` : ""}`,
          "aria-label": `Slice ${z + 1}${words.length ? `: ${words.join(", ")}` : ""}`,
          "aria-current": z === ctx.z ? "true" : null,
          "data-testid": `strip-${z}`,
          onclick: () => goSlice(z),
        },
        h("span", { class: "mark-hint" }),
        h("span", { class: "mark-pred" }),
      ),
    );
  }
  const legend = h(
    "span",
    { class: "strip-legend muted" },
    h("span", { class: "key hinted" }),
    "hint ",
    h("span", { class: "key absent" }),
    "absent",
    review ? [" ", h("span", { class: "key predicted" }), "mask ", h("span", { class: "key reference" }), "reference"] : null,
  );
  mount(el, h("div", { class: "cells" }, cells), legend);
  // Tests wait for this: every slice's prediction mark is known.
  el.dataset.predictions = review && review.predictionsScanned ? "known" : "";
  const current = el.querySelector(".cell.current");
  if (current && current.scrollIntoView && el.scrollWidth > el.clientWidth) current.scrollIntoView({ block: "nearest", inline: "nearest" });
}
