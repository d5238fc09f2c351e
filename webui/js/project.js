// One project: tabs for images (list, upload), priors, training (jobs, model versions) and downloads.

import * as api from "./api.js";
import { h, mount, notify } from "./dom.js";
import { setCrumbs } from "./main.js";

const TABS = [
  ["images", "Images"],
  ["priors", "Priors"],
  ["training", "Training"],
  ["downloads", "Downloads"],
];

export async function render(root, { projectId, tab }) {
  const project = await api.get(`/api/projects/${projectId}`);
  setCrumbs([["Projects", "#/projects"], [project.name, `#/projects/${project.id}`]]);
  const panel = h("div", { class: "tab-panel" });
  mount(
    root,
    h(
      "section",
      { class: "page" },
      h("div", { class: "row" }, h("h1", {}, project.name), h("div", { class: "chips" }, project.classes.map((c) => h("span", { class: "chip", style: { "--c": c.color } }, `${c.index}: ${c.name}`)))),
      h("nav", { class: "tabs", role: "tablist" }, TABS.map(([key, label]) => h("a", { href: `#/projects/${project.id}/${key}`, role: "tab", class: key === tab ? "active" : "", "aria-selected": String(key === tab), "data-testid": `tab-${key}` }, label))),
      panel,
    ),
  );
  if (tab === "images") return renderImages(panel, project);
  if (tab === "priors") return (await import("./priors.js")).render(panel, project);
  if (tab === "training") return (await import("./training.js")).render(panel, project);
  if (tab === "downloads") return renderDownloads(panel, project);
}

/**
 * Fill an image card's status line: hinted slices (GET /images/{id}/hints), whether a prediction
 * exists (GET /images/{id}/predictions) and the review state (in the image itself).
 */
async function fillStatus(img, el) {
  const review = img.review_status ? `review: ${img.review_status}` : "not reviewed";
  el.textContent = review;
  el.dataset.review = img.review_status || "none";
  try {
    const [hinted, predictions] = await Promise.all([api.get(`/api/images/${img.id}/hints`), api.get(`/api/images/${img.id}/predictions`).catch(() => null)]);
    const n = api.items(hinted).length;
    const single = (img.num_slices ?? (img.shape ? img.shape[0] : 1)) === 1;
    const parts = [single ? (n ? "hinted" : "no hints") : `${n} hinted slice${n === 1 ? "" : "s"}`];
    if (predictions) parts.push(api.items(predictions).length ? "predicted" : "no prediction");
    parts.push(review);
    el.textContent = parts.join(" · ");
  } catch {
    /* the review state alone is still right */
  }
}

function shapeText(img) {
  const z = img.num_slices ?? (img.shape ? img.shape[0] : 1);
  const hgt = img.height ?? (img.shape ? img.shape[img.shape.length - 2] : "?");
  const w = img.width ?? (img.shape ? img.shape[img.shape.length - 1] : "?");
  const sp = img.spacing;
  const mm = sp && img.source_kind !== "raster" ? ` · ${Number(sp[sp.length - 1]).toFixed(2)}×${Number(sp[sp.length - 2]).toFixed(2)}${z > 1 ? `×${Number(sp[0]).toFixed(2)}` : ""} mm` : "";
  return `${w}×${hgt}${z > 1 ? `×${z}` : ""} px${mm}`;
}

async function thumbnail(img, el) {
  const z = Math.floor((img.num_slices ?? (img.shape ? img.shape[0] : 1)) / 2);
  try {
    const res = await api.request("GET", `/api/images/${img.id}/slices/${z}.png`, { as: "blob" });
    const url = URL.createObjectURL(res);
    el.src = url;
    el.onload = () => URL.revokeObjectURL(url);
  } catch {
    el.alt = "no preview";
  }
}

