"""Fixtures for the imaging tests: small synthetic DICOM, NIfTI and raster files on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.imaging.canonical import ImportLimits
from tests.imaging.dicom_factory import make_ct_series, write_datasets

# Oblique, non-axial geometry so that axis or sign mistakes show up.
OBLIQUE = (0.0, 1.0, 0.0, 0.6, 0.0, -0.8)


@pytest.fixture
def limits() -> ImportLimits:
    return ImportLimits(max_voxels=2_000_000, max_slice_side=512, max_unpacked_bytes=50_000_000)


@pytest.fixture
def ct_volume() -> np.ndarray:
    """(Z=6, H=20, W=14) HU volume with a distinct value per voxel position."""
    rng = np.random.default_rng(1)
    return rng.integers(-1000, 2000, size=(6, 20, 14)).astype(np.float64)


@pytest.fixture
def ct_series(tmp_path: Path, ct_volume: np.ndarray) -> tuple[list[Path], list, np.ndarray]:
    """A 6-slice oblique CT series written to disk: (paths in slice order, datasets, volume)."""
    datasets = make_ct_series(
        ct_volume,
        orientation=OBLIQUE,
        spacing=(2.5, 0.8, 0.7),
        slope=0.5,
        intercept=-1024.0,
        windows=[(40.0, 400.0, "SOFT TISSUE"), (-600.0, 1500.0, "LUNG")],
    )
    return write_datasets(datasets, tmp_path / "series"), datasets, ct_volume
