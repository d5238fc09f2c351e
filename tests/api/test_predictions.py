"""Prediction downloads (PNG, NIfTI with the original affine, DICOM SEG, zip) on both databases.

The label maps here are stored directly (a model version + prediction rows with mask blobs, as
the worker writes them), so every export path is checked against known labels; predictions made
by real trainings are checked in tests/worker/ and tests/test_e2e_demo.py.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest
from fastapi import FastAPI
from PIL import Image as PILImage

from store.blobs import BlobStore
from store.db import session_scope
from store.jobs_tables import ModelVersion, Prediction
from tests.api_helpers import Api
from tests.imaging.dicom_factory import make_ct_series, write_datasets


def _labels(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, size=shape, dtype=np.uint8)


def _store(app: FastAPI, project_id: int, version: int, masks: dict[int, np.ndarray]) -> int:
    """A model version with one prediction per image (what a worker would have written)."""
    blobs: BlobStore = app.state.blobs
    with session_scope(app.state.engine) as session:
        mv = ModelVersion(
            project_id=project_id,
            version=version,
            checkpoint_key=blobs.put_bytes(b"not read by these routes", ".pt"),
            config={},
            metrics={},
            class_names=["LV", "RV"],
            epochs=1,
        )
        session.add(mv)
        session.flush()
        for image_id, labels in masks.items():
            buf = io.BytesIO()
            np.save(buf, labels)
            session.add(
                Prediction(
                    image_id=image_id,
                    model_version_id=mv.id,
                    mask_key=blobs.put_bytes(buf.getvalue(), ".npy"),
                )
            )
        return mv.id


@pytest.fixture(scope="module")
def predicted(api: Api, app: FastAPI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    project = api.create_project(classes=("LV", "RV"))
    png_image = api.upload_png(project["id"], name="slice.png", height=24, width=40)
    volume = np.random.default_rng(0).integers(-200, 300, size=(3, 16, 20)).astype(np.int16)
    paths = write_datasets(
        make_ct_series(volume, spacing=(2.5, 0.8, 0.7)), tmp_path_factory.mktemp("dcm")
    )
    files = [("files", (p.name, Path(p).read_bytes(), "application/dicom")) for p in paths]
    r = api.client.post(f"/api/projects/{project['id']}/images", files=files, headers=api.headers)
    assert r.status_code == 201, r.text
    dicom_image = r.json()[0]
    assert dicom_image["shape"][0] == 3
    old = {png_image["id"]: _labels((1, 24, 40), 1), dicom_image["id"]: _labels((3, 16, 20), 2)}
    new = {png_image["id"]: _labels((1, 24, 40), 3), dicom_image["id"]: _labels((3, 16, 20), 4)}
    v1 = _store(app, project["id"], 1, old)
    v2 = _store(app, project["id"], 2, new)
    return {
        "project": project,
        "png": png_image,
        "dicom": dicom_image,
        "old": old,
        "new": new,
        "v1": v1,
        "v2": v2,
    }


def _get(api: Api, image_id: int, **params: Any):  # type: ignore[no-untyped-def]
    return api.client.get(f"/api/images/{image_id}/prediction", params=params, headers=api.headers)


def test_png_is_the_label_map_of_the_newest_or_chosen_version(
    api: Api, predicted: dict[str, Any]
) -> None:
    image_id = predicted["png"]["id"]
    r = _get(api, image_id)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-model-version"] == str(predicted["v2"])
    assert "slice_labels.png" in r.headers["content-disposition"]
    np.testing.assert_array_equal(
        np.asarray(PILImage.open(io.BytesIO(r.content))), predicted["new"][image_id][0]
    )
    r = _get(api, image_id, model=predicted["v1"], format="png")
    np.testing.assert_array_equal(
        np.asarray(PILImage.open(io.BytesIO(r.content))), predicted["old"][image_id][0]
    )


def test_png_of_a_volume_needs_a_slice(api: Api, predicted: dict[str, Any]) -> None:
    image_id = predicted["dicom"]["id"]
    r = _get(api, image_id, format="png")
    assert r.status_code == 422 and "z=" in r.json()["detail"]["message"]
    r = _get(api, image_id, format="png", z=2)
    np.testing.assert_array_equal(
        np.asarray(PILImage.open(io.BytesIO(r.content))), predicted["new"][image_id][2]
    )
    assert _get(api, image_id, format="png", z=3).status_code == 422


def test_nifti_keeps_the_original_affine(api: Api, predicted: dict[str, Any]) -> None:
    image_id = predicted["dicom"]["id"]
    r = _get(api, image_id, format="nifti")
    assert r.status_code == 200, r.text
    nii = nib.Nifti1Image.from_bytes(gzip.decompress(r.content))
    image = api.client.get(f"/api/images/{image_id}", headers=api.headers).json()
    np.testing.assert_allclose(nii.affine, np.asarray(image["affine"]), atol=1e-5)
    data = np.asarray(nii.dataobj)
    np.testing.assert_array_equal(data, np.transpose(predicted["new"][image_id], (2, 1, 0)))


def test_dicom_seg_references_the_series_and_names_the_classes(
    api: Api, predicted: dict[str, Any]
) -> None:
    image_id = predicted["dicom"]["id"]
    r = _get(api, image_id, format="dicom-seg")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/dicom"
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(io.BytesIO(r.content)))
    labels = [d.SegmentLabel for d in seg.SegmentSequence]
    assert labels == ["LV", "RV"]
    refs = seg.ReferencedSeriesSequence[0]
    assert len(refs.ReferencedInstanceSequence) == 3
    expected = predicted["new"][image_id]
    for k in (1, 2):
        source_uids = [
            (str(refs.SeriesInstanceUID), uid.ReferencedSOPInstanceUID)
            for uid in refs.ReferencedInstanceSequence
        ]
        assert source_uids  # the SEG points at the uploaded series
        mask = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[u for _, u in source_uids],
            segment_numbers=[k],
            combine_segments=False,
        )[..., 0]
        assert mask.sum() == (expected == k).sum()


def test_dicom_seg_of_a_png_is_a_clear_422(api: Api, predicted: dict[str, Any]) -> None:
    r = _get(api, predicted["png"]["id"], format="dicom-seg")
    assert r.status_code == 422
    assert "DICOM" in r.json()["detail"]["message"]
    assert _get(api, predicted["png"]["id"], format="jpeg").status_code == 422


def test_project_zip(api: Api, predicted: dict[str, Any]) -> None:
    pid = predicted["project"]["id"]
    r = api.client.get(f"/api/projects/{pid}/predictions.zip", headers=api.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = zf.namelist()
        assert len(names) == 2 and all(n.endswith("_labels.nii.gz") for n in names)
    r = api.client.get(
        f"/api/projects/{pid}/predictions.zip",
        params={"format": "png", "model": predicted["v1"]},
        headers=api.headers,
    )
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = sorted(zf.namelist())
        assert len(names) == 1 + 3  # one PNG for the 2D image, one per slice of the volume
        png_name = next(n for n in names if n.startswith("slice"))
        got = np.asarray(PILImage.open(io.BytesIO(zf.read(png_name))))
    np.testing.assert_array_equal(got, predicted["old"][predicted["png"]["id"]][0])
    r = api.client.get(
        f"/api/projects/{pid}/predictions.zip",
        params={"format": "dicom-seg"},
        headers=api.headers,
    )
    assert r.status_code == 422 and "slice.png" in r.json()["detail"]["message"]


def test_missing_predictions_and_strangers(api: Api, predicted: dict[str, Any]) -> None:
    project = api.create_project()
    image = api.upload_png(project["id"])
    r = _get(api, image["id"])
    assert r.status_code == 404 and r.json()["detail"]["code"] == "no_prediction"
    r = api.client.get(f"/api/projects/{project['id']}/predictions.zip", headers=api.headers)
    assert r.status_code == 404
    assert _get(api, predicted["png"]["id"], model=999999).status_code == 404
    stranger = api.new_user()
    r = api.client.get(f"/api/images/{predicted['png']['id']}/prediction", headers=stranger)
    assert r.status_code == 404
    listed = api.client.get(
        f"/api/images/{predicted['png']['id']}/predictions", headers=api.headers
    ).json()
    assert [p["model_version_id"] for p in listed] == [predicted["v2"], predicted["v1"]]
