"""Image upload (PNG, NIfTI, DICOM), listing, slice rendering and the bad-input rules."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import select

from tests.api_helpers import Api, png_bytes


def _blob_files(app) -> set[Path]:  # type: ignore[no-untyped-def]
    root: Path = app.state.blobs.root
    return {p for p in root.rglob("*") if p.is_file()}


def _nifti_bytes(volume_xyz: np.ndarray, affine: np.ndarray) -> bytes:
    img = nib.Nifti1Image(volume_xyz.astype(np.int16), affine)
    return gzip.compress(img.to_bytes())


def test_upload_png_and_nifti_then_get_and_render(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    p = api.create_project()
    affine = np.diag([0.8, 0.7, 2.5, 1.0])
    affine[:3, 3] = [-10, 20, 5]
    vol = np.arange(20 * 16 * 5, dtype=np.int16).reshape(20, 16, 5)  # (x=col, y=row, z)
    files = [
        ("files", ("a.png", png_bytes(24, 40, seed=1), "image/png")),
        ("files", ("scan.nii.gz", _nifti_bytes(vol, affine), "application/gzip")),
    ]
    r = api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 201, r.text
    png_img, nii_img = r.json()
    assert png_img["name"] == "a.png" and png_img["shape"] == [1, 1, 24, 40]
    assert nii_img["name"] == "scan.nii.gz" and nii_img["shape"][0] == 5
    assert sorted(nii_img["shape"][2:]) == [16, 20]
    assert np.isclose(nii_img["spacing"][0], 2.5)
    assert (
        np.allclose(np.asarray(nii_img["affine"])[:3, 3], [-10, 20, 5])
        or nii_img["affine"] != np.eye(4).tolist()
    )
    assert api.client.get(f"/api/images/{png_img['id']}", headers=api.headers).json() == png_img
    r = api.client.get(
        f"/api/images/{nii_img['id']}/slices/4.png?wc=100&ww=50", headers=api.headers
    )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    rendered = np.asarray(PILImage.open(io.BytesIO(r.content)))
    expected = np.clip((vol[:, :, 4].T.astype(np.float32) - 75.0) * 255.0 / 50.0, 0, 255)
    assert rendered.shape == (16, 20)
    assert np.abs(rendered.astype(int) - expected.astype(np.uint8).astype(int)).max() <= 1
    wide = api.client.get(
        f"/api/images/{nii_img['id']}/slices/4.png?wc=100&ww=5000", headers=api.headers
    )
    assert wide.content != r.content  # the window changes the rendering
    assert (r.headers["X-Window-Center"], r.headers["X-Window-Width"]) == ("100", "50")
    auto = api.client.get(f"/api/images/{nii_img['id']}/slices/4.png", headers=api.headers)
    lo = float(auto.headers["X-Window-Center"]) - float(auto.headers["X-Window-Width"]) / 2
    assert vol[:, :, 4].min() - 1e-3 <= lo < vol[:, :, 4].max()  # the robust default window
    assert (
        api.client.get(f"/api/images/{nii_img['id']}/slices/5.png", headers=api.headers).status_code
        == 404
    )
    r = api.client.get(f"/api/images/{nii_img['id']}/slices/0.png?ww=0", headers=api.headers)
    assert r.status_code == 422
    proj = api.client.get(f"/api/projects/{p['id']}", headers=api.headers).json()
    assert proj["image_count"] == 2


def test_upload_dicom_series_keeps_originals(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    from tests.imaging.dicom_factory import make_ct_series

    p = api.create_project()
    hu = np.linspace(-1000, 1000, 3 * 12 * 10).reshape(3, 12, 10)
    datasets = make_ct_series(hu, windows=[(40.0, 400.0, "soft tissue")])
    files = []
    for i, ds in enumerate(datasets):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files.append(("files", (f"ct{i}.dcm", buf.getvalue(), "application/dicom")))
    r = api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 201, r.text
    (img,) = r.json()
    assert img["source_kind"] == "dicom" and img["shape"] == [3, 1, 12, 10]
    assert img["window_presets"][0]["center"] == 40.0
    from store.tables import Image

    with app.state.session_factory() as session:
        row = session.get(Image, img["id"])
        assert len(row.source_keys) == 3
        assert all(app.state.blobs.exists(k) for k in row.source_keys)


def test_not_an_image_is_422_and_nothing_is_stored(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    p = api.create_project()
    before = _blob_files(app)
    files = [
        ("files", ("good.png", png_bytes(), "image/png")),
        ("files", ("notes.png", b"this is plain text, not a picture", "image/png")),
    ]
    r = api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 422
    assert "notes.png" in r.json()["detail"]["message"]
    assert _blob_files(app) == before
    page = api.client.get(f"/api/projects/{p['id']}/images", headers=api.headers).json()
    assert page["total"] == 0


def test_broken_nifti_header_is_422(api: Api) -> None:
    p = api.create_project()
    files = [("files", ("bad.nii", b"\x00" * 400, "application/octet-stream"))]
    r = api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 422 and "bad.nii" in r.json()["detail"]["message"]


def test_upload_form_errors(api: Api) -> None:
    p = api.create_project()
    url = f"/api/projects/{p['id']}/images"
    r = api.client.post(url, json={"files": []}, headers=api.headers)
    assert r.status_code == 422 and r.json()["detail"]["code"] == "not_multipart"
    r = api.client.post(
        url, files=[("other", ("a.png", png_bytes(), "image/png"))], headers=api.headers
    )
    assert r.status_code == 422 and "other" in r.json()["detail"]["message"]


def test_upload_over_the_size_limit_is_413_and_stores_nothing(app, app_settings, api: Api) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from api.app import create_app

    small = create_app(app_settings.model_copy(update={"max_upload_bytes": 2000}))
    p = api.create_project()
    url = f"/api/projects/{p['id']}/images"
    before = _blob_files(app)
    files = [("files", ("big.png", png_bytes(64, 64, seed=3), "image/png"))]
    with TestClient(small) as client:
        r = client.post(url, files=files, headers=api.headers)
        assert r.status_code == 413, r.text
        assert "2000" in r.json()["detail"]["message"]
        # Without Content-Length (chunked), the limit is enforced while streaming.
        request = httpx.Request("POST", "http://testserver" + url, files=files)
        body = request.read()
        chunks = (body[i : i + 512] for i in range(0, len(body), 512))
        headers = {**api.headers, "Content-Type": request.headers["Content-Type"]}
        r = client.post(url, content=chunks, headers=headers)
        assert r.status_code == 413, r.text
    small.state.engine.dispose()
    few_voxels = create_app(app_settings.model_copy(update={"max_image_voxels": 1000}))
    with TestClient(few_voxels) as client:
        r = client.post(url, files=files, headers=api.headers)
        assert r.status_code == 413 and r.json()["detail"]["code"] == "image_too_large"
        assert "big.png" in r.json()["detail"]["message"]
    few_voxels.state.engine.dispose()
    assert _blob_files(app) == before
    assert api.client.get(url, headers=api.headers).json()["total"] == 0


def test_viewer_cannot_upload_and_outsider_cannot_see(api: Api) -> None:
    p = api.create_project()
    img = api.upload_png(p["id"])
    viewer = api.new_user("viewer", p["id"])
    outsider = api.new_user()
    files = [("files", ("a.png", png_bytes(), "image/png"))]
    assert (
        api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=viewer).status_code
        == 403
    )
    assert api.client.get(f"/api/images/{img['id']}", headers=viewer).status_code == 200
    assert api.client.get(f"/api/images/{img['id']}", headers=outsider).status_code == 404
    assert (
        api.client.get(f"/api/images/{img['id']}/slices/0.png", headers=outsider).status_code == 404
    )
    assert api.client.get(f"/api/projects/{p['id']}/images", headers=outsider).status_code == 404


def test_list_filters_by_review_status_and_paginates(api: Api) -> None:
    p = api.create_project()
    ids = [api.upload_png(p["id"], name=f"{i}.png", seed=i)["id"] for i in range(3)]
    r = api.client.put(
        f"/api/images/{ids[1]}/review", json={"status": "accepted"}, headers=api.headers
    )
    assert r.status_code == 200
    url = f"/api/projects/{p['id']}/images"
    accepted = api.client.get(f"{url}?review=accepted", headers=api.headers).json()
    assert [i["id"] for i in accepted["items"]] == [ids[1]]
    unreviewed = api.client.get(f"{url}?review=unreviewed", headers=api.headers).json()
    assert [i["id"] for i in unreviewed["items"]] == [ids[0], ids[2]]
    page = api.client.get(f"{url}?limit=2&offset=2", headers=api.headers).json()
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == [ids[2]]
    assert api.client.get(f"{url}?review=maybe", headers=api.headers).status_code == 422


def test_delete_image_removes_blobs(api: Api, app) -> None:  # type: ignore[no-untyped-def]
    p = api.create_project()
    img = api.upload_png(p["id"])
    from store.jobs_tables import ModelVersion, Prediction
    from store.tables import Image, ReferenceMask

    buf = io.BytesIO()
    PILImage.fromarray(np.zeros((32, 48), dtype=np.uint8), "L").save(buf, format="PNG")
    r = api.client.put(
        f"/api/images/{img['id']}/reference",
        files={"file": ("ref.png", buf.getvalue(), "image/png")},
        headers=api.headers,
    )
    assert r.status_code == 200, r.text
    blobs = app.state.blobs
    with app.state.session_factory() as session:
        version = ModelVersion(project_id=p["id"], version=1, checkpoint_key="none")
        session.add(version)
        session.flush()
        prediction_key = blobs.put_bytes(b"labels", ".npy")
        session.add(
            Prediction(image_id=img["id"], model_version_id=version.id, mask_key=prediction_key)
        )
        session.commit()
        key = session.get(Image, img["id"]).volume_key
        reference_key = session.scalars(
            select(ReferenceMask.mask_key).where(ReferenceMask.image_id == img["id"])
        ).one()
    keys = [key, reference_key, prediction_key]
    assert all(blobs.exists(k) for k in keys)
    annotator = api.new_user("annotator", p["id"])
    assert api.client.delete(f"/api/images/{img['id']}", headers=annotator).status_code == 403
    assert api.client.delete(f"/api/images/{img['id']}", headers=api.headers).status_code == 204
    assert not [k for k in keys if blobs.exists(k)]
    assert api.client.get(f"/api/images/{img['id']}", headers=api.headers).status_code == 404
