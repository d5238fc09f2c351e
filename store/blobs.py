"""Content blobs (volumes, uploads, checkpoints, masks): a local directory or S3-compatible storage.

One interface, ``BlobStore``, two backends chosen by ``SHAPEHINT_STORAGE_URL``
(``open_blob_store(settings)``):

- ``LocalBlobStore``: files under a directory (the embedded default, ``data_dir/blobs``, or
  ``file:///path``); ``local_path(key)`` is the file itself, so volumes are memory-mapped in place.
- ``S3BlobStore``: objects under ``s3://bucket/prefix`` on AWS S3, MinIO, Ceph, ... (boto3);
  uploads and downloads stream in chunks, and ``local_path(key)`` downloads the object once into
  a bounded local cache (blobs are immutable: a key is never written twice), so readers can
  memory-map it as they would a local file.

Keys are generated here (never from user input), so no request can choose a file or object name.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from store.settings import Settings, get_settings

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}(\.[A-Za-z0-9._-]{1,15})?$")


def check_key(key: str) -> str:
    """``key`` if it has the shape ``new_key`` makes, else ValueError (no path tricks)."""
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"bad blob key {key!r}")
    return key


class BlobStore(ABC):
    """Write-once blobs addressed by generated keys."""

    @staticmethod
    def new_key(suffix: str = "") -> str:
        """A fresh key like ``ab/abcdef....npy``; suffix must be a short literal extension."""
        if suffix and (not suffix.startswith(".") or "/" in suffix or len(suffix) > 16):
            raise ValueError(f"bad blob suffix {suffix!r}")
        hex_id = uuid.uuid4().hex
        return f"{hex_id[:2]}/{hex_id}{suffix}"

    def put_bytes(self, data: bytes, suffix: str = "") -> str:
        key = self.new_key(suffix)
        self._put_bytes(key, data)
        return key

    def put_stream(self, stream: BinaryIO, suffix: str = "") -> str:
        key = self.new_key(suffix)
        self._put_stream(key, stream)
        return key

    def put_file(self, source: Path, suffix: str = "") -> str:
        key = self.new_key(suffix)
        with open(source, "rb") as src:
            self._put_stream(key, src)
        return key

    def download(self, key: str, dest: Path) -> Path:
        """Copy the blob to the local file ``dest`` (streamed); returns ``dest``."""
        with self.open(key) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        return dest

    @abstractmethod
    def local_path(self, key: str) -> Path:
        """A local file holding the blob, valid at least while this process runs (read only:
        for ``np.load(..., mmap_mode="r")`` and libraries that want a path)."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A binary stream of the blob (close it, or use it in ``with``)."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob; a missing one is fine."""

    @abstractmethod
    def _put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def _put_stream(self, key: str, stream: BinaryIO) -> None: ...


def _atomic_write(target: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write through a temporary file beside ``target`` and rename: readers never see a part."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class LocalBlobStore(BlobStore):
    """Blobs as files under ``root`` (the embedded default)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or get_settings().blob_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def local_path(self, key: str) -> Path:
        return self.path(key)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def _put_bytes(self, key: str, data: bytes) -> None:
        _atomic_write(self.path(key), lambda f: f.write(data))

    def _put_stream(self, key: str, stream: BinaryIO) -> None:
        _atomic_write(self.path(key), lambda f: shutil.copyfileobj(stream, f, CHUNK))


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")`` (prefix "" when absent)."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3://bucket[/prefix] URL: {url!r}")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


def prune_cache(folder: Path, max_bytes: int, keep: Path | None = None) -> None:
    """Delete the least recently used files under ``folder`` until it holds at most
    ``max_bytes`` (never ``keep``). A reader that already opened or mapped a file keeps it."""
    files = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            st = path.stat()
            files.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= max_bytes:
            break
        if path != keep:
            path.unlink(missing_ok=True)
            total -= size


class S3BlobStore(BlobStore):
    """Blobs as objects ``prefix + key`` in an S3 bucket; reads go through a local file cache."""

    def __init__(
        self,
        url: str,
        *,
        cache_dir: Path,
        cache_max_bytes: int = 20 * 1024**3,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        create_bucket: bool = True,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.url = url
        self.bucket, self.prefix = parse_s3_url(url)
        self.cache_dir = cache_dir.resolve()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache_max_bytes = cache_max_bytes
        # Path-style addressing works with MinIO, Ceph and AWS alike; retries ride out blips.
        config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            signature_version="s3v4",
        )
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )
        self.transfer = TransferConfig(multipart_chunksize=8 * CHUNK, io_chunksize=CHUNK)
        if create_bucket:
            self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            if _status(err) == 403:  # object-only permissions: the bucket is someone else's job
                log.warning("cannot check bucket %s (403); using it as it is", self.bucket)
                return
            if _status(err) != 404:
                raise
            self.client.create_bucket(Bucket=self.bucket)

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def local_path(self, key: str) -> Path:
        target = self.cache_dir / check_key(key)
        if target.exists():
            os.utime(target)  # recently used: pruned last
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{uuid.uuid4().hex}.tmp")
        try:
            self.client.download_file(self.bucket, self._name(key), str(tmp), Config=self.transfer)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        prune_cache(self.cache_dir, self.cache_max_bytes, keep=target)
        return target

    def download(self, key: str, dest: Path) -> Path:
        self.client.download_file(self.bucket, self._name(key), str(dest), Config=self.transfer)
        return dest

    def read_bytes(self, key: str) -> bytes:
        body = self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
        with body:
            return body.read()

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]  # type: ignore[return-value]

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as err:
            if _status(err) == 404:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        (self.cache_dir / check_key(key)).unlink(missing_ok=True)

    def _put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)

    def _put_stream(self, key: str, stream: BinaryIO) -> None:
        # Multipart upload in chunks: a large volume never sits in memory whole.
        self.client.upload_fileobj(stream, self.bucket, self._name(key), Config=self.transfer)


def _status(err: Exception) -> int | None:
    meta = getattr(err, "response", {}).get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode")
    return int(status) if status is not None else None


def open_blob_store(settings: Settings | None = None) -> BlobStore:
    """The backend ``settings.storage_url`` names: unset = ``data_dir/blobs``, ``file:///dir``
    = that directory, ``s3://bucket/prefix`` = S3-compatible storage at ``s3_endpoint_url``."""
    settings = settings or get_settings()
    url = settings.storage_url
    if not url:
        return LocalBlobStore(settings.blob_dir)
    scheme = urlparse(url).scheme
    if scheme == "file":
        return LocalBlobStore(Path(urlparse(url).path))
    if scheme == "s3":
        return S3BlobStore(
            url,
            cache_dir=settings.blob_cache_dir,
            cache_max_bytes=settings.blob_cache_max_bytes,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    raise ValueError(f"SHAPEHINT_STORAGE_URL must be file:///dir or s3://bucket/prefix: {url!r}")
