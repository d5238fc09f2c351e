"""Issue 11, items 5 and 7: inputs that used to answer 500 get a clear 4xx (507 for a full disk)
and store nothing; job event streams are authorised before they start and while they run."""

from __future__ import annotations

import errno
import gzip
import io
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fastapi import FastAPI
from sqlalchemy import delete

from tests.api_helpers import Api, png_bytes

HUGE = 10**400  # a 401-digit integer: valid JSON, no float holds it


@pytest.mark.parametrize(
    "hint",
    [
        {"present": True, "size": [HUGE, None]},
        {"ellipse": {"cx": HUGE, "cy": 10, "a": 5, "b": 4, "angle": 0}},
        {"ellipse": {"cx": 20, "cy": 10, "a": 5, "b": 4, "angle": 0}, "tolerance": HUGE},
    ],
)
def test_huge_integers_in_hints_are_422(api: Api, hint: dict) -> None:
    p = api.create_project()
    img = api.upload_png(p["id"])
    r = api.client.put(
        f"/api/images/{img['id']}/slices/0/hints", json={"LV": hint}, headers=api.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["code"] == "invalid_hint" and "LV" in r.json()["detail"]["message"]


def test_huge_integers_in_priors_are_422(api: Api) -> None:
    p = api.create_project()
    r = api.client.put(
        f"/api/projects/{p['id']}/priors",
        json={"LV": {"presence": "always", "size": [1, HUGE]}},
        headers=api.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["code"] == "invalid_prior"


def test_nul_bytes_in_text_are_422(api: Api) -> None:
    bad = "bad\x00name"
    r = api.client.post(
        "/api/projects", json={"name": bad, "classes": [{"name": "A"}]}, headers=api.headers
    )
    assert r.status_code == 422, r.text
    r = api.client.post(
        "/api/projects",
        json={"name": "ok", "description": bad, "classes": [{"name": "A"}]},
        headers=api.headers,
    )
    assert r.status_code == 422, r.text
    p = api.create_project()
    r = api.client.patch(f"/api/projects/{p['id']}", json={"name": bad}, headers=api.headers)
    assert r.status_code == 422, r.text
    r = api.client.post("/api/tokens", json={"name": bad}, headers=api.headers)
    assert r.status_code == 422, r.text
    img = api.upload_png(p["id"])
    r = api.client.put(
        f"/api/images/{img['id']}/review",
        json={"status": "accepted", "comment": bad},
        headers=api.headers,
    )
    assert r.status_code == 422, r.text
    r = api.client.post("/api/auth/login", json={"username": bad, "password": "whatever-1"})
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["detail"]["message"]


def test_nul_bytes_in_dicom_series_description_are_stripped(api: Api) -> None:
    from tests.imaging.dicom_factory import make_ct_series

    p = api.create_project()
    hu = np.linspace(-1000, 1000, 2 * 12 * 10).reshape(2, 12, 10)
    files = []
    for i, ds in enumerate(make_ct_series(hu, description="Heart\x00 T1")):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        files.append(("files", (f"ct{i}.dcm", buf.getvalue(), "application/dicom")))
    r = api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 201, r.text
    assert r.json()[0]["name"] == "Heart T1"


def _blob_files(app: FastAPI) -> set[Path]:
    root: Path = app.state.blobs.root
    return {p for p in root.rglob("*") if p.is_file()}


def test_full_disk_on_upload_is_507_and_stores_nothing(
    api: Api, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = api.create_project()
    before = _blob_files(app)
    blobs = app.state.blobs
    real_put = blobs.put_file
    calls = 0

    def put_until_full(source: Path, suffix: str = "") -> str:
        nonlocal calls
        calls += 1
        if calls > 1:  # the first image's volume fits, the second does not
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_put(source, suffix)

    monkeypatch.setattr(blobs, "put_file", put_until_full)
    files = [("files", (f"s{i}.png", png_bytes(seed=i), "image/png")) for i in range(2)]
    r = api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 507, r.text
    assert r.json()["detail"]["code"] == "insufficient_storage"
    assert calls == 2
    assert _blob_files(app) == before
    page = api.client.get(f"/api/projects/{p['id']}/images", headers=api.headers).json()
    assert page["total"] == 0


def _nifti(volume: np.ndarray, slope: float | None = None) -> bytes:
    raw = bytearray(nib.Nifti1Image(volume, np.eye(4)).to_bytes())
    if slope is not None:
        # nibabel refuses to write an infinite slope; patch the header field (offset 112).
        raw[112:116] = np.float32(slope).tobytes()
    return gzip.compress(bytes(raw))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("nan.nii.gz", _nifti(np.where(np.eye(8)[:, :, None] > 0, np.nan, 1.0).astype(np.float32))),
        ("inf.nii.gz", _nifti(np.full((8, 8, 2), np.inf, dtype=np.float32))),
        ("slope.nii.gz", _nifti(np.ones((8, 8, 2), dtype=np.int16), slope=float("inf"))),
    ],
)
def test_non_finite_voxels_are_refused(api: Api, name: str, data: bytes) -> None:
    p = api.create_project()
    files = [("files", (name, data, "application/gzip"))]
    r = api.client.post(f"/api/projects/{p['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 422, r.text
    message = r.json()["detail"]["message"]
    assert name in message and ("NaN" in message or "scl_slope" in message), message
    page = api.client.get(f"/api/projects/{p['id']}/images", headers=api.headers).json()
    assert page["total"] == 0


# ------------------------------------------------------------------------ job event streams


def _running_job(app: FastAPI, project_id: int) -> int:
    from store.db import utcnow
    from store.jobs_tables import Job

    with app.state.session_factory() as session:
        now = utcnow()
        job = Job(
            project_id=project_id,
            kind="train",
            status="running",
            config={},
            progress={"phase": "training", "epoch": 1},
            started_at=now,
            heartbeat_at=now,
        )
        session.add(job)
        session.commit()
        return job.id


def test_events_of_missing_or_foreign_jobs_are_404_before_the_stream(
    api: Api, app: FastAPI
) -> None:
    r = api.client.get("/api/jobs/2000000000/events", headers=api.headers)
    assert r.status_code == 404, r.text
    assert r.json()["detail"]["code"] == "not_found"
    p = api.create_project()
    job_id = _running_job(app, p["id"])
    outsider = api.new_user()
    r = api.client.get(f"/api/jobs/{job_id}/events", headers=outsider)
    assert r.status_code == 404, r.text
    with app.state.session_factory() as session:
        from store.jobs_tables import Job

        session.execute(delete(Job).where(Job.id == job_id))
        session.commit()


@pytest.mark.timeout(60)
def test_event_stream_ends_when_the_watcher_is_removed(api: Api, app: FastAPI) -> None:
    p = api.create_project()
    job_id = _running_job(app, p["id"])
    viewer = api.new_user("viewer", p["id"])
    members = api.client.get(f"/api/projects/{p['id']}/members", headers=api.headers).json()
    viewer_id = next(
        m["user_id"] for m in members["items"] if m["username"] == viewer["X-Username"]
    )
    removed = threading.Event()
    lines: list[str] = []
    try:
        with api.client.stream("GET", f"/api/jobs/{job_id}/events", headers=viewer) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith("event: progress") and not removed.is_set():
                    gone = api.client.delete(
                        f"/api/projects/{p['id']}/members/{viewer_id}", headers=api.headers
                    )
                    assert gone.status_code == 204
                    removed.set()
        # The stream ended by itself (the job is still running): no end event was sent.
        assert removed.is_set()
        assert not any(line.startswith("event: end") for line in lines)
    finally:
        from store.jobs_tables import Job

        with app.state.session_factory() as session:
            session.execute(delete(Job).where(Job.id == job_id))
            session.commit()
