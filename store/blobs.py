"""Content blobs (volumes, uploads, checkpoints, masks) on a local or shared directory.

Keys are generated here (never from user input), so no request can choose a file path.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from store.settings import get_settings


class BlobStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or get_settings().blob_dir).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def new_key(suffix: str = "") -> str:
        """A fresh key like ``ab/abcdef....npy``; suffix must be a short literal extension."""
        if suffix and (not suffix.startswith(".") or "/" in suffix or len(suffix) > 16):
            raise ValueError(f"bad blob suffix {suffix!r}")
        hex_id = uuid.uuid4().hex
        return f"{hex_id[:2]}/{hex_id}{suffix}"

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def put_bytes(self, data: bytes, suffix: str = "") -> str:
        key = self.new_key(suffix)
        self._atomic_write(key, lambda f: f.write(data))
        return key

    def put_stream(self, stream: BinaryIO, suffix: str = "") -> str:
        key = self.new_key(suffix)
        self._atomic_write(key, lambda f: shutil.copyfileobj(stream, f, 1024 * 1024))
        return key

    def put_file(self, source: Path, suffix: str = "") -> str:
        key = self.new_key(suffix)
        with open(source, "rb") as src:
            self._atomic_write(key, lambda f: shutil.copyfileobj(src, f, 1024 * 1024))
        return key

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def _atomic_write(self, key: str, write) -> None:  # type: ignore[no-untyped-def]
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                write(f)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
