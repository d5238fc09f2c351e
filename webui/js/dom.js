// Small DOM helpers shared by every screen: element builder, notices, confirm dialog.

/**
 * Build an element. attrs: plain attributes, `class`, `dataset`, `style` (object),
 * `on*` (listeners, e.g. onclick), `text`. Children: nodes, strings, arrays, null (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "style" && typeof value === "object") {
      // Custom properties ("--c") need setProperty; Object.assign ignores them.
      for (const [prop, v] of Object.entries(value)) {
        if (prop.startsWith("--")) el.style.setProperty(prop, v);
        else el.style[prop] = v;
      }
    }
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** Replace the children of `el` with `children`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let noticeTimer = null;

/** Hide the notice bar (a message about one screen must not linger on the next). */
export function clearNotice() {
  const bar = document.getElementById("notice");
  if (bar) bar.hidden = true;
  clearTimeout(noticeTimer);
}

/** Show a message in the global notice bar. kind: "info" | "error" | "ok". */
export function notify(message, kind = "info", ms = 6000) {
  const bar = document.getElementById("notice");
  if (!bar) return;
  bar.textContent = message;
  bar.className = `notice ${kind}`;
  bar.hidden = false;
  bar.setAttribute("role", kind === "error" ? "alert" : "status");
  clearTimeout(noticeTimer);
  if (ms > 0) noticeTimer = setTimeout(() => (bar.hidden = true), ms);
}

/** A modal yes/no dialog; resolves true when confirmed. */
export function confirmDialog(message, { ok = "OK", cancel = "Cancel" } = {}) {
  return new Promise((resolve) => {
    const dlg = h(
      "dialog",
      { class: "confirm", "data-testid": "confirm-dialog" },
      h("p", {}, message),
      h(
        "div",
        { class: "row end" },
        h("button", { type: "button", class: "secondary", onclick: () => close(false) }, cancel),
        h("button", { type: "button", class: "primary", "data-testid": "confirm-ok", onclick: () => close(true) }, ok),
      ),
    );
    function close(value) {
      dlg.close();
      dlg.remove();
      resolve(value);
    }
    dlg.addEventListener("cancel", () => close(false));
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** Format a number for display: fixed digits, "open" for infinite/null ends. */
export function fmt(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return "open";
  return Number(value).toFixed(digits);
}

/** Interval [lo, hi] with unit, e.g. "[12.0, 30.5] mm". */
export function fmtInterval(interval, unit = "", digits = 1) {
  if (!interval) return "—";
  const [lo, hi] = interval;
  return `[${fmt(lo, digits)}, ${fmt(hi, digits)}]${unit ? " " + unit : ""}`;
}

export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

/** Default class colours (used when the project does not store one). */
export const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990"];

export function classColor(cls, index) {
  return (cls && cls.color) || PALETTE[index % PALETTE.length];
}

/** "#rrggbb" -> [r, g, b]. */
export function hexToRgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 0];
}
