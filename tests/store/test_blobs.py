"""Blob storage: the same contract on the local directory and on S3 (a real moto server)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from store.blobs import (
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    check_key,
    open_blob_store,
    parse_s3_url,
    prune_cache,
)
from store.settings import Settings
from tests.s3_server import s3_settings


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield open_blob_store(Settings(data_dir=tmp_path))
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    yield open_blob_store(Settings(data_dir=tmp_path, **s3_settings(endpoint)))


def test_round_trip_of_bytes_streams_and_files(blobs: BlobStore, tmp_path: Path) -> None:
    a = blobs.put_bytes(b"hello", ".bin")
    b = blobs.put_stream(io.BytesIO(b"stream" * 1000), ".bin")
    source = tmp_path / "source.bin"
    source.write_bytes(b"file")
    c = blobs.put_file(source, ".pt")
    assert len({a, b, c}) == 3 and all(check_key(k) for k in (a, b, c))
    assert c.endswith(".pt")
    assert blobs.read_bytes(a) == b"hello"
    with blobs.open(b) as f:
        assert f.read() == b"stream" * 1000
    assert blobs.download(c, tmp_path / "copy.pt").read_bytes() == b"file"
    assert blobs.exists(a)
    blobs.delete(a)
    assert not blobs.exists(a)
    blobs.delete(a)  # deleting twice is fine


def test_local_path_memory_maps_a_volume(blobs: BlobStore) -> None:
    volume = np.arange(2 * 1 * 8 * 8, dtype=np.float32).reshape(2, 1, 8, 8)
    buf = io.BytesIO()
    np.save(buf, volume)
    key = blobs.put_bytes(buf.getvalue(), ".npy")
    mapped = np.load(blobs.local_path(key), mmap_mode="r")
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, volume)
    assert blobs.local_path(key) == blobs.local_path(key)


def test_keys_that_are_not_generated_are_refused(blobs: BlobStore) -> None:
    for bad in ("../etc/passwd", "/abs", "ab/../../x", "ab/short.npy", ""):
        with pytest.raises(ValueError):
            blobs.local_path(bad)
    with pytest.raises(ValueError):
        blobs.put_bytes(b"x", "npy")  # a suffix must start with a dot


def test_s3_blobs_live_in_the_bucket_under_the_prefix_and_are_cached_once(
    s3_endpoint: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, **s3_settings(s3_endpoint, prefix="team/a"))
    store = open_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    key = store.put_bytes(b"payload", ".npy")
    listed = store.client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"team/a/{key}"]
    # Nothing local until a reader needs a file; then one download into the cache.
    assert not (settings.blob_cache_dir / key).exists()
    path = store.local_path(key)
    assert path == settings.blob_cache_dir / key and path.read_bytes() == b"payload"
    store.client.delete_object(Bucket=store.bucket, Key=f"team/a/{key}")
    assert store.local_path(key).read_bytes() == b"payload"  # served from the cache
    # Another process (a second worker, the API) sees the blob without any shared disk.
    other = open_blob_store(Settings(data_dir=tmp_path / "other", **settings_s3(settings)))
    second = store.put_bytes(b"shared", ".bin")
    assert other.read_bytes(second) == b"shared"
    other.delete(second)
    assert not store.exists(second)


def settings_s3(settings: Settings) -> dict[str, object]:
    return {
        name: getattr(settings, name)
        for name in (
            "storage_url",
            "s3_endpoint_url",
            "s3_region",
            "s3_access_key_id",
            "s3_secret_access_key",
        )
    }


def test_s3_streams_a_large_file_in_parts(s3_endpoint: str, tmp_path: Path) -> None:
    store = open_blob_store(Settings(data_dir=tmp_path, **s3_settings(s3_endpoint)))
    data = np.random.default_rng(0).integers(0, 256, 12 * 1024 * 1024, dtype=np.uint8).tobytes()
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    key = store.put_file(source, ".bin")  # 8 MiB parts: a multipart upload
    assert isinstance(store, S3BlobStore)
    head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + key)
    assert head["ContentLength"] == len(data) and "-" in head["ETag"]  # multipart ETag
    assert store.local_path(key).read_bytes() == data


def test_cache_keeps_the_most_recently_used_files_within_its_size(tmp_path: Path) -> None:
    for i in range(4):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    prune_cache(tmp_path, 250, keep=tmp_path / "f0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f3"]


def test_storage_url_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(Settings(data_dir=tmp_path)), LocalBlobStore)
    elsewhere = open_blob_store(Settings(data_dir=tmp_path, storage_url=f"file://{tmp_path}/b"))
    assert isinstance(elsewhere, LocalBlobStore) and elsewhere.root == (tmp_path / "b").resolve()
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    with pytest.raises(ValueError):
        parse_s3_url("s3:///nobucket")
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, storage_url="ftp://host/x")


def test_device_setting_accepts_one_gpu_by_index(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, device="cuda:1").device == "cuda:1"
    for ok in ("auto", "cpu", "cuda"):
        assert Settings(data_dir=tmp_path, device=ok).device == ok
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, device="gpu1")


def test_worker_device_option_pins_the_jobs_to_that_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``shapehint worker --device cuda:1``: the setting the worker's jobs resolve (torch only
    names the device here; no GPU is needed to check the plumbing)."""
    from typer.testing import CliRunner

    from shapehint.cli import app, use_device
    from store.settings import get_settings
    from worker.context import resolved_device

    monkeypatch.setenv("SHAPEHINT_DATA_DIR", str(tmp_path))
    # Recorded by monkeypatch first, so the variable use_device sets is undone afterwards.
    monkeypatch.setenv("SHAPEHINT_DEVICE", "auto")
    use_device("cuda:1")
    try:
        assert get_settings().device == "cuda:1"
        assert resolved_device(get_settings()) == "cuda:1"
        assert resolved_device(Settings(data_dir=tmp_path, device="cpu")) == "cpu"
        with pytest.raises(ValueError):
            use_device("gpu1")
        assert CliRunner().invoke(app, ["worker", "--device", "cuda:1", "--help"]).exit_code == 0
    finally:
        get_settings.cache_clear()
