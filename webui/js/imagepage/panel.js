// The image screen's side panel: the hint panel (Hints mode, hintpanel.js) or the review panel
// (Review mode, review.js), re-rendered when the slice, class, instance or hints change.

import { renderHintPanel } from "../hintpanel.js";
import { ReviewPanel } from "../review.js";

/** Re-render the panel. Coalesced: several store events in one task re-render it once, after focus moved. */
export function refreshPanel(page) {
  if (page.queued.panel) return;
  page.queued.panel = true;
  requestAnimationFrame(() => {
    page.queued.panel = false;
    if (page.ctx.mode === "hints") renderHintPanel(page.el.side, page.ctx, page.actions);
    else if (page.reviewPanel) page.reviewPanel.renderHintSummary();
  });
}

/** Select instance i of the selected class. */
export function selectInstance(page, i) {
  page.ctx.instance = i;
  page.viewer.renderHints();
  refreshPanel(page);
}

/** ctx's panel hook, and the review panel in Review mode (page.reviewPanel, else null). */
export function wirePanel(page) {
  page.ctx.selectInstance = (i) => selectInstance(page, i);
  page.reviewPanel = page.mode === "review" ? new ReviewPanel(page.el.side, page.ctx) : null;
  return page.reviewPanel;
}
