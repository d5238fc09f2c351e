// Keyboard shortcuts: screens register {keys, label, run} lists; one listener dispatches them and
// the help overlay ("?") lists exactly what is registered, so the list can never go stale.

import { h } from "./dom.js";
import { isTyping } from "./viewer.js";

const GLOBAL = [
  { keys: "?", label: "Show this help" },
  { keys: "Esc", label: "Close dialogs" },
];
let active = [];

/** Normalised name of a key event: "ctrl+shift+z", "arrowup", "e", "1", "delete". */
export function keyName(e) {
  const parts = [];
  if (e.ctrlKey || e.metaKey) parts.push("ctrl");
  if (e.altKey) parts.push("alt");
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key.toLowerCase();
  if (e.shiftKey && (e.key.length !== 1 || /[a-z]/i.test(e.key))) parts.push("shift");
  parts.push(key === " " ? "space" : key);
  return parts.join("+");
}

function onKey(e) {
  if (isTyping(e) || document.querySelector("dialog[open]")) return;
  const name = keyName(e);
  for (const sc of active) {
    const names = sc.match || [sc.keys.toLowerCase()];
    if (names.includes(name)) {
      e.preventDefault();
      sc.run(e);
      return;
    }
  }
}
window.addEventListener("keydown", onKey);

/**
 * Activate a list of shortcuts: [{keys: "Ctrl+Z" (shown), match: ["ctrl+z"], label, run}].
 * Returns a function that deactivates them.
 */
export function registerShortcuts(list) {
  active = list;
  return () => {
    if (active === list) active = [];
  };
}

export function showHelp() {
  if (document.querySelector("dialog.help[open]")) return;
  const rows = [...active, ...GLOBAL].map((sc) => h("tr", {}, h("td", {}, h("kbd", {}, sc.keys)), h("td", {}, sc.label)));
  const dlg = h(
    "dialog",
    { class: "help", "data-testid": "help-overlay", "aria-label": "Keyboard shortcuts" },
    h("h2", {}, "Keyboard shortcuts"),
    h("table", {}, h("tbody", {}, rows)),
    h("p", { class: "muted" }, "Mouse: wheel = slice, Ctrl+wheel = zoom, middle or Space+drag = pan, right-drag = window/level."),
    h("div", { class: "row end" }, h("button", { type: "button", class: "primary", onclick: () => close() }, "Close")),
  );
  function close() {
    dlg.close();
    dlg.remove();
  }
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}
