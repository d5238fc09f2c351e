"""Arbitrary bytes behind every magic number the importer recognises: the only exception that
may escape is ImageImportError (the API turns it into a 4xx, never a 5xx)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.imaging.canonical import ImportLimits
from api.imaging.errors import ImageImportError
from api.imaging.importer import import_uploads
from tests.imaging.dicom_factory import make_ct_series

_DICOM = bytearray()


def _valid_dicom() -> bytes:
    if not _DICOM:
        import io

        buf = io.BytesIO()
        make_ct_series(np.zeros((1, 8, 8)))[0].save_as(buf, enforce_file_format=True)
        _DICOM.extend(buf.getvalue())
    return bytes(_DICOM)


PREFIXES = [
    b"",
    b"\x00" * 128 + b"DICM",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"II*\x00",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"\x5c\x01\x00\x00" + b"\x00" * 340 + b"n+1\x00",
]


def _valid_nifti() -> bytes:
    import nibabel as nib

    return nib.Nifti1Image(np.zeros((4, 3, 2), np.int16), np.diag([2, 3, 4, 1])).to_bytes()


@st.composite
def uploads(draw: st.DrawFn) -> bytes:
    source = draw(st.sampled_from(["dicom", "nifti", "random"]))
    if source == "random":
        return draw(st.sampled_from(PREFIXES)) + draw(st.binary(max_size=600))
    # Mutate a valid file: change a few bytes of its header and/or cut it short.
    raw = bytearray(_valid_dicom() if source == "dicom" else _valid_nifti())
    first, last = (132, len(raw) - 1) if source == "dicom" else (0, 347)
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(first, last))
        raw[pos] = draw(st.integers(0, 255))
    return bytes(raw[: draw(st.integers(first, len(raw)))])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=uploads(), name=st.sampled_from(["a.dcm", "a.nii", "a.nii.gz", "a.png", "a.zip"]))
def test_garbage_only_raises_import_error(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        try:
            images = import_uploads([(name, path)], ImportLimits(max_voxels=10_000))
        except ImageImportError as exc:
            assert name in str(exc) or "no images" in str(exc)
        else:
            for image in images:  # a mutation may leave a valid image: then it must be sane
                assert image.data.dtype == np.float32 and image.data.ndim == 4
