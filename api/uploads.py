"""Streaming multipart uploads: request body -> files in a scratch folder, under a size limit.

The body is read chunk by chunk and counted; parts go to disk (Starlette spools each part to a
temporary file after 1 MiB) and are then copied to generated names in ``scratch``. Nothing a
client sends becomes a path. Going over ``max_bytes`` stops reading at once with 413.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.errors import too_large, unprocessable

MAX_FILES = 10_000


def multipart_schema(field: str, many: bool, description: str) -> dict:
    """OpenAPI ``requestBody`` for a multipart form with one file field (FastAPI cannot infer it
    because the route reads the body itself)."""
    item = {"type": "string", "format": "binary"}
    prop = {"type": "array", "items": item} if many else item
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {field: prop},
                        "required": [field],
                        "additionalProperties": False,
                    }
                }
            },
        }
    }


async def receive_files(
    request: Request, field: str, scratch: Path, max_bytes: int
) -> list[tuple[str, Path]]:
    """Save the parts of form field ``field`` as ``scratch/upload-<i>``.

    Returns ``(client file name, path)`` pairs in upload order. 413 over ``max_bytes``; 422 for
    a body that is not multipart, unknown fields, or no file in ``field``.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise unprocessable(
            f"send the files as multipart/form-data in the field {field!r}", code="not_multipart"
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(f"upload of {int(declared)} bytes is over the limit of {max_bytes} bytes")

    async def limited() -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_bytes:
                raise too_large(f"upload is over the limit of {max_bytes} bytes")
            yield chunk

    parser = MultiPartParser(request.headers, limited(), max_files=MAX_FILES, max_fields=100)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise unprocessable(
            f"malformed multipart body: {exc.message}", code="bad_multipart"
        ) from None
    try:
        unknown = sorted({key for key in form if key != field})
        if unknown:
            raise unprocessable(
                f"unknown form field(s) {unknown}; send files in {field!r}", code="unknown_field"
            )
        parts = form.getlist(field)
        files = [p for p in parts if isinstance(p, UploadFile)]
        if not files or len(files) != len(parts):
            raise unprocessable(f"no file in the form field {field!r}", code="no_file")
        scratch.mkdir(parents=True, exist_ok=True)
        saved: list[tuple[str, Path]] = []
        for i, upload in enumerate(files):
            target = scratch / f"upload-{i}"
            await upload.seek(0)
            # In a thread: a large part would otherwise block every other request while copied.
            await run_in_threadpool(_copy_to, upload.file, target)
            saved.append((_display_name(upload.filename, i), target))
        return saved
    finally:
        await form.close()


def _copy_to(source: BinaryIO, target: Path) -> None:
    with open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)


def _display_name(filename: str | None, index: int) -> str:
    """The client's file name without any folder part (for display only, never a path)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())[:255]
    return name or f"upload-{index}"
