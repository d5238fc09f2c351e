#!/usr/bin/env bash
# One command runs the service: installs into .venv on first use, then `shapehint serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/shapehint serve "$@"
