"""Exceptions of the imaging package; every message names the file (if any) and the problem."""

from __future__ import annotations


class ImagingError(ValueError):
    """Base class: bad input to the imaging functions (the API maps it to a 4xx)."""


class ImageImportError(ImagingError):
    """An upload cannot become a canonical image. ``filename`` is the client's file name."""

    def __init__(self, message: str, filename: str | None = None) -> None:
        self.filename = filename
        self.problem = message
        super().__init__(f"{filename}: {message}" if filename else message)


class ImageTooLargeError(ImageImportError):
    """An upload exceeds the configured size limits (voxels, slice side, unpacked bytes)."""


class ExportError(ImagingError):
    """A label map cannot be exported in the requested form (wrong shape, no DICOM source...)."""


class SliceOutOfRangeError(ImagingError, IndexError):
    """A slice index outside ``0 <= z < Z``."""
