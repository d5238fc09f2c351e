"""``shapehint.client`` and the CLI built on it, against a real server (uvicorn on a free port
plus one worker, as ``shapehint demo`` runs it): project, folder upload, hint files, training
followed to its end, downloads."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from models.synthetic import make_dataset, make_hints
from shapehint.cli import app
from shapehint.client import (
    ApiError,
    Client,
    Job,
    _update_bar,
    hint_from_csv_row,
    parse_events,
    read_hints_file,
    resolve_connection,
)
from shapehint.demo import local_server
from tests.worker.helpers import TINY_CONFIG, png

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with local_server(tmp_path_factory.mktemp("server")) as (url, token):
        yield url, token


def _image_folder(folder: Path, n: int = 3) -> list[np.ndarray]:
    """``n`` synthetic PNGs (one in a subfolder) and a 2-slice NIfTI; returns the PNG masks."""
    data = make_dataset(n, size=32, num_classes=1, seed=3)
    (folder / "sub").mkdir(parents=True)
    for i, (image, _) in enumerate(data):
        (folder / ("sub" if i == 0 else "") / f"img{i}.png").write_bytes(png(image))
    volume = np.stack([data[0][0][0], data[1][0][0]], axis=-1).astype(np.float32)  # (H, W, Z)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), folder / "vol.nii.gz")
    (folder / "notes.txt").write_text("not an image")
    return [mask for _, mask in data]


def test_a_script_runs_a_project_end_to_end(server: tuple[str, str], tmp_path: Path) -> None:
    url, token = server
    masks = _image_folder(tmp_path / "images")
    with Client(url, token) as sh:
        assert "status" in sh.health()
        project = sh.create_project("client-e2e", ["LV"])
        assert project.classes == ["LV"] and project.image_count == 0
        images = sh.upload_folder(project.id, tmp_path / "images")
        assert sorted(i.name for i in images) == ["img0.png", "img1.png", "img2.png", "vol.nii.gz"]
        by_name = {i.name: i for i in images}
        assert by_name["vol.nii.gz"].shape[0] == 2

        # Hints: a CSV for two PNGs (by name) and a JSON for the third (by id).
        rows = []
        for i in (0, 1):
            hint = make_hints(masks[i], 1, seed=i, rel=(0.15, 0.15), class_names=("LV",))["LV"]
            rows.append(
                {
                    "image": f"img{i}.png",
                    "z": 0,
                    "class": "LV",
                    "present": "true",
                    "size_min": hint["size"][0],
                    "size_max": hint["size"][1],
                    "centroid_x_min": hint["centroid"]["x"][0],
                    "centroid_x_max": hint["centroid"]["x"][1],
                    "centroid_y_min": hint["centroid"]["y"][0],
                    "centroid_y_max": hint["centroid"]["y"][1],
                }
            )
        with open(tmp_path / "hints.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        assert sh.put_hints_file(project.id, tmp_path / "hints.csv") == 2
        third = make_hints(masks[2], 1, seed=2, rel=(0.15, 0.15), class_names=("LV",))
        record = [{"image": by_name["img2.png"].id, "z": 0, "hints": third}]
        (tmp_path / "hints.json").write_text(json.dumps(record))
        assert sh.put_hints_file(project.id, tmp_path / "hints.json") == 1

        seen: list[Job] = []
        # Long enough (still a few seconds) that the stream sees training steps, not only the
        # finished job: a 3-epoch run can end before the client starts following it.
        job = sh.train(project.id, TINY_CONFIG | {"epochs": 60})
        assert job.status == "queued"
        done = sh.wait(job.id, progress=True, on_update=seen.append)
        assert done.status == "succeeded", done.error
        assert done.result is not None and done.result["predictions"] == 4
        assert seen[-1] == done and any(j.progress.get("step") for j in seen)

        mask = sh.download_prediction(by_name["img1.png"].id, tmp_path / "m.png", fmt="png")
        assert np.asarray(PILImage.open(mask)).shape == (32, 32)
        archive = sh.download_predictions(project.id, tmp_path / "out" / "masks.zip")
        with zipfile.ZipFile(archive) as z:
            assert len(z.namelist()) == 4 and all(n.endswith(".nii.gz") for n in z.namelist())
        assert not list((tmp_path / "out").glob("*.part"))


def test_errors_name_what_went_wrong(server: tuple[str, str], tmp_path: Path) -> None:
    url, token = server
    with Client(url, "sh_not_a_token") as bad, pytest.raises(ApiError) as err:
        bad.projects()
    assert err.value.status == 401
    with Client(url, token) as sh:
        with pytest.raises(ApiError) as err:
            sh.project(999_999)
        assert err.value.status == 404 and err.value.code
        project = sh.create_project("client-errors", ["LV"])
        (tmp_path / "h.json").write_text(json.dumps({"missing.png": {"0": {"LV": {}}}}))
        with pytest.raises(ValueError, match=r"missing\.png"):
            sh.put_hints_file(project.id, tmp_path / "h.json")
        with pytest.raises(ApiError) as err:
            sh.train(project.id, {"no_such_field": 1})
        assert err.value.status == 422


def test_the_cli_does_the_same_with_the_token_from_a_config_file(
    server: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = server
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{url}"\ntoken = "{token}"\n')
    monkeypatch.delenv("SHAPEHINT_URL", raising=False)
    monkeypatch.delenv("SHAPEHINT_TOKEN", raising=False)
    monkeypatch.setenv("SHAPEHINT_CONFIG", str(config))
    masks = _image_folder(tmp_path / "images", n=2)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    project_id = run("create-project", "cli", "--class", "LV").strip()
    listing = run("upload", project_id, str(tmp_path / "images" / "sub"), str(tmp_path / "images"))
    assert listing.count("img0.png") == 2  # the folder, and the subfolder again (recursive)
    hints = {
        "img1.png": {"0": make_hints(masks[1], 1, seed=1, rel=(0.15, 0.15), class_names=("LV",))}
    }
    (tmp_path / "hints.json").write_text(json.dumps(hints))
    assert "1 slice" in run("put-hints", project_id, str(tmp_path / "hints.json"))
    out = run("submit", project_id, "--config", json.dumps(TINY_CONFIG))
    assert "succeeded" in out and "model version 1" in out
    run("download", project_id, str(tmp_path / "masks.zip"), "--format", "png")
    with zipfile.ZipFile(tmp_path / "masks.zip") as z:
        assert all(n.endswith(".png") for n in z.namelist()) and z.namelist()

    failed = runner.invoke(app, ["follow", "999999"])
    assert failed.exit_code == 1 and "404" in failed.output


def test_connection_comes_from_arguments_then_environment_then_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('url = "http://file:1/"\ntoken = "from-file"\n')
    monkeypatch.setenv("SHAPEHINT_CONFIG", str(config))
    monkeypatch.delenv("SHAPEHINT_URL", raising=False)
    monkeypatch.delenv("SHAPEHINT_TOKEN", raising=False)
    assert resolve_connection() == ("http://file:1", "from-file")
    monkeypatch.setenv("SHAPEHINT_TOKEN", "from-env")
    assert resolve_connection() == ("http://file:1", "from-env")
    assert resolve_connection("http://arg:2", "from-arg") == ("http://arg:2", "from-arg")
    monkeypatch.setenv("SHAPEHINT_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("SHAPEHINT_TOKEN")
    assert resolve_connection() == ("http://127.0.0.1:8000", None)


def test_hint_files_and_event_streams_parse() -> None:
    text = "image,z,class,present,cx,cy,a,b,angle,tolerance\nx.png,2,LV,,10,12,5,4,30,0.1\n"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert hint_from_csv_row(rows[0]) == {
        "ellipse": {"cx": 10.0, "cy": 12.0, "a": 5.0, "b": 4.0, "angle": 30.0},
        "tolerance": 0.1,
    }
    absent = {"image": "x", "z": "0", "class": "RV", "present": "false"}
    assert hint_from_csv_row(absent) == {"present": False}
    events = list(parse_events(["event: progress", "data: {}", "", ": keep-alive", "", "data: 1"]))
    assert events == [("progress", "{}"), ("message", "1")]


def test_read_hints_file_accepts_both_json_shapes(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"a.png": {"1": {"LV": {"present": False}}}}))
    (tmp_path / "b.json").write_text(
        json.dumps([{"image": "a.png", "z": 1, "hints": {"LV": {"present": False}}}])
    )
    assert read_hints_file(tmp_path / "a.json") == read_hints_file(tmp_path / "b.json")


@pytest.mark.parametrize(
    ("progress", "what", "done", "total"),
    [
        ({"phase": "fitting hints", "slices_done": 3, "slices": 10}, "fitting hints", 3, 10),
        ({"phase": "training", "step": 5, "steps": 40, "epoch": 1, "epochs": 4}, "training", 5, 40),
        ({"phase": "predicting", "images_done": 2, "images": 7}, "predicting", 2, 7),
    ],
)
def test_the_progress_bar_follows_each_phase(
    progress: dict, what: str, done: int, total: int
) -> None:
    from tqdm import tqdm

    job = Job(1, 1, "train", "running", progress, None, None, {})
    with tqdm(disable=True) as bar:
        _update_bar(bar, job)
        assert (bar.desc, bar.n, bar.total) == (f"{what}: ", done, total)
