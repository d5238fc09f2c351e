"""A typed Python client of the shapehint REST API (httpx).

```python
from shapehint.client import Client

with Client.from_env() as sh:  # SHAPEHINT_URL / SHAPEHINT_TOKEN or ~/.config/shapehint/config.toml
    project = sh.create_project("heart", ["LV", "Myo"])
    sh.upload_folder(project.id, "scans/")
    sh.put_hints_file(project.id, "hints.csv")
    job = sh.wait(sh.train(project.id).id, progress=True)
    sh.download_predictions(project.id, "masks.zip", fmt="nifti")
```

Where the server and token come from (first found wins): the arguments, ``SHAPEHINT_URL`` and
``SHAPEHINT_TOKEN``, then the TOML file ``$SHAPEHINT_CONFIG`` or
``$XDG_CONFIG_HOME/shapehint/config.toml`` (``~/.config/...``) with keys ``url`` and ``token``.

Hint files (``put_hints_file``), one hint JSON per image, slice and class as in
``docs/interfaces.md``; ``image`` is the uploaded file name or the image id:

- JSON: ``[{"image": "a.png", "z": 0, "hints": {"LV": {...}, "RV": {"present": false}}}, ...]``
  or ``{"a.png": {"0": {"LV": {...}}}}``.
- CSV: a header row with ``image,z,class`` and any of ``present, unit, tolerance, size_min,
  size_max, centroid_x_min, centroid_x_max, centroid_y_min, centroid_y_max, length_min,
  length_max`` and the ellipse ``cx, cy, a, b, angle``; an empty cell gives nothing.
"""

from __future__ import annotations

import csv
import json
import os
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
Format = Literal["nifti", "png", "dicom-seg"]
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
# What ``upload_folder`` sends: rasters, NIfTI, DICOM files or zips of them.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm", ".zip")


class ApiError(Exception):
    """An error answer of the server: HTTP status, ``detail.code`` and ``detail.message``."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message, self.detail = status, code, message, detail


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    classes: list[str]
    image_count: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Project:
        names = [c["name"] for c in sorted(d["classes"], key=lambda c: c["index"])]
        return cls(int(d["id"]), d["name"], names, int(d.get("image_count", 0)), d)


@dataclass(frozen=True)
class Image:
    id: int
    project_id: int
    name: str
    shape: list[int]  # [Z, C, H, W]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Image:
        return cls(int(d["id"]), int(d["project_id"]), d["name"], list(d["shape"]), d)


@dataclass(frozen=True)
class Job:
    id: int
    project_id: int
    kind: str
    status: str
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Job:
        return cls(
            int(d["id"]),
            int(d["project_id"]),
            d["kind"],
            d["status"],
            d.get("progress") or {},
            d.get("result"),
            d.get("error"),
            d,
        )


def config_path() -> Path:
    """``$SHAPEHINT_CONFIG``, else ``$XDG_CONFIG_HOME/shapehint/config.toml``."""
    if explicit := os.environ.get("SHAPEHINT_CONFIG"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "shapehint" / "config.toml"


def resolve_connection(
    url: str | None = None, token: str | None = None, path: Path | None = None
) -> tuple[str, str | None]:
    """``(url, token)`` from the arguments, the environment, then the config file."""
    url = url or os.environ.get("SHAPEHINT_URL")
    token = token or os.environ.get("SHAPEHINT_TOKEN")
    if url is None or token is None:
        file = path or config_path()
        stored: dict[str, Any] = tomllib.loads(file.read_text()) if file.is_file() else {}
        url = url or stored.get("url")
        token = token or stored.get("token")
    return (url or DEFAULT_URL).rstrip("/"), token


def _raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    response.read()
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, dict):
        raise ApiError(response.status_code, detail.get("code", "error"), detail["message"], detail)
    raise ApiError(response.status_code, "error", response.text[:500] or response.reason_phrase)


def image_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that ``upload_folder`` sends, sorted: known suffixes, and
    DICOM files without one (``DICM`` at byte 128)."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.name.lower()
        if name.endswith(IMAGE_SUFFIXES) or (not path.suffix and _is_dicom(path)):
            found.append(path)
    return found


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(128)
        return f.read(4) == b"DICM"


def _float(cell: str | None) -> float | None:
    return None if cell is None or cell.strip() == "" else float(cell)


def _pair(row: dict[str, str], stem: str) -> list[float | None] | None:
    lo, hi = _float(row.get(f"{stem}_min")), _float(row.get(f"{stem}_max"))
    return None if lo is None and hi is None else [lo, hi]


def hint_from_csv_row(row: dict[str, str]) -> dict[str, Any]:
    """One CSV row (see the module docstring) -> the hint JSON of its class."""
    hint: dict[str, Any] = {}
    if (present := (row.get("present") or "").strip().lower()) != "":
        hint["present"] = present in {"1", "true", "yes", "y"}
    if unit := (row.get("unit") or "").strip():
        hint["unit"] = unit
    for stem in ("size", "length"):
        if (pair := _pair(row, stem)) is not None:
            hint[stem] = pair
    centroid = {axis: _pair(row, f"centroid_{axis}") for axis in ("x", "y")}
    if any(v is not None for v in centroid.values()):
        hint["centroid"] = {k: v for k, v in centroid.items() if v is not None}
    ellipse = {k: _float(row.get(k)) for k in ("cx", "cy", "a", "b", "angle")}
    if any(v is not None for v in ellipse.values()):
        hint["ellipse"] = {k: (0.0 if v is None else v) for k, v in ellipse.items()}
    if (tolerance := _float(row.get("tolerance"))) is not None:
        hint["tolerance"] = tolerance
    return hint


def read_hints_file(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """A JSON or CSV hint file -> ``{(image name or id, z): {class: hint}}``."""
    slices: dict[tuple[str, int], dict[str, Any]] = defaultdict(dict)
    if path.suffix.lower() == ".csv":
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                key = (row["image"].strip(), int(row["z"]))
                slices[key][row["class"].strip()] = hint_from_csv_row(row)
        return dict(slices)
    data = json.loads(path.read_text())
    records: Iterable[dict[str, Any]] = (
        data
        if isinstance(data, list)
        else (
            {"image": image, "z": z, "hints": hints}
            for image, by_z in data.items()
            for z, hints in by_z.items()
        )
    )
    for record in records:
        slices[(str(record["image"]), int(record["z"]))].update(record["hints"])
    return dict(slices)


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events -> ``(event, data)`` (comments skipped, multi-line data joined)."""
    event, data = "message", []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


