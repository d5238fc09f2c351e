"""The ``shapehint`` command. Each command imports its layer lazily so ``--help`` stays fast."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from models import cli as models_cli
from shapehint import users_cli

if TYPE_CHECKING:
    from shapehint.client import Client

app = typer.Typer(
    help="shapehint: segmentation models from a few shape hints.", no_args_is_help=True
)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind"),
    port: int = typer.Option(8000, help="TCP port"),
    embedded_worker: bool = typer.Option(True, help="Run one Celery worker beside the API"),
) -> None:
    """Migrate the database, then run the API (and an embedded worker); prints the URL."""
    from shapehint.serve import serve as run_serve

    run_serve(host=host, port=port, embedded_worker=embedded_worker)


@app.command()
def worker(
    concurrency: int = typer.Option(1, help="Parallel jobs in this worker (one per GPU is best)"),
    device: str | None = typer.Option(
        None,
        envvar="SHAPEHINT_DEVICE",
        help="Where jobs compute: auto, cpu, cuda or one GPU such as cuda:1",
    ),
) -> None:
    """Run a standalone Celery worker (production: one per GPU, pointed at Redis/PostgreSQL)."""
    from worker.celery_app import run_worker

    if device is not None:
        use_device(device)
    run_worker(concurrency=concurrency)


def use_device(device: str) -> None:
    """Make ``device`` this process's ``SHAPEHINT_DEVICE`` (validated by the settings class)."""
    import os

    from store.settings import Settings, get_settings

    Settings(device=device)  # ValueError for a device the worker could not use
    os.environ["SHAPEHINT_DEVICE"] = device
    get_settings.cache_clear()


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the latest Alembic revision."""
    from store.migrate import upgrade_head

    upgrade_head()
    typer.echo("database is at the latest revision")


@app.command()
def demo(
    images: int = typer.Option(8, help="Synthetic images to create"),
    size: int = typer.Option(64, help="Image side in px"),
    seed: int = typer.Option(0, help="Random seed"),
    url: str | None = typer.Option(None, help="Use a running server instead of an in-process one"),
    token: str | None = typer.Option(None, help="Bearer token for --url"),
) -> None:
    """Synthetic project end to end through the REST API: hints, training, masks, Dice."""
    from shapehint.demo import run_demo

    run_demo(images=images, size=size, seed=seed, url=url, token=token)


# Commands on a running server through shapehint.client. Server and token: --url/--token, else
# SHAPEHINT_URL/SHAPEHINT_TOKEN, else ~/.config/shapehint/config.toml (keys url, token).
URL = typer.Option(None, "--url", help="Server URL (default: SHAPEHINT_URL or the config file)")
TOKEN = typer.Option(None, "--token", help="API token (default: SHAPEHINT_TOKEN or config file)")


@contextmanager
def _client(url: str | None, token: str | None) -> Iterator[Client]:
    """A client; an API error ends the command with its message and exit status 1."""
    from shapehint.client import ApiError, Client

    try:
        with Client.from_env(url, token) as client:
            yield client
    except (ApiError, ValueError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None


def _follow(client: Client, job_id: int) -> None:
    job = client.wait(job_id, progress=True)
    typer.echo(f"job {job.id} {job.status}" + (f": {job.error}" if job.error else ""))
    if job.status != "succeeded":
        raise typer.Exit(1)
    if job.result and "version" in job.result:
        typer.echo(f"model version {job.result['version']} (id {job.result['model_version_id']})")


@app.command("create-project")
def create_project(
    name: str = typer.Argument(..., help="Project name"),
    classes: list[str] = typer.Option(..., "--class", help="A class name (repeat: label 1, 2..)"),
    description: str = typer.Option("", help="Free text"),
    url: str | None = URL,
    token: str | None = TOKEN,
) -> None:
    """Create a project on the server; prints its id."""
    with _client(url, token) as client:
        project = client.create_project(name, classes, description)
    typer.echo(project.id)


@app.command()
def upload(
    project_id: int = typer.Argument(..., help="Project id"),
    paths: list[Path] = typer.Argument(..., help="Folders (searched recursively) or files"),
    url: str | None = URL,
    token: str | None = TOKEN,
) -> None:
    """Upload DICOM (files or zips), NIfTI and PNG/JPG/TIFF images in one request."""
    from shapehint.client import image_files

    files = [f for p in paths for f in (image_files(p) if p.is_dir() else [p])]
    with _client(url, token) as client:
        images = client.upload(project_id, files)
    for image in images:
        typer.echo(f"{image.id}\t{image.name}\t{'x'.join(map(str, image.shape))}")


@app.command("put-hints")
def put_hints(
    project_id: int = typer.Argument(..., help="Project id"),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .json or .csv file"),
    url: str | None = URL,
    token: str | None = TOKEN,
) -> None:
    """Put hints from a JSON or CSV file (format: `python -m pydoc shapehint.client`)."""
    with _client(url, token) as client:
        count = client.put_hints_file(project_id, file)
    typer.echo(f"hints on {count} slice(s)")


@app.command()
def submit(
    project_id: int = typer.Argument(..., help="Project id"),
    kind: str = typer.Option("train", help="train or predict"),
    config: str = typer.Option("{}", help="TrainConfig overrides: JSON text or a .json file"),
    model: int | None = typer.Option(None, help="Model version id: warm start or predict with"),
    follow: bool = typer.Option(True, help="Follow the job with a progress bar until it ends"),
    url: str | None = URL,
    token: str | None = TOKEN,
) -> None:
    """Submit a training (or prediction) job; follows it and fails if the job does."""
    overrides = json.loads(Path(config).read_text() if config.endswith(".json") else config)
    with _client(url, token) as client:
        if kind == "train":
            job = client.train(project_id, overrides, warm_start=model)
        else:
            job = client.predict(project_id, model)
        typer.echo(f"job {job.id} queued")
        if follow:
            _follow(client, job.id)


@app.command("follow")
def follow_job(
    job_id: int = typer.Argument(..., help="Job id"),
    url: str | None = URL,
    token: str | None = TOKEN,
) -> None:
    """Follow a job's progress until it ends (exit status 1 unless it succeeded)."""
    with _client(url, token) as client:
        _follow(client, job_id)


@app.command()
def download(
    project_id: int = typer.Argument(..., help="Project id"),
    dest: Path = typer.Argument(..., help="The zip file to write"),
    format: str = typer.Option("nifti", help="nifti, png or dicom-seg"),
    model: int | None = typer.Option(None, help="Model version id (default: the newest)"),
    url: str | None = URL,
    token: str | None = TOKEN,
) -> None:
    """Download every predicted mask of a project as one zip."""
    with _client(url, token) as client:
        path = client.download_predictions(project_id, dest, format, model)  # type: ignore[arg-type]
    typer.echo(path)


# `shapehint train` and `shapehint evaluate` come from models/ (usable without the service).
app.add_typer(models_cli.app)

# `shapehint users create | reset-password | new-token | list`: on the database, no server needed.
app.add_typer(users_cli.app, name="users")
