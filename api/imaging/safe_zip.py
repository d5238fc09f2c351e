"""Read zip uploads without trusting them: no member name becomes a path, sizes are bounded.

Refused: absolute paths, ``..`` components, drive letters, symlinks, encrypted members, more
members or more unpacked bytes than the limits allow (zip bombs; counted on the bytes actually
inflated, not only the declared sizes), nested archives are skipped by the caller.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from api.imaging.canonical import ImportLimits
from api.imaging.errors import ImageImportError, ImageTooLargeError

_CHUNK = 1024 * 1024


def _check_member_name(name: str, zip_name: str) -> None:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) >= 2 and norm[1] == ":"):
        raise ImageImportError(f"zip entry {name!r} has an absolute path", zip_name)
    if ".." in PurePosixPath(norm).parts:
        raise ImageImportError(f"zip entry {name!r} points outside the archive ('..')", zip_name)
    if "\x00" in norm:
        raise ImageImportError(f"zip entry {name!r} has a NUL byte in its name", zip_name)


def _is_ignorable(name: str) -> bool:
    """macOS resource forks and hidden files that archivers add; never images."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return any(p == "__MACOSX" or p.startswith("._") or p == ".DS_Store" for p in parts)


def iter_zip_members(
    zip_path: Path, zip_name: str, limits: ImportLimits, work_dir: Path
) -> Iterator[tuple[str, Path]]:
    """Yield ``(member name, temp path)`` for each regular member of a zip upload.

    Every member is validated before anything is unpacked; each is then streamed to a file in
    ``work_dir`` named by a counter (never by the member name). Memory use is one chunk.
    Raises :class:`ImageImportError` on an unsafe or unreadable archive.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImageImportError(f"not a readable zip archive ({exc})", zip_name) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_members:
            raise ImageTooLargeError(
                f"zip has {len(infos)} entries, more than the limit of {limits.max_zip_members}",
                zip_name,
            )
        declared = 0
        members: list[zipfile.ZipInfo] = []
        for info in infos:
            _check_member_name(info.filename, zip_name)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ImageImportError(f"zip entry {info.filename!r} is a symbolic link", zip_name)
            if info.flag_bits & 0x1:
                raise ImageImportError(f"zip entry {info.filename!r} is encrypted", zip_name)
            if info.is_dir() or _is_ignorable(info.filename):
                continue
            declared += info.file_size
            members.append(info)
        if declared > limits.max_unpacked_bytes:
            raise ImageTooLargeError(
                f"zip unpacks to {declared} bytes, more than the limit of "
                f"{limits.max_unpacked_bytes} bytes",
                zip_name,
            )
        unpacked = 0
        for index, info in enumerate(members):
            target = work_dir / f"zip-member-{index:06d}.bin"
            try:
                with zf.open(info) as src, open(target, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        unpacked += len(chunk)
                        # Declared sizes can lie; the inflated byte count cannot.
                        if unpacked > limits.max_unpacked_bytes:
                            raise ImageTooLargeError(
                                f"zip unpacks to more than the limit of "
                                f"{limits.max_unpacked_bytes} bytes",
                                zip_name,
                            )
                        dst.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
                if isinstance(exc, ImageImportError):
                    raise
                raise ImageImportError(
                    f"zip entry {info.filename!r} cannot be read ({exc})", zip_name
                ) from exc
            yield info.filename, target
