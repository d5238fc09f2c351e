// First page: sign in (password or API token), list projects and their images via the REST API.
const state = { token: localStorage.getItem("shapehint.token") || "", objectUrls: [] };

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)shapehint_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.token) headers.set("Authorization", `Bearer ${state.token}`);
  const method = (options.method || "GET").toUpperCase();
  if (!state.token && method !== "GET") headers.set("X-CSRF-Token", csrfToken());
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.detail?.message || message;
    } catch { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

async function showWorkspace() {
  const me = await (await api("/api/users/me")).json();
  document.getElementById("whoami").textContent = me.username;
  document.getElementById("signin").hidden = true;
  document.getElementById("workspace").hidden = false;
  await listProjects();
}

async function listProjects() {
  const page = await (await api("/api/projects?limit=200")).json();
  const list = document.getElementById("projects");
  list.replaceChildren(
    ...page.items.map((p) =>
      el("li", {},
        el("button", { type: "button", onclick: () => listImages(p) },
          `${p.name} (${p.image_count} images; ${p.classes.map((c) => c.name).join(", ")})`)),
    ),
  );
  if (page.items.length === 0) list.append(el("li", {}, "No projects yet: create one with POST /api/projects."));
}

async function listImages(project) {
  state.objectUrls.forEach((u) => URL.revokeObjectURL(u));
  state.objectUrls = [];
  document.getElementById("images-hint").textContent = `Images of ${project.name}`;
  const page = await (await api(`/api/projects/${project.id}/images?limit=100`)).json();
  const list = document.getElementById("images");
  list.replaceChildren();
  for (const image of page.items) {
    const img = el("img", { alt: `slice 0 of ${image.name}`, loading: "lazy" });
    const [z, , h, w] = image.shape;
    list.append(el("li", {}, el("figure", {}, img,
      el("figcaption", {}, `${image.name} · ${z}×${h}×${w} · ${image.review_status || "not reviewed"}`))));
    // <img src> cannot send the Authorization header, so fetch the PNG and show a blob URL.
    api(`/api/images/${image.id}/slices/${Math.floor(z / 2)}.png`)
      .then((r) => r.blob())
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        state.objectUrls.push(url);
        img.src = url;
      })
      .catch(() => { img.alt = "rendering failed"; });
  }
  if (page.items.length === 0) list.append(el("li", {}, "No images yet."));
}

function showError(error) {
  document.getElementById("signin-status").textContent = error.message;
}

document.getElementById("password-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  state.token = "";
  localStorage.removeItem("shapehint.token");
  try {
    await api("/api/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: form.get("username"), password: form.get("password") }),
    });
    await showWorkspace();
  } catch (error) { showError(error); }
});

document.getElementById("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  state.token = new FormData(event.target).get("token").trim();
  try {
    await showWorkspace();
    localStorage.setItem("shapehint.token", state.token);
  } catch (error) {
    state.token = "";
    showError(error);
  }
});

document.getElementById("signout").addEventListener("click", async () => {
  if (!state.token) await api("/api/auth/logout", { method: "POST" }).catch(() => {});
  state.token = "";
  localStorage.removeItem("shapehint.token");
  location.reload();
});

showWorkspace().catch(() => { /* not signed in yet: the sign-in form stays visible */ });
