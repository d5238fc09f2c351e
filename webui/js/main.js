// Entry point: hash router, sign-in state, user menu. Each screen module exports
// `render(root, params) -> cleanup | undefined`.

import * as api from "./api.js";
import { $, clearNotice, h, mount, notify } from "./dom.js";
import { showHelp } from "./shortcuts.js";

const routes = [
  [/^#\/login$/, () => import("./login.js"), () => ({})],
  [/^#\/account$/, () => import("./account.js"), () => ({})],
  [/^#\/projects$/, () => import("./projects.js"), () => ({})],
  [/^#\/projects\/(\d+)(?:\/(images|priors|training|downloads))?$/, () => import("./project.js"), (m) => ({ projectId: Number(m[1]), tab: m[2] || "images" })],
  [/^#\/images\/(\d+)(?:\/(hints|review))?(?:\?z=(\d+))?$/, () => import("./image.js"), (m) => ({ imageId: Number(m[1]), mode: m[2] || "hints", z: m[3] !== undefined ? Number(m[3]) : null })],
];

export const session = { user: null };
let cleanup = null;

/** Set the breadcrumb trail: [[label, href | null], ...]. */
export function setCrumbs(trail) {
  mount(
    $("#crumbs"),
    trail.map(([label, href], i) => [i ? h("span", { class: "sep" }, "/") : null, href ? h("a", { href }, label) : h("span", {}, label)]),
  );
}

async function currentUser() {
  // Signed out for sure: no token and no session (its readable CSRF cookie is gone), so skip
  // the request rather than log a 401 in the console on every page load.
  if (!api.auth.token && !api.csrfToken()) return null;
  try {
    return await api.get("/api/users/me", { noAuthRedirect: true });
  } catch (err) {
    if (err.status === 401 || err.status === 403) return null;
    throw err;
  }
}

function renderUserMenu() {
  const el = $("#user-menu");
  if (!session.user) return mount(el);
  mount(
    el,
    h("a", { href: "#/account", "data-testid": "user-name", title: "Account and API tokens" }, session.user.username),
    h("button", { type: "button", class: "ghost", onclick: signOut }, "Sign out"),
  );
}

export async function signOut() {
  try {
    if (api.auth.mode === "cookie") await api.post("/api/auth/logout", {}, { noAuthRedirect: true });
  } catch {
    /* already signed out */
  }
  api.auth.clear();
  session.user = null;
  renderUserMenu();
  location.hash = "#/login";
}

export async function signedIn(user) {
  session.user = user;
  renderUserMenu();
}

async function route() {
  const hash = location.hash || "#/projects";
  if (!session.user && hash !== "#/login") {
    const user = await currentUser().catch(() => null);
    if (!user) {
      sessionStorage.setItem("shapehint.after-login", hash);
      location.hash = "#/login";
      return;
    }
    await signedIn(user);
  }
  for (const [re, load, params] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    if (typeof cleanup === "function") cleanup();
    cleanup = null;
    clearNotice();
    const root = $("#app");
    root.className = "app";
    mount(root);
    try {
      const mod = await load();
      cleanup = await mod.render(root, params(m));
    } catch (err) {
      mount(root, h("p", { class: "error", role: "alert" }, err.message));
      notify(err.message, "error");
    }
    return;
  }
  location.hash = "#/projects";
}

api.setUnauthorizedHandler(() => {
  if (location.hash !== "#/login") {
    session.user = null;
    sessionStorage.setItem("shapehint.after-login", location.hash);
    location.hash = "#/login";
  }
});

window.addEventListener("hashchange", route);
$("#help-button").addEventListener("click", () => showHelp());
window.addEventListener("keydown", (e) => {
  const t = e.target;
  const typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
  if (e.key === "?" && !typing) showHelp();
});
route();
