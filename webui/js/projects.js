// Project list and project creation (classes with colours).

import * as api from "./api.js";
import { PALETTE, h, mount, notify } from "./dom.js";
import { setCrumbs } from "./main.js";

export async function render(root) {
  setCrumbs([["Projects", null]]);
  const list = h("div", { class: "project-list", "data-testid": "project-list" }, h("p", { class: "muted" }, "Loading…"));
  mount(root, h("section", { class: "page" }, h("div", { class: "row" }, h("h1", {}, "Projects")), h("div", { class: "columns" }, list, createForm())));
  try {
    const projects = await api.getAll("/api/projects");
    mount(
      list,
      projects.length
        ? projects.map((p) =>
            h(
              "a",
              { class: "card project", href: `#/projects/${p.id}`, "data-testid": "project-card" },
              h("h3", {}, p.name),
              h("div", { class: "chips" }, (p.classes || []).map((c) => h("span", { class: "chip", style: { "--c": c.color } }, c.name))),
              h("p", { class: "muted" }, `${p.image_count ?? "?"} images · you are ${p.role || "member"}`),
            ),
          )
        : h("p", { class: "muted" }, "No projects yet: create one."),
    );
  } catch (err) {
    mount(list, h("p", { class: "error" }, err.message));
  }
}

function classRow(index, name = "") {
  const row = h(
    "div",
    { class: "row class-row" },
    h("input", { type: "color", value: PALETTE[index % PALETTE.length], "aria-label": "Class colour", class: "class-color" }),
    h("input", { type: "text", value: name, placeholder: "Class name, e.g. LV", "aria-label": "Class name", class: "class-name" }),
    h("button", { type: "button", class: "ghost", title: "Remove class", onclick: () => row.remove() }, "×"),
  );
  return row;
}

function createForm() {
  const name = h("input", { name: "project-name", required: true, placeholder: "e.g. Cardiac MRI" });
  const description = h("textarea", { name: "description", rows: 2 });
  const rows = h("div", { class: "stack" }, classRow(0));
  const error = h("p", { class: "error", role: "alert", hidden: true });
  return h(
    "form",
    {
      class: "card stack",
      "data-testid": "create-project",
      onsubmit: async (e) => {
        e.preventDefault();
        error.hidden = true;
        const classes = Array.from(rows.querySelectorAll(".class-row"))
          .map((r) => ({ name: r.querySelector(".class-name").value.trim(), color: r.querySelector(".class-color").value }))
          .filter((c) => c.name);
        try {
          const project = await api.post("/api/projects", { name: name.value.trim(), description: description.value, classes });
          notify(`Project "${project.name}" created`, "ok");
          location.hash = `#/projects/${project.id}`;
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
        }
      },
    },
    h("h2", {}, "New project"),
    h("label", {}, "Name", name),
    h("label", {}, "Description", description),
    h("fieldset", {}, h("legend", {}, "Classes (label 1, 2, … in this order)"), rows, h("button", { type: "button", class: "secondary", onclick: () => rows.append(classRow(rows.children.length)) }, "+ Add class")),
    error,
    h("button", { type: "submit", class: "primary" }, "Create project"),
  );
}