function renderImages(panel, project) {
  const list = h("div", { class: "image-grid", "data-testid": "image-list" });
  const filter = h(
    "select",
    { "aria-label": "Filter by review status", onchange: () => refresh() },
    [["", "All images"], ["unreviewed", "Not reviewed"], ["accepted", "Accepted"], ["rejected", "Rejected"], ["needs-hints", "Needs hints"]].map(([v, l]) => h("option", { value: v }, l)),
  );
  const progress = h("progress", { max: 1, value: 0, hidden: true, "data-testid": "upload-progress" });
  const status = h("p", { class: "upload-status", "data-testid": "upload-status", role: "status" });
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, "data-testid": "upload-input", accept: ".dcm,.zip,.nii,.gz,.png,.jpg,.jpeg,.tif,.tiff,application/dicom", onchange: () => uploadFiles(fileInput.files) });
  const drop = h(
    "div",
    { class: "dropzone", "data-testid": "dropzone", tabindex: 0, onclick: () => fileInput.click(), onkeydown: (e) => (e.key === "Enter" || e.key === " ") && fileInput.click() },
    h("strong", {}, "Drop images here or click to choose"),
    h("span", { class: "muted" }, "DICOM files or .zip, NIfTI (.nii, .nii.gz), PNG / JPG / TIFF"),
    fileInput,
  );
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    uploadFiles(e.dataTransfer.files);
  });

  async function uploadFiles(files) {
    if (!files || !files.length) return;
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    progress.hidden = false;
    progress.value = 0;
    status.className = "upload-status";
    status.textContent = `Uploading ${files.length} file${files.length > 1 ? "s" : ""}…`;
    try {
      const answer = await api.upload(`/api/projects/${project.id}/images`, form, (f) => (progress.value = f));
      const added = api.items(answer).length || (answer && answer.images ? answer.images.length : 0);
      status.textContent = `Added ${added} image${added === 1 ? "" : "s"}.`;
      status.classList.add("ok");
      refresh();
    } catch (err) {
      status.textContent = `Upload refused: ${err.message}`;
      status.classList.add("error");
    } finally {
      progress.hidden = true;
      fileInput.value = "";
    }
  }

  async function refresh() {
    const query = {};
    if (filter.value) query.review = filter.value;
    try {
      const images = await api.getAll(`/api/projects/${project.id}/images`, query);
      mount(
        list,
        images.length
          ? images.map((img) => {
              const thumb = h("img", { class: "thumb", alt: img.name });
              thumbnail(img, thumb);
              const status = h("p", { class: "status", "data-testid": "image-status" });
              fillStatus(img, status);
              return h(
                "article",
                { class: "card image-card", "data-testid": "image-card", dataset: { imageId: img.id } },
                h("a", { href: `#/images/${img.id}/hints`, class: "thumb-link" }, thumb),
                h("h3", { title: img.name }, img.name),
                h("p", { class: "muted" }, shapeText(img)),
                status,
                h("div", { class: "row" }, h("a", { class: "button", href: `#/images/${img.id}/hints` }, "Hints"), h("a", { class: "button secondary", href: `#/images/${img.id}/review` }, "Review")),
              );
            })
          : h("p", { class: "muted" }, "No images here yet."),
      );
    } catch (err) {
      mount(list, h("p", { class: "error" }, err.message));
    }
  }

  mount(panel, drop, progress, status, h("div", { class: "row" }, h("h2", {}, "Images"), filter), list);
  refresh();
  // A file dropped beside the drop zone would make the browser open it and leave the app.
  const guard = (e) => {
    if (!drop.contains(e.target)) e.preventDefault();
  };
  window.addEventListener("dragover", guard);
  window.addEventListener("drop", guard);
  return () => {
    window.removeEventListener("dragover", guard);
    window.removeEventListener("drop", guard);
  };
}

function renderDownloads(panel, project) {
  const model = h("select", { "aria-label": "Model version" }, h("option", { value: "" }, "Latest model"));
  const acceptedOnly = h("input", { type: "checkbox", "data-testid": "accepted-only" });
  api
    .get(`/api/projects/${project.id}/models`)
    .then((a) => api.items(a).forEach((m) => model.append(h("option", { value: m.id }, `v${m.version ?? m.id}`))))
    .catch(() => {});
  // DICOM SEG refers to a DICOM series: offered only when every image is DICOM.
  const dicomNote = h("p", { class: "muted", "data-testid": "dicom-seg-note", hidden: true }, "DICOM SEG needs DICOM images: this project has NIfTI or PNG images too.");
  api
    .getAll(`/api/projects/${project.id}/images`)
    .then((images) => {
      const allDicom = images.length > 0 && images.every((im) => im.source_kind === "dicom");
      const seg = panel.querySelector("[data-testid=download-project-dicom-seg]");
      if (seg) seg.hidden = !allDicom;
      dicomNote.hidden = allDicom || !images.length;
    })
    .catch(() => {});
  const button = (format, label) =>
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        "data-testid": `download-project-${format}`,
        hidden: format === "dicom-seg", // until the images are known to be DICOM
        onclick: async () => {
          try {
            await api.download(`/api/projects/${project.id}/predictions.zip`, { format, model: model.value, accepted_only: acceptedOnly.checked ? "true" : null }, `project-${project.id}-${format}.zip`);
          } catch (err) {
            notify(err.message, "error");
          }
        },
      },
      label,
    );
  mount(
    panel,
    h(
      "div",
      { class: "card stack" },
      h("h2", {}, "Download all predicted masks"),
      h("p", { class: "muted" }, "One zip with a mask per image (PNG: one file per slice); labels 0 = background, k = class k."),
      h("label", {}, "Model", model),
      h("label", { class: "check" }, acceptedOnly, "Only images accepted in Review (for this model version)"),
      h("div", { class: "row" }, button("nifti", "NIfTI (.zip)"), button("png", "PNG (.zip)"), button("dicom-seg", "DICOM SEG (.zip)")),
      dicomNote,
    ),
  );
}
