#!/usr/bin/env bash
# One command passes the tests: install, lint/format check, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff format --check .
ruff check .
python -m pytest "$@"
