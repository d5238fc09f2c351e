#!/usr/bin/env bash
# Creates .venv (if needed) and installs shapehint with its dev extras. Idempotent and quiet.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null
# Keep a torch the user already has (CUDA builds included); otherwise take the pinned release.
if ! python -c "import torch" >/dev/null 2>&1; then
  python -m pip install -q "torch==${SHAPEHINT_TORCH_VERSION:-2.13.0}" 2>&1 | grep -v "is ignored" || true
fi
python -m pip install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
python -c "import torch, fastapi, celery, shapehint" # fail loudly if the install is incomplete
