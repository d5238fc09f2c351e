// Account: who am I, change password, personal API tokens (create, list, revoke).

import * as api from "./api.js";
import { confirmDialog, h, mount, notify } from "./dom.js";
import { session, setCrumbs } from "./main.js";

export async function render(root) {
  setCrumbs([["Projects", "#/projects"], ["Account", null]]);
  const tokens = h("tbody", {});
  const created = h("div", { class: "created-token", hidden: true, "data-testid": "new-token" });
  const tokenName = h("input", { placeholder: "e.g. laptop scripts", required: true });
  const pw = h("input", { type: "password", autocomplete: "new-password", minlength: 8 });

  async function refresh() {
    const list = api.items(await api.get("/api/tokens"));
    mount(
      tokens,
      list.length
        ? list.map((t) =>
            h(
              "tr",
              { class: t.revoked_at ? "revoked" : "" },
              h("td", {}, t.name),
              h("td", {}, h("code", {}, `${t.prefix}…`)),
              h("td", {}, new Date(t.created_at).toLocaleString()),
              h("td", {}, t.last_used_at ? new Date(t.last_used_at).toLocaleString() : "never"),
              h(
                "td",
                {},
                t.revoked_at
                  ? "revoked"
                  : h(
                      "button",
                      {
                        type: "button",
                        class: "danger",
                        onclick: async () => {
                          if (!(await confirmDialog(`Revoke token "${t.name}"? Scripts using it stop working.`, { ok: "Revoke" }))) return;
                          await api.del(`/api/tokens/${t.id}`).catch((err) => notify(err.message, "error"));
                          refresh();
                        },
                      },
                      "Revoke",
                    ),
              ),
            ),
          )
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No tokens yet.")),
    );
  }

  mount(
    root,
    h(
      "section",
      { class: "page narrow" },
      h("h1", {}, `Account: ${session.user ? session.user.username : ""}`),
      h(
        "div",
        { class: "card stack" },
        h("h2", {}, "API tokens"),
        h("p", { class: "muted" }, "For scripts: send Authorization: Bearer <token>. The token is shown once."),
        h(
          "form",
          {
            class: "row",
            onsubmit: async (e) => {
              e.preventDefault();
              try {
                const t = await api.post("/api/tokens", { name: tokenName.value.trim() });
                mount(created, h("p", {}, "Copy your new token now; it is not shown again:"), h("code", { class: "token" }, t.token));
                created.hidden = false;
                tokenName.value = "";
                refresh();
              } catch (err) {
                notify(err.message, "error");
              }
            },
          },
          tokenName,
          h("button", { type: "submit", class: "primary" }, "Create token"),
        ),
        created,
        h("table", { class: "table" }, h("thead", {}, h("tr", {}, ["Name", "Starts with", "Created", "Last used", ""].map((c) => h("th", {}, c)))), tokens),
      ),
      h(
        "form",
        {
          class: "card stack",
          onsubmit: async (e) => {
            e.preventDefault();
            try {
              await api.patch(`/api/users/${session.user.id}`, { password: pw.value });
              pw.value = "";
              notify("Password changed", "ok");
            } catch (err) {
              notify(err.message, "error");
            }
          },
        },
        h("h2", {}, "Password"),
        h("label", {}, "New password (at least 8 characters)", pw),
        h("button", { type: "submit", class: "secondary" }, "Change password"),
      ),
    ),
  );
  refresh().catch((err) => notify(err.message, "error"));
}