class Client:
    """One shapehint server, one API token. Use as a context manager (or call ``close``)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=f"{self.url}/api", headers=headers, timeout=timeout, transport=transport
        )

    @classmethod
    def from_env(cls, url: str | None = None, token: str | None = None, **kw: Any) -> Client:
        """A client for the server and token that ``resolve_connection`` finds."""
        found_url, found_token = resolve_connection(url, token)
        return cls(found_url, found_token, **kw)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, path, **kw)
        _raise_for_error(response)
        return response.json() if response.content else None

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._json("GET", path, params={"offset": offset, "limit": 500})
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def _download(self, path: str, dest: Path, params: dict[str, Any]) -> Path:
        """Stream a file answer to ``dest`` (through a temporary name: no partial file)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        with self.http.stream("GET", path, params=params) as response:
            _raise_for_error(response)
            with open(tmp, "wb") as f:
                for chunk in response.iter_bytes(1024 * 1024):
                    f.write(chunk)
        tmp.replace(dest)
        return dest

    # -- projects and images -----------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/health")

    def create_project(self, name: str, classes: Sequence[str], description: str = "") -> Project:
        body = {"name": name, "description": description, "classes": [{"name": c} for c in classes]}
        return Project.from_json(self._json("POST", "/projects", json=body))

    def project(self, project_id: int) -> Project:
        return Project.from_json(self._json("GET", f"/projects/{project_id}"))

    def projects(self) -> list[Project]:
        return [Project.from_json(p) for p in self._pages("/projects")]

    def images(self, project_id: int) -> list[Image]:
        return [Image.from_json(i) for i in self._pages(f"/projects/{project_id}/images")]

    def upload(self, project_id: int, paths: Sequence[Path | str]) -> list[Image]:
        """Upload files in one request (streamed from disk): all are stored or none is. DICOM
        files of one series must travel together."""
        with ExitStack() as stack:
            files = [("files", (Path(p).name, stack.enter_context(open(p, "rb")))) for p in paths]
            answer = self._json("POST", f"/projects/{project_id}/images", files=files)
        return [Image.from_json(i) for i in answer]

    def upload_folder(self, project_id: int, folder: Path | str) -> list[Image]:
        """Every image file under ``folder`` (see ``image_files``) in one upload."""
        paths = image_files(Path(folder))
        if not paths:
            raise ValueError(f"no image files (DICOM, NIfTI, PNG/JPG/TIFF, zip) under {folder}")
        return self.upload(project_id, paths)

    # -- hints ----------------------------------------------------------------------------
    def put_hints(self, image_id: int, z: int, hints: dict[str, Any]) -> dict[str, Any]:
        """Your hints on slice ``z`` (one hint JSON per class); returns the derived bounds."""
        return self._json("PUT", f"/images/{image_id}/slices/{z}/hints", json=hints)

    def put_hints_file(self, project_id: int, path: Path | str) -> int:
        """Hints from a JSON or CSV file (module docstring); returns the slices written.
        Images are named by their uploaded file name or by id."""
        slices = read_hints_file(Path(path))
        by_name: dict[str, list[int]] = defaultdict(list)
        for image in self.images(project_id):
            by_name[image.name].append(image.id)
            by_name[str(image.id)].append(image.id)
        for image_ref, _z in slices:
            if len(by_name.get(image_ref, [])) != 1:
                problem = "matches no image" if image_ref not in by_name else "is ambiguous"
                raise ValueError(f"image {image_ref!r} in {path} {problem} of project {project_id}")
        for (image_ref, z), hints in slices.items():
            self.put_hints(by_name[image_ref][0], z, hints)
        return len(slices)

    # -- jobs -----------------------------------------------------------------------------
    def train(
        self,
        project_id: int,
        config: dict[str, Any] | None = None,
        warm_start: int | None = None,
    ) -> Job:
        """Queue training (``config`` = TrainConfig overrides, ``{}`` = the server's defaults;
        ``warm_start`` = a model version id)."""
        return self._submit(project_id, "train", config, warm_start)

    def predict(self, project_id: int, model_version_id: int | None = None) -> Job:
        return self._submit(project_id, "predict", {}, model_version_id)

    def _submit(
        self, project_id: int, kind: str, config: dict[str, Any] | None, version: int | None
    ) -> Job:
        body = {"kind": kind, "config": config or {}, "model_version_id": version}
        return Job.from_json(self._json("POST", f"/projects/{project_id}/jobs", json=body))

    def job(self, job_id: int) -> Job:
        return Job.from_json(self._json("GET", f"/jobs/{job_id}"))

    def cancel(self, job_id: int) -> Job:
        return Job.from_json(self._json("POST", f"/jobs/{job_id}/cancel"))

    def follow(self, job_id: int) -> Iterator[Job]:
        """The job at every change (server-sent events) until it ends; the last one is final.
        A dropped stream is reopened (the server restarting is no reason to stop)."""
        while True:
            try:
                with self.http.stream(
                    "GET", f"/jobs/{job_id}/events", timeout=httpx.Timeout(60.0, read=None)
                ) as response:
                    _raise_for_error(response)
                    for _, data in parse_events(response.iter_lines()):
                        job = Job.from_json(json.loads(data))
                        yield job
                        if job.done:
                            return
            except httpx.TransportError:
                time.sleep(1.0)
            job = self.job(job_id)
            if job.done:
                yield job
                return

    def wait(
        self,
        job_id: int,
        *,
        progress: bool = False,
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """Follow the job to its end (a tqdm bar over its steps with ``progress``)."""
        from tqdm import tqdm

        job = self.job(job_id)
        with tqdm(total=0, unit="step", disable=not progress, desc=job.kind) as bar:
            for job in self.follow(job_id):
                _update_bar(bar, job)
                if on_update is not None:
                    on_update(job)
        return job

    # -- predictions -------------------------------------------------------------------------
    def download_prediction(
        self,
        image_id: int,
        dest: Path | str,
        fmt: Format = "nifti",
        model_version_id: int | None = None,
    ) -> Path:
        params = _mask_params(fmt, model_version_id)
        return self._download(f"/images/{image_id}/prediction", Path(dest), params)

    def download_predictions(
        self,
        project_id: int,
        dest: Path | str,
        fmt: Format = "nifti",
        model_version_id: int | None = None,
    ) -> Path:
        """Every predicted mask of a model version (default: the newest) as one zip."""
        params = _mask_params(fmt, model_version_id)
        return self._download(f"/projects/{project_id}/predictions.zip", Path(dest), params)


def _update_bar(bar: Any, job: Job) -> None:
    """Fitting hints: slices; training: optimiser steps; predicting: images; the bar's text
    says which."""
    p = job.progress
    if p.get("phase") == "predicting" and p.get("images"):
        total, done, what = int(p["images"]), int(p.get("images_done") or 0), "predicting"
    elif p.get("phase") == "fitting hints" and p.get("slices"):
        total, done, what = int(p["slices"]), int(p.get("slices_done") or 0), "fitting hints"
    elif p.get("steps"):
        total, done, what = int(p["steps"]), int(p.get("step") or 0), "training"
    else:
        bar.set_description(f"{job.kind} ({job.status})")
        return
    bar.set_description(what)
    bar.total, bar.n = total, min(done, total)
    if p.get("loss") is not None and what == "training":
        bar.set_postfix(epoch=f"{p.get('epoch')}/{p.get('epochs')}", loss=f"{p['loss']:.4f}")
    bar.refresh()


def _mask_params(fmt: str, model_version_id: int | None) -> dict[str, Any]:
    """Query of a mask download: its format and, when given, the model version (default: the
    newest)."""
    params: dict[str, Any] = {"format": fmt}
    if model_version_id is not None:
        params["model"] = model_version_id
    return params
