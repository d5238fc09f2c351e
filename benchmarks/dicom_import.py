"""Benchmark: import of a zipped N-slice 512x512 CT series (seconds and peak memory).

Generates the series slice by slice into a zip in a temp directory, then imports it in a fresh
subprocess (so its peak RSS is the import's, not the generator's) twice: once plain for time and
ru_maxrss, once under tracemalloc for the peak of Python/numpy allocations. Memory is bounded if
the peak minus the output volume (Z*512*512*4 bytes) stays flat as the zip grows.

    python benchmarks/dicom_import.py                # 150 and 300 slices
    python benchmarks/dicom_import.py --slices 300
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def generate_zip(n_slices: int, folder: Path, size: int = 512) -> Path:
    """Zip of an ``n_slices`` x ``size`` x ``size`` CT phantom, one slice in memory at a time."""
    sys.path.insert(0, str(REPO))
    from pydicom.uid import generate_uid

    from tests.imaging.dicom_factory import make_ct_series, write_datasets

    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(0)
    zpath = folder / f"ct_{n_slices}.zip"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for z in range(n_slices):
            r = np.hypot(yy - size / 2, xx - size / 2)
            body = np.where(r < size * (0.35 + 0.05 * np.sin(z / 20)), 40.0, -1000.0)
            hu = body + rng.normal(0, 20, (size, size)).round()
            [ds] = make_ct_series(
                hu[None],
                study_uid=study,
                series_uid=series,
                frame_uid=frame,
                spacing=(1.25, 0.7, 0.7),
                windows=[(40.0, 400.0, "SOFT")],
            )
            ds.ImagePositionPatient = [-179.0, -179.0, 1.25 * z]
            ds.InstanceNumber = z + 1
            [path] = write_datasets([ds], folder / "tmp", prefix=f"s{z}")
            # Shuffled member order: the importer must sort by position, not by name.
            zf.write(path, f"DICOM/{(z * 7919) % n_slices:05d}.dcm")
            path.unlink()
    return zpath


def run_import(zpath: Path, trace: bool) -> dict[str, float]:
    """Import ``zpath`` in this process; seconds and memory figures."""
    sys.path.insert(0, str(REPO))
    from api.imaging.importer import import_uploads

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        [image] = import_uploads([(zpath.name, zpath)], work_dir=Path(work))
        seconds = time.perf_counter() - t0
        unpacked = sum(p.stat().st_size for p in Path(work).rglob("*") if p.is_file())
    peak = tracemalloc.get_traced_memory()[1] / MB if trace else float("nan")
    if trace:
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert image.shape == (int(zpath.stem.split("_")[1]), 1, 512, 512)
    return {
        "seconds": seconds,
        "volume_mb": image.data.nbytes / MB,
        "unpacked_mb": unpacked / MB,
        "tracemalloc_peak_mb": peak,
        "rss_before_mb": rss_before,
        "maxrss_mb": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", default="150,300", help="comma-separated series lengths")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_import(Path(args.child), args.trace)))
        return
    print(
        f"{'slices':>6} {'zip MB':>7} {'unpacked MB':>11} {'volume MB':>9} {'import s':>8} "
        f"{'maxRSS MB':>9} {'RSS-vol MB':>10} {'tracemalloc MB':>14} {'over volume MB':>14}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.slices.split(",")):
            t0 = time.perf_counter()
            zpath = generate_zip(n, Path(tmp))
            gen_s = time.perf_counter() - t0
            results = {}
            for trace in (False, True):
                cmd = [sys.executable, __file__, "--child", str(zpath)] + (["--trace"] * trace)
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                results[trace] = json.loads(out.strip().splitlines()[-1])
            plain, traced = results[False], results[True]
            print(
                f"{n:>6} {zpath.stat().st_size / MB:>7.1f} {plain['unpacked_mb']:>11.1f} "
                f"{plain['volume_mb']:>9.1f} {plain['seconds']:>8.2f} {plain['maxrss_mb']:>9.1f} "
                f"{plain['maxrss_mb'] - plain['volume_mb']:>10.1f} "
                f"{traced['tracemalloc_peak_mb']:>14.1f} "
                f"{traced['tracemalloc_peak_mb'] - traced['volume_mb']:>14.1f}"
                f"   (generated in {gen_s:.0f} s;"
                f" RSS after library imports {plain['rss_before_mb']:.0f} MB;"
                f" traced import {traced['seconds']:.1f} s)",
                flush=True,
            )
            zpath.unlink()


if __name__ == "__main__":
    main()
