#!/usr/bin/env bash
# Install faultprint with its collector (into ./.venv) and run the demo on the
# embedded ClickHouse store: real traffic through SDK → collector → ClickHouse → report.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q ".[collector]"
exec .venv/bin/faultprint demo "$@"
