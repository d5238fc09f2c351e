"""Take the README's screenshots (docs/screenshots/hints.png and review.png) on a real cardiac MRI
volume: an ACDC frame from ../shared/data (read at run time, never copied into the repository).

    .venv/bin/python scripts/screenshots.py [--patient patient002_frame01] [--budget 300]
                                            [--train-with VOLUME ...] [--no-train]
                                            [--out docs/screenshots]

Starts a throwaway service (API + embedded worker, as tests/browser does), creates a project with
RV, Myo and LV, uploads the volume as NIfTI (in-plane spacing 1.5 mm, as the data's README advises;
10 mm between slices), signs in an annotator in Chromium (/usr/bin/chromium, via Playwright) and
gives, on every slice with ground truth, hints computed from the mask's moments: an RV ellipse, an
LV ellipse and a Myo ring whose hole is the LV ellipse (one contour, linked in the editor). It then
screenshots the Hints view of a mid slice, trains a model (--budget seconds of training, on this
volume and the --train-with ones; --no-train keeps the existing review.png) and screenshots
Review. Viewport 1440x900; PNGs are quantised to stay well below 300 kB.
"""

from __future__ import annotations

import argparse
import io
import math
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data" / "acdc" / "data"
CLASSES = [
    {"name": "RV", "color": "#4363d8"},
    {"name": "Myo", "color": "#3cb44b"},
    {"name": "LV", "color": "#e6194b"},
]
LABELS = {"RV": 1, "Myo": 2, "LV": 3}  # ACDC label values
SPACING = (10.0, 1.5, 1.5)  # (z, row, col) mm
# Four more ED frames for training: 30 s on one volume gives empty masks on a CPU, 300 s on five
# volumes (about 10 minutes with prediction on two cores) a presentable Review.
TRAIN_WITH = [
    "patient019_frame01",
    "patient028_frame01",
    "patient030_frame01",
    "patient039_frame01",
]
VIEWPORT = {"width": 1440, "height": 900}
MAX_BYTES = 300_000


def load_volume(name: str) -> tuple[np.ndarray, np.ndarray]:
    import h5py

    path = DATA / f"{name}.h5"
    if not path.exists():
        raise SystemExit(f"{path} not found: the ACDC data lives in ../shared/data (README there)")
    with h5py.File(path) as f:
        return f["image"][()].astype(np.float32), f["label"][()].astype(np.uint8)


def nifti_bytes(volume: np.ndarray) -> bytes:
    """(Z, H, W) -> .nii.gz bytes with array axes (col, row, slice) and the spacing above."""
    import gzip

    import nibabel as nib

    affine = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    img = nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine)
    return gzip.compress(img.to_bytes())


def ellipse_of(mask: np.ndarray) -> dict | None:
    """The ellipse with the mask's area centroid and second moments (x = column, y = row)."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 5:
        return None
    cx, cy = xs.mean(), ys.mean()
    cov = np.cov(np.stack([xs - cx, ys - cy]))
    vals, vecs = np.linalg.eigh(cov)  # ascending
    # A filled ellipse with semi-axis a has variance a^2 / 4 along it.
    a, b = 2 * math.sqrt(max(vals[1], 0.25)), 2 * math.sqrt(max(vals[0], 0.25))
    angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
    angle = ((angle + 90) % 180) - 90
    r = lambda v: round(float(v), 2)  # noqa: E731
    return {"cx": r(cx), "cy": r(cy), "a": r(a), "b": r(b), "angle": r(angle)}


def slice_hints(label: np.ndarray) -> dict:
    hints: dict = {}
    rv = ellipse_of(label == LABELS["RV"])
    lv = ellipse_of(label == LABELS["LV"])
    outer = ellipse_of((label == LABELS["Myo"]) | (label == LABELS["LV"]))
    hints["RV"] = {"present": True, "ellipse": rv, "tolerance": 0.25} if rv else {"present": False}
    hints["LV"] = {"present": True, "ellipse": lv, "tolerance": 0.2} if lv else {"present": False}
    if outer and lv and (label == LABELS["Myo"]).sum() >= 5:
        # The ring's hole is the LV outline itself: the editor shows them linked.
        hints["Myo"] = {"present": True, "ellipse": outer, "hole": lv, "tolerance": 0.2}
    elif (label == LABELS["Myo"]).sum() == 0:
        hints["Myo"] = {"present": False}
    return hints


def save_png(data: bytes, path: Path) -> int:
    """Quantise to 256 colours (the UI is flat colours plus a grey image) and save optimised."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    q = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    q.save(buf, format="PNG", optimize=True)
    out = buf.getvalue()
    path.write_bytes(out)
    return len(out)


