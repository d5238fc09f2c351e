"""Detect what a file holds from its first bytes (magic numbers), not from its name."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Literal

FileKind = Literal["dicom", "nifti", "nifti-gz", "gzip", "png", "jpeg", "tiff", "zip", "unknown"]

_NIFTI1_MAGIC = (b"n+1\x00", b"ni1\x00")
_NIFTI2_MAGIC = (b"n+2\x00", b"ni2\x00")


def is_nifti_header(head: bytes) -> bool:
    """True for a NIfTI-1 (magic at byte 344) or NIfTI-2 (magic at byte 4) header start."""
    return (len(head) >= 348 and head[344:348] in _NIFTI1_MAGIC) or (
        len(head) >= 8 and head[4:8] in _NIFTI2_MAGIC
    )


def sniff_bytes(head: bytes) -> FileKind:
    """Kind of a file from its first (at least 544) bytes; gzip is reported as ``gzip``."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if is_nifti_header(head):
        return "nifti"
    return "unknown"


def sniff_file(path: Path) -> FileKind:
    """Kind of the file at ``path``; a gzip whose content starts with a NIfTI header is
    ``nifti-gz``."""
    with open(path, "rb") as f:
        head = f.read(544)
    kind = sniff_bytes(head)
    if kind == "gzip":
        try:
            with gzip.open(path, "rb") as g:
                inner = g.read(544)
        except (OSError, EOFError, zlib.error):
            return "gzip"
        return "nifti-gz" if is_nifti_header(inner) else "gzip"
    return kind
