"""The deployment files are consistent with the code: compose parses, its services exist and are
wired together, and every command the image runs is a real ``shapehint`` CLI command."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shapehint.cli import app as cli_app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])


def _dockerfile_cmd() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    assert match, "Dockerfile has no exec-form CMD"
    return yaml.safe_load(match.group(1))


def _assert_cli_accepts(argv: list[str]) -> None:
    """``shapehint <argv>`` parses: the subcommand and every option exist (``--help`` stops it
    from running, after click has checked the options before it)."""
    assert argv[0] == "shapehint", argv
    result = CliRunner().invoke(cli_app, [*argv[1:], "--help"])
    assert result.exit_code == 0, f"{argv}: {result.output}"


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    assert {"api", "worker", "redis", "postgres", "minio"} <= set(compose["services"])


def test_compose_commands_are_real_cli_commands(compose: dict[str, Any]) -> None:
    for name in ("api", "worker", "worker-gpu1"):
        _assert_cli_accepts(_command(compose["services"][name]))
    _assert_cli_accepts(_dockerfile_cmd())


def test_cli_rejects_a_made_up_command() -> None:
    # Proves the check above can fail.
    result = CliRunner().invoke(cli_app, ["serve", "--no-such-option", "--help"])
    assert result.exit_code != 0
    result = CliRunner().invoke(cli_app, ["no-such-command", "--help"])
    assert result.exit_code != 0


def test_each_worker_is_pinned_to_a_gpu_of_its_own(compose: dict[str, Any]) -> None:
    pinned: list[str] = []
    for name in ("worker", "worker-gpu1"):
        devices = compose["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        gpus = [d for d in devices if "gpu" in d.get("capabilities", [])]
        assert len(gpus) == 1 and "count" not in gpus[0], name
        pinned += gpus[0]["device_ids"]
    assert pinned == ["0", "1"]


def _env(compose: dict[str, Any], name: str) -> dict[str, str]:
    env = compose["services"][name].get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


def test_api_and_workers_share_database_broker_and_storage_but_no_disk(
    compose: dict[str, Any],
) -> None:
    api, worker = _env(compose, "api"), _env(compose, "worker")
    shared = ("SHAPEHINT_DATABASE_URL", "SHAPEHINT_BROKER_URL", "SHAPEHINT_STORAGE_URL")
    for key in (*shared, "SHAPEHINT_S3_ENDPOINT_URL", "SHAPEHINT_S3_ACCESS_KEY_ID"):
        assert api.get(key) and api.get(key) == worker.get(key), key
    assert "@postgres:" in api["SHAPEHINT_DATABASE_URL"]
    assert api["SHAPEHINT_BROKER_URL"].startswith("redis://redis:")
    assert api["SHAPEHINT_STORAGE_URL"].startswith("s3://")
    assert api["SHAPEHINT_S3_ENDPOINT_URL"].startswith("http://minio:")
    # /data is each container's scratch: the API's is a named volume no worker mounts.
    api_mounts = {m.split(":")[0] for m in compose["services"]["api"]["volumes"]}
    assert api_mounts <= set(compose["volumes"])
    for name in ("worker", "worker-gpu1"):
        mounts = {m.split(":")[0] for m in compose["services"][name].get("volumes", [])}
        assert not mounts & api_mounts, name
    # The names are settings the code reads (env prefix SHAPEHINT_).
    from store.settings import Settings

    fields = {f"SHAPEHINT_{f.upper()}" for f in Settings.model_fields}
    assert set(api) <= fields, set(api) - fields


def test_services_depend_on_their_backends(compose: dict[str, Any]) -> None:
    depends = compose["services"]["api"]["depends_on"]
    assert {"postgres", "redis"} <= set(depends)


def test_dockerfile_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    for package in [*packages, "migrations"]:
        assert re.search(rf"^COPY\s+{package}\s", text, re.MULTILINE), f"{package} not copied"
    assert "pip install" in text