def focus_on(page, box: tuple[float, float, float, float]) -> None:  # type: ignore[no-untyped-def]
    """Zoom the viewer so that the image box (x0, y0, x1, y1) fills most of it."""
    page.evaluate(
        """([x0, y0, x1, y1]) => { const v = window.shapehintViewer;
             const w = v.container.clientWidth, h = v.container.clientHeight;
             v.scale = Math.min(w / (x1 - x0), h / (y1 - y0)) * 0.9;
             v.offX = w / 2 - ((x0 + x1) / 2 + 0.5) * v.scale;
             v.offY = h / 2 - ((y0 + y1) / 2 + 0.5) * v.scale;
             v.render(); }""",
        [float(v) for v in box],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patient", default="patient002_frame01")
    ap.add_argument("--budget", type=float, default=300.0, help="training seconds (>= 10)")
    ap.add_argument(
        "--train-with",
        nargs="*",
        default=TRAIN_WITH,
        metavar="VOLUME",
        help="more ACDC volumes (e.g. patient019_frame01) hinted the same way, for training only",
    )
    ap.add_argument("--no-train", action="store_true", help="keep the existing review.png")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    import httpx
    from playwright.sync_api import sync_playwright

    from shapehint.demo import local_server

    volume, labels = load_volume(args.patient)
    full = [
        z for z in range(labels.shape[0]) if all((labels[z] == v).any() for v in LABELS.values())
    ]
    if not full:
        raise SystemExit(f"{args.patient}: no slice shows RV, Myo and LV")
    z_mid = full[len(full) // 2]
    args.out.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix="shapehint-shots-"))
    try:
        with local_server(tmp, worker_log=tmp / "worker.log") as (url, token):
            admin = httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            password = secrets.token_urlsafe(12)
            r = admin.post("/api/users", json={"username": "expert", "password": password})
            r.raise_for_status()
            project = admin.post(
                "/api/projects", json={"name": "ACDC cine MRI", "classes": CLASSES}
            ).json()
            pid = project["id"]
            admin.post(
                f"/api/projects/{pid}/members", json={"username": "expert", "role": "annotator"}
            ).raise_for_status()
            # The shown volume first; --train-with adds volumes that only feed the training.
            uploads = [(args.patient, volume, labels)] + [
                (name, *load_volume(name)) for name in args.train_with
            ]
            hinted = []  # (image id, labels)
            for name, vol, lab in uploads:
                r = admin.post(
                    f"/api/projects/{pid}/images",
                    files=[("files", (f"{name}.nii.gz", nifti_bytes(vol), "application/gzip"))],
                )
                r.raise_for_status()
                hinted.append((r.json()[0]["id"], lab))
            iid = hinted[0][0]
            print(f"image {iid}: {labels.shape[0]} slices, hints on {len(full)}, shown z={z_mid}")

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                page = browser.new_context(viewport=VIEWPORT).new_page()
                page.set_default_timeout(30_000)
                page.goto(f"{url}/")
                page.fill("[data-testid=login-form] input[name=username]", "expert")
                page.fill("[data-testid=login-form] input[name=password]", password)
                page.click("[data-testid=login-form] button[type=submit]")
                page.wait_for_selector("[data-testid=user-name]")
                # Hints as the signed-in expert (the browser's own API client and session).
                for image_id, lab in hinted:
                    for z in range(lab.shape[0]):
                        if not lab[z].any():
                            continue
                        page.evaluate(
                            """async ([iid, z, body]) => { const api = await import('/js/api.js');
                                 await api.put(`/api/images/${iid}/slices/${z}/hints`, body); }""",
                            [image_id, z, slice_hints(lab[z])],
                        )
                page.goto(f"{url}/#/images/{iid}/hints?z={z_mid}")
                page.wait_for_selector(f"[data-testid=viewer][data-loaded-z='{z_mid}']")
                page.click("[data-testid=class-Myo]")
                page.wait_for_selector("[data-testid=link-hole]")
                ys, xs = np.nonzero(labels[z_mid])
                pad = 28
                focus_on(page, (xs.min() - pad, ys.min() - pad, xs.max() + pad, ys.max() + pad))
                page.wait_for_timeout(300)
                n = save_png(page.screenshot(), args.out / "hints.png")
                print(f"hints.png: {n / 1000:.0f} kB")

                if not args.no_train:
                    job = admin.post(
                        f"/api/projects/{pid}/jobs",
                        json={"kind": "train", "config": {"budget": args.budget}},
                    )
                    job.raise_for_status()
                    jid = job.json()["id"]
                    t0 = time.monotonic()
                    while True:
                        state = admin.get(f"/api/jobs/{jid}").json()
                        if state["status"] in ("succeeded", "failed", "cancelled"):
                            break
                        if time.monotonic() - t0 > 1800:
                            raise SystemExit("training took more than 30 minutes")
                        time.sleep(2)
                    if state["status"] != "succeeded":
                        raise SystemExit(f"training {state['status']}: {state.get('error')}")
                    print(f"trained in {time.monotonic() - t0:.0f} s")
                    page.goto(f"{url}/#/images/{iid}/review?z={z_mid}")
                    page.wait_for_selector(
                        "[data-testid=overlay-canvas][data-painted='1']", timeout=60_000
                    )
                    focus_on(page, (xs.min() - pad, ys.min() - pad, xs.max() + pad, ys.max() + pad))
                    page.wait_for_timeout(300)
                    n = save_png(page.screenshot(), args.out / "review.png")
                    print(f"review.png: {n / 1000:.0f} kB")
                browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in ("hints.png", "review.png"):
        size = (args.out / name).stat().st_size
        if size > MAX_BYTES:
            print(f"warning: {name} is {size / 1000:.0f} kB (> {MAX_BYTES / 1000:.0f} kB)")


if __name__ == "__main__":
    main()
