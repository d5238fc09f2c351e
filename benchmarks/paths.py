"""Where the benchmarks read and write: the repository, the real data (``../shared/data``, read
only), the aggregate results (``benchmarks/results``) and the ignored checkpoint cache."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # ``python benchmarks/acdc.py`` puts benchmarks/ first
    sys.path.insert(0, str(REPO_ROOT))

DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
CACHE_DIR = REPO_ROOT / "benchmarks" / "cache"  # ignored by git (.gitignore)
