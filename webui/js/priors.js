// Priors editor: per class, expected presence and ranges (mm / mm^2 or px) that hold on every
// slice of every image of the project (prior JSON of docs/interfaces.md).

import * as api from "./api.js";
import { h, mount, notify } from "./dom.js";
import { COMPONENTS, explicitInterval, loadUnits, withInterval } from "./hintpanel.js";

function num(text) {
  const t = String(text).trim();
  if (!t) return null;
  const v = Number(t);
  if (!Number.isFinite(v)) throw new Error(`"${text}" is not a number`);
  return v;
}

/** Priors answer -> {class name: prior}; accepts {priors: {...}}, {cls: prior} or a list. */
export function parsePriors(answer) {
  if (!answer) return {};
  if (Array.isArray(answer)) return Object.fromEntries(answer.map((p) => [p.class_name || p.name || p.class, p.prior || p.payload || p]));
  if (answer.priors && typeof answer.priors === "object") return parsePriors(answer.priors);
  return answer;
}

export async function render(panel, project) {
  await loadUnits();
  let priors = {};
  try {
    priors = parsePriors(await api.get(`/api/projects/${project.id}/priors`));
  } catch (err) {
    if (err.status !== 404) notify(err.message, "error");
  }
  const error = h("p", { class: "error", role: "alert", hidden: true, "data-testid": "priors-error" });
  const saved = h("span", { class: "muted", "data-testid": "priors-saved", role: "status" });
  const cards = project.classes.map((cls) => classCard(cls, priors[cls.name] || {}));

  function classCard(cls, prior) {
    const unit = prior.unit || "mm";
    const presence = h(
      "select",
      { name: "presence", "data-testid": `prior-presence-${cls.name}` },
      [["", "no prior"], ["maybe", "maybe present"], ["always", "on every slice"], ["never", "never"]].map(([v, l]) => h("option", { value: v, selected: (prior.presence || "") === v }, l)),
    );
    const unitSel = h("select", { name: "unit" }, ["mm", "px"].map((u) => h("option", { value: u, selected: unit === u }, u)));
    const rows = COMPONENTS.map((comp) => {
      const iv = explicitInterval(prior, comp) || [null, null];
      return h(
        "tr",
        { dataset: { component: comp.key } },
        h("th", {}, comp.label),
        h("td", {}, h("input", { class: "iv", name: `${comp.key}-lo`, "data-testid": `prior-${cls.name}-${comp.key}-lo`, value: iv[0] ?? "", placeholder: "open", inputmode: "decimal" })),
        h("td", {}, h("input", { class: "iv", name: `${comp.key}-hi`, "data-testid": `prior-${cls.name}-${comp.key}-hi`, value: iv[1] ?? "", placeholder: "open", inputmode: "decimal" })),
        h("td", { class: "unit" }, comp.unit[unit]),
      );
    });
    unitSel.addEventListener("change", () => rows.forEach((r, i) => (r.querySelector(".unit").textContent = COMPONENTS[i].unit[unitSel.value])));
    const card = h(
      "fieldset",
      { class: "card prior-card", style: { "--c": cls.color }, dataset: { cls: cls.name } },
      h("legend", {}, h("span", { class: "swatch" }), cls.name),
      h("div", { class: "row" }, h("label", {}, "Presence", presence), h("label", {}, "Unit", unitSel)),
      h("table", { class: "table intervals-table" }, h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "min"), h("th", {}, "max"), h("th", {}, ""))), h("tbody", {}, rows)),
    );
    card.collect = () => {
      let p = {};
      if (presence.value) p.presence = presence.value;
      for (const comp of COMPONENTS) {
        const lo = num(card.querySelector(`[name="${comp.key}-lo"]`).value);
        const hi = num(card.querySelector(`[name="${comp.key}-hi"]`).value);
        if (lo !== null || hi !== null) p = withInterval(p, comp, [lo, hi]);
      }
      delete p.present;
      if (Object.keys(p).length) p.unit = unitSel.value;
      return p;
    };
    return card;
  }

  const form = h(
    "form",
    {
      class: "stack",
      "data-testid": "priors-form",
      onsubmit: async (e) => {
        e.preventDefault();
        error.hidden = true;
        saved.textContent = "";
        let body;
        try {
          body = {};
          for (const card of cards) {
            const p = card.collect();
            if (Object.keys(p).length) body[card.dataset.cls] = p;
          }
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
          return;
        }
        try {
          await api.put(`/api/projects/${project.id}/priors`, body);
          saved.textContent = "Priors saved.";
          notify("Priors saved", "ok", 2500);
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        }
      },
    },
    h("p", { class: "muted" }, "Priors hold on every slice of every image; they are intersected with the hints at training time. Empty = open."),
    h("div", { class: "prior-grid" }, cards),
    error,
    h("div", { class: "row" }, h("button", { type: "submit", class: "primary", "data-testid": "save-priors" }, "Save priors"), saved),
  );
  mount(panel, form);
}
