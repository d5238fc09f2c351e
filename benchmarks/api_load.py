"""Load test of the API: hint PUT and slice PNG GET latency with many concurrent clients.

Starts ``shapehint serve`` (no embedded worker, fresh data folder, SQLite unless
``--database-url``) on a free localhost port in a subprocess, creates a project with one
NIfTI volume, then runs ``--clients`` concurrent httpx clients that alternate
``PUT /api/images/{id}/slices/{z}/hints`` and ``GET /api/images/{id}/slices/{z}.png`` until
``--requests`` requests are done. Prints p50/p95/p99 latency (ms) per kind and the error count.

    python benchmarks/api_load.py --clients 50 --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

TOKEN = "sh_benchmark_admin_token_0123456789abcdefghijklmnop"
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nifti_volume(slices: int, side: int) -> bytes:
    """A gzipped NIfTI of ``(side, side, slices)`` int16 with 0.8 x 0.8 x 2 mm voxels."""
    import nibabel as nib

    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1000, size=(side, side, slices), dtype=np.int16)
    return gzip.compress(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.0, 1.0])).to_bytes(), 1)


def start_server(port: int, data_dir: Path, database_url: str | None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(SHAPEHINT_DATA_DIR=str(data_dir), SHAPEHINT_BOOTSTRAP_TOKEN=TOKEN)
    if database_url:
        env["SHAPEHINT_DATABASE_URL"] = database_url
    cmd = [sys.executable, "-m", "shapehint", "serve", "--port", str(port), "--no-embedded-worker"]
    return subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            if httpx.get(f"{base}/api/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become healthy in time")


def setup(base: str, slices: int, side: int) -> tuple[int, int]:
    """Create a project and upload one volume; returns (image id, number of slices)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60.0) as client:
        r = client.post("/api/projects", json={"name": "bench", "classes": [{"name": "LV"}]})
        r.raise_for_status()
        pid = r.json()["id"]
        files = [("files", ("bench.nii.gz", nifti_volume(slices, side), "application/gzip"))]
        r = client.post(f"/api/projects/{pid}/images", files=files)
        r.raise_for_status()
        image = r.json()[0]
        return int(image["id"]), int(image["shape"][0])


async def run_clients(
    base: str, image_id: int, slices: int, clients: int, total: int
) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    latencies: dict[str, list[float]] = {"hint_put": [], "slice_png": []}
    errors: list[str] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60.0, limits=limits
    ) as http:

        async def client_loop(cid: int) -> None:
            rng = np.random.default_rng(cid)
            for i in counter:
                z = int(rng.integers(0, slices))
                t0 = time.perf_counter()
                if i % 2 == 0:
                    lo = int(rng.integers(50, 200))
                    body = {
                        "LV": {"size": [lo, lo + 300], "centroid": {"x": [40, 80], "y": [40, 80]}}
                    }
                    r = await http.put(f"/api/images/{image_id}/slices/{z}/hints", json=body)
                    kind = "hint_put"
                else:
                    r = await http.get(f"/api/images/{image_id}/slices/{z}.png?wc=0&ww=800")
                    kind = "slice_png"
                latencies[kind].append((time.perf_counter() - t0) * 1000.0)
                if r.status_code != 200:
                    errors.append(f"{kind} {r.status_code}: {r.text[:200]}")

        await asyncio.gather(*(client_loop(c) for c in range(clients)))
    latencies["errors"] = errors  # type: ignore[assignment]
    return latencies


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to tell server cost from client cost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def summarise(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
        "p99_ms": round(float(np.percentile(arr, 99)), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="Total requests (both kinds)")
    parser.add_argument("--slices", type=int, default=20)
    parser.add_argument("--side", type=int, default=256, help="Slice side in px")
    parser.add_argument("--database-url", default=None, help="Default: SQLite in a temp folder")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="shapehint-bench-") as tmp:
        proc = start_server(port, Path(tmp), args.database_url)
        try:
            wait_healthy(base, proc)
            image_id, slices = setup(base, args.slices, args.side)
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            result = asyncio.run(run_clients(base, image_id, slices, args.clients, args.requests))
            wall = time.perf_counter() - t0
            cpu1 = cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    errors = result.pop("errors")
    report = {
        "clients": args.clients,
        "requests": args.requests,
        "slice": f"{args.side}x{args.side} px, {slices} slices",
        "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
        "wall_s": round(wall, 2),
        "throughput_rps": round(args.requests / wall, 1),
        "server_cpu_ms_per_request": (
            round((cpu1 - cpu0) * 1000 / args.requests, 1)
            if cpu0 is not None and cpu1 is not None
            else None
        ),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "cpu_cores": os.cpu_count(),
        "hint_put": summarise(result["hint_put"]),
        "slice_png": summarise(result["slice_png"]),
        "errors": len(errors),
        "first_errors": errors[:3],
    }
    print(json.dumps(report, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
