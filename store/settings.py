"""All configuration in one pydantic-settings class (environment prefix ``SHAPEHINT_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    # "auto" (CUDA when available), "cpu", "cuda" or one GPU: "cuda:1" (one worker per GPU).
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    bootstrap_token: str | None = None
    # Limits that protect the server from oversized input.
    max_upload_bytes: int = 1024 * 1024 * 1024
    max_image_voxels: int = 512 * 1024 * 1024 // 4
    max_slice_side: int = 4096
    # Largest body of a non-upload request (JSON), refused before it is parsed or authenticated.
    max_json_body_bytes: int = 1024 * 1024
    # Failed sign-ins allowed per username and per client address within the window; more are
    # answered 429 with Retry-After. The counters live in ``login_throttle_storage`` (a ``limits``
    # storage URI: "memory://" per API process, or e.g. "redis://host:6379/2" to share them).
    login_failures_per_user: int = 5
    login_failures_per_address: int = 30
    login_failure_window_s: int = 300
    login_throttle_storage: str = "memory://"
    # Password hashes computed at once (argon2 takes ~64 MiB each); more sign-ins wait in line.
    password_hash_concurrency: int = 2
    # A running job whose heartbeat is older than this is declared dead (seconds).
    job_heartbeat_timeout_s: float = 120.0
    # A job queued this long whose message the broker no longer holds (lost in a broker restart
    # without persistence, or never sent) is sent again; after ``job_max_enqueues`` sends in a
    # row it is failed with the reason instead (seconds / count).
    job_requeue_after_s: float = 60.0
    job_max_enqueues: int = 5
    cookie_secure: bool = False
    # Blob storage: unset = data_dir/blobs; "file:///dir"; "s3://bucket/prefix" (AWS S3, MinIO,
    # Ceph). S3 credentials: these settings, else boto3's usual chain (AWS_* variables, ...).
    storage_url: str | None = Field(default=None, pattern=r"^(file|s3)://")
    s3_endpoint_url: str | None = Field(default=None, description="e.g. http://minio:9000")
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # Local copies of S3 blobs that readers memory-map (volumes, masks), least recently used out.
    blob_cache_max_bytes: int = 20 * 1024**3

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def blob_dir(self) -> Path:
        return self.resolved_data_dir / "blobs"

    @property
    def blob_cache_dir(self) -> Path:
        return self.resolved_data_dir / "blob-cache"

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
        for path in (self.resolved_data_dir, self.queue_dir):
            path.mkdir(parents=True, exist_ok=True)
        if self.storage_url is None:
            self.blob_dir.mkdir(parents=True, exist_ok=True)
        if self.result_backend is None:
            (self.resolved_data_dir / "celery-results").mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
