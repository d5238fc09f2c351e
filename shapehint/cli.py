"""The ``shapehint`` command. Each command imports its layer lazily so ``--help`` stays fast."""

from __future__ import annotations

import typer

from models import cli as models_cli

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
    from api.server import serve as run_serve

    run_serve(host=host, port=port, embedded_worker=embedded_worker)


@app.command()
def worker(
    concurrency: int = typer.Option(1, help="Parallel jobs in this worker (one per GPU is best)"),
) -> None:
    """Run a standalone Celery worker (production: one per GPU, pointed at Redis/PostgreSQL)."""
    from worker.celery_app import run_worker

    run_worker(concurrency=concurrency)


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
    from worker.demo import run_demo

    run_demo(images=images, size=size, seed=seed, url=url, token=token)


# `shapehint train` and `shapehint evaluate` come from models/ (usable without the service).
app.add_typer(models_cli.app)
