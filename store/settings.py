"""All configuration in one pydantic-settings class (environment prefix ``SHAPEHINT_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings. Every default runs embedded: SQLite, filesystem broker, local blobs."""

    model_config = SettingsConfigDict(env_prefix="SHAPEHINT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Root of local state (db, blobs, queue)"
    )
    database_url: str | None = Field(default=None, description="Default: SQLite in data_dir")
    broker_url: str | None = Field(default=None, description="Default: Celery filesystem transport")
    result_backend: str | None = Field(
        default=None, description="Default: file backend in data_dir"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bootstrap_token: str | None = None
    # Limits that protect the server from oversized input.
    max_upload_bytes: int = 1024 * 1024 * 1024
    max_image_voxels: int = 512 * 1024 * 1024 // 4
    max_slice_side: int = 4096
    # A running job whose heartbeat is older than this is declared dead (seconds).
    job_heartbeat_timeout_s: float = 120.0
    cookie_secure: bool = False

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def blob_dir(self) -> Path:
        return self.resolved_data_dir / "blobs"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'shapehint.sqlite3'}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def resolved_result_backend(self) -> str:
        return self.result_backend or f"file://{self.resolved_data_dir / 'celery-results'}"

    @property
    def queue_dir(self) -> Path:
        """Folder of the filesystem broker (only used when broker_url is the default)."""
        return self.resolved_data_dir / "queue"

    def ensure_dirs(self) -> None:
        for path in (self.resolved_data_dir, self.blob_dir, self.queue_dir):
            path.mkdir(parents=True, exist_ok=True)
        if self.result_backend is None:
            (self.resolved_data_dir / "celery-results").mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
