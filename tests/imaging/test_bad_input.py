"""Every refused upload raises ImageImportError naming the file and the problem."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from api.imaging.canonical import ImportLimits
from api.imaging.errors import ImageImportError, ImageTooLargeError
from api.imaging.importer import import_uploads
from tests.imaging.dicom_factory import make_ct_series, write_datasets


def _one_dicom(tmp_path: Path) -> Path:
    [path] = write_datasets(make_ct_series(np.zeros((1, 32, 32))), tmp_path / "ok")
    return path


def test_text_file_is_not_an_image(tmp_path: Path, limits) -> None:
    path = tmp_path / "u1"
    path.write_text("patient,age\nA,42\n")
    with pytest.raises(ImageImportError, match=r"^notes\.png: not a supported image"):
        import_uploads([("notes.png", path)], limits)


def test_no_files(limits) -> None:
    with pytest.raises(ImageImportError, match="no files uploaded"):
        import_uploads([], limits)


def test_dcm_without_dicm_marker(tmp_path: Path, limits) -> None:
    path = tmp_path / "u"
    path.write_bytes(b"\x00" * 200)
    with pytest.raises(ImageImportError, match=r"x\.dcm: not a valid DICOM file"):
        import_uploads([("x.dcm", path)], limits)


def test_corrupt_dicom_header(tmp_path: Path, limits) -> None:
    path = tmp_path / "u"
    path.write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff" + b"\xfe" * 50)
    with pytest.raises(ImageImportError, match=r"bad\.dcm: corrupt or truncated DICOM"):
        import_uploads([("bad.dcm", path)], limits)


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_dicom(tmp_path: Path, limits, keep: float) -> None:
    good = _one_dicom(tmp_path)
    raw = good.read_bytes()
    path = tmp_path / "u"
    path.write_bytes(raw[: int(len(raw) * keep)])  # cuts into the 2 KiB of pixel data
    with pytest.raises(ImageImportError, match=r"^cut\.dcm: "):
        import_uploads([("cut.dcm", path)], limits)


def test_truncated_dicom_inside_header(tmp_path: Path, limits) -> None:
    raw = _one_dicom(tmp_path).read_bytes()
    path = tmp_path / "u"
    path.write_bytes(raw[:400])
    with pytest.raises(ImageImportError, match=r"^cut\.dcm: .*(truncated|corrupt|no pixel)"):
        import_uploads([("cut.dcm", path)], limits)


def test_one_bad_file_fails_the_whole_upload(tmp_path: Path, limits) -> None:
    good = _one_dicom(tmp_path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"garbage")
    with pytest.raises(ImageImportError, match=r"junk\.bin"):
        import_uploads([("a.dcm", good), ("junk.bin", bad)], limits)


def _zip(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "upload.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.dcm", r"outside the archive"),
        ("a/../../evil.dcm", "outside the archive"),
        ("..\\evil.dcm", "outside the archive"),
        ("/etc/evil.dcm", "absolute path"),
        ("C:/evil.dcm", "absolute path"),
    ],
)
def test_zip_slip_refused(tmp_path: Path, limits, member: str, problem: str) -> None:
    dicom = _one_dicom(tmp_path).read_bytes()
    path = _zip(tmp_path, {"ok.dcm": dicom, member: dicom})
    work = tmp_path / "work" / "inner"
    work.mkdir(parents=True)
    with pytest.raises(ImageImportError, match=rf"^study\.zip: zip entry .*{problem}"):
        import_uploads([("study.zip", path)], limits, work_dir=work)
    assert not list(tmp_path.rglob("evil*"))
    assert list(work.rglob("*.bin")) == []  # validated before anything is unpacked


def test_zip_symlink_refused(tmp_path: Path, limits) -> None:
    path = tmp_path / "l.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link.dcm")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ImageImportError, match="symbolic link"):
        import_uploads([("l.zip", path)], limits)


def test_zip_bomb_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path, {f"zeros{i}.dcm": b"\x00" * 4_000_000 for i in range(3)})
    assert path.stat().st_size < 100_000  # tiny on disk, 12 MB unpacked
    small = ImportLimits(max_unpacked_bytes=10_000_000)
    with pytest.raises(ImageTooLargeError, match=r"upload\.zip: zip unpacks to 12000000 bytes"):
        import_uploads([("upload.zip", path)], small)


def test_zip_member_count_limit(tmp_path: Path) -> None:
    path = _zip(tmp_path, {f"f{i}": b"x" for i in range(30)})
    with pytest.raises(ImageTooLargeError, match="30 entries"):
        import_uploads([("upload.zip", path)], ImportLimits(max_zip_members=20))


def test_zip_without_images(tmp_path: Path, limits) -> None:
    path = _zip(tmp_path, {"readme.txt": b"hello", "data/values.csv": b"1,2,3"})
    with pytest.raises(ImageImportError, match=r"upload\.zip: zip archive contains no images"):
        import_uploads([("upload.zip", path)], limits)


def test_nested_zip_refused(tmp_path: Path, limits) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("a.txt", "x")
    path = _zip(tmp_path, {"inner.zip": inner.getvalue()})
    with pytest.raises(ImageImportError, match="nested zip"):
        import_uploads([("upload.zip", path)], limits)


def test_corrupt_zip(tmp_path: Path, limits) -> None:
    path = tmp_path / "z"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(ImageImportError, match=r"up\.zip: not a readable zip"):
        import_uploads([("up.zip", path)], limits)


def _nifti_bytes() -> bytearray:
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    return bytearray(img.to_bytes())


@pytest.mark.parametrize(
    ("offset", "fmt", "value"),
    [
        (40, "<h", 9),  # dim[0] beyond 7
        (42, "<h", -4),  # negative dimension
        (0, "<i", 1234),
    ],  # sizeof_hdr wrong
)
def test_nifti_broken_header(tmp_path: Path, limits, offset: int, fmt: str, value: int) -> None:
    raw = _nifti_bytes()
    struct.pack_into(fmt, raw, offset, value)
    path = tmp_path / "u"
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageImportError, match=r"^brain\.nii: broken NIfTI header"):
        import_uploads([("brain.nii", path)], limits)


def test_nifti_without_magic_named_nii(tmp_path: Path, limits) -> None:
    raw = _nifti_bytes()
    raw[344:348] = b"xxxx"
    path = tmp_path / "u"
    path.write_bytes(bytes(raw))
    with pytest.raises(ImageImportError, match=r"brain\.nii\.gz: broken NIfTI header"):
        import_uploads([("brain.nii.gz", path)], limits)


def test_nifti_truncated_data(tmp_path: Path, limits) -> None:
    raw = _nifti_bytes()
    path = tmp_path / "u"
    path.write_bytes(bytes(raw[:400]))
    with pytest.raises(ImageImportError, match=r"^t\.nii: cannot read NIfTI voxels"):
        import_uploads([("t.nii", path)], limits)


def test_nifti_over_voxel_limit(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((10, 10, 10), np.uint8), np.eye(4))
    path = tmp_path / "big.nii"
    nib.save(img, path)
    with pytest.raises(ImageTooLargeError, match="1000 voxels exceeds the limit of 999"):
        import_uploads([("big.nii", path)], ImportLimits(max_voxels=999))


def test_empty_dimension_is_a_bad_image_not_too_large() -> None:
    from api.imaging.canonical import check_size

    with pytest.raises(ImageImportError, match=r"e\.nii: image has an empty dimension") as err:
        check_size((0, 1, 4, 4), ImportLimits(), "e.nii")
    assert not isinstance(err.value, ImageTooLargeError)


def test_raster_over_slice_side(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((10, 70), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(ImageTooLargeError, match=r"wide\.png: slice of 10x70 pixels exceeds"):
        import_uploads([("wide.png", tmp_path / "wide.png")], ImportLimits(max_slice_side=64))


def test_corrupt_png(tmp_path: Path, limits) -> None:
    path = tmp_path / "u"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    with pytest.raises(ImageImportError, match=r"^p\.png: corrupt or unsupported image"):
        import_uploads([("p.png", path)], limits)


def test_multipage_tiff_refused(tmp_path: Path, limits) -> None:
    pages = [Image.fromarray(np.full((4, 4), i, np.uint8)) for i in range(3)]
    pages[0].save(tmp_path / "m.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(ImageImportError, match="multi-page"):
        import_uploads([("m.tif", tmp_path / "m.tif")], limits)


def test_scratch_dir_removed_without_work_dir(tmp_path: Path, limits, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    path = _zip(tmp_path, {"a.dcm": _one_dicom(tmp_path).read_bytes()})
    [image] = import_uploads([("upload.zip", path)], limits)
    assert image.shape == (1, 1, 32, 32)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_non_image_dicom_objects_in_zip_are_skipped(tmp_path: Path, limits) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import BasicTextSRStorage, ExplicitVRLittleEndian, MediaStorageDirectoryStorage

    def non_image(sop_class: str, with_instance: bool) -> bytes:
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if with_instance:
            ds.SOPClassUID = sop_class
            ds.SOPInstanceUID = "1.2.3.4"
            ds.Modality = "SR"
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()

    path = _zip(
        tmp_path,
        {
            "DICOMDIR": non_image(MediaStorageDirectoryStorage, False),
            "report.dcm": non_image(BasicTextSRStorage, True),
            "img.dcm": _one_dicom(tmp_path).read_bytes(),
        },
    )
    [image] = import_uploads([("upload.zip", path)], limits)
    assert image.shape == (1, 1, 32, 32)
