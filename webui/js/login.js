// Sign-in: username + password (session cookie) or a personal API token (kept for this tab).

import * as api from "./api.js";
import { h, mount } from "./dom.js";
import { setCrumbs, signedIn } from "./main.js";

export function render(root) {
  setCrumbs([["Sign in", null]]);
  const error = h("p", { class: "error", role: "alert", "data-testid": "login-error", hidden: true });
  const showError = (msg) => {
    error.textContent = msg;
    error.hidden = false;
  };

  async function done() {
    const user = await api.get("/api/users/me");
    await signedIn(user);
    const next = sessionStorage.getItem("shapehint.after-login");
    sessionStorage.removeItem("shapehint.after-login");
    location.hash = next && next !== "#/login" ? next : "#/projects";
  }

  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const passwordForm = h(
    "form",
    {
      class: "card stack",
      "data-testid": "login-form",
      onsubmit: async (e) => {
        e.preventDefault();
        error.hidden = true;
        try {
          api.auth.clear();
          await api.post("/api/auth/login", { username: username.value, password: password.value }, { noAuthRedirect: true });
          await done();
        } catch (err) {
          showError(err.message);
        }
      },
    },
    h("h2", {}, "Sign in"),
    h("label", {}, "Username", username),
    h("label", {}, "Password", password),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );

  const token = h("input", { name: "token", type: "password", autocomplete: "off", required: true });
  const remember = h("input", { type: "checkbox", name: "remember" });
  const tokenForm = h(
    "form",
    {
      class: "card stack",
      "data-testid": "token-form",
      onsubmit: async (e) => {
        e.preventDefault();
        error.hidden = true;
        api.auth.setToken(token.value.trim(), remember.checked);
        try {
          await done();
        } catch (err) {
          api.auth.clear();
          showError(err.message);
        }
      },
    },
    h("h2", {}, "Or use an API token"),
    h("label", {}, "Token", token),
    h("label", { class: "inline" }, remember, "Remember on this computer"),
    h("button", { type: "submit", class: "secondary" }, "Use token"),
  );
  mount(root, h("section", { class: "login" }, h("h1", {}, "shapehint"), h("p", { class: "muted" }, "Segmentation models from a few shape hints."), error, passwordForm, tokenForm));
  username.focus();
}
