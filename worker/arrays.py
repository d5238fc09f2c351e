"""Label maps and canonical volumes as ``.npy`` blobs."""

from __future__ import annotations

import io

import numpy as np

from store.blobs import BlobStore


def load_volume(blobs: BlobStore, key: str, *, mmap: bool = False) -> np.ndarray:
    """A canonical volume blob -> float32 ``(Z, C, H, W)``; with ``mmap`` a read-only memory
    map, so only the slices used are read."""
    arr = np.load(blobs.local_path(key), mmap_mode="r" if mmap else None, allow_pickle=False)
    return arr.astype(np.float32, copy=False)


def load_labels(blobs: BlobStore, key: str, *, mmap: bool = False) -> np.ndarray:
    """A reference-mask blob -> uint8 ``(Z, H, W)`` (read as stored, no float copy)."""
    arr = np.load(blobs.local_path(key), mmap_mode="r" if mmap else None, allow_pickle=False)
    return arr.astype(np.uint8, copy=False)


def save_npy(blobs: BlobStore, array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return blobs.put_bytes(buf.getvalue(), ".npy")
