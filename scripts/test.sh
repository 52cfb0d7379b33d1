#!/usr/bin/env bash
# Install everything the test suite needs (into ./.venv) and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh
. .venv/bin/activate
ruff check sdk collector tests bench
ruff format --check sdk collector tests bench
mypy sdk/faultprint collector/faultprint_collector
set +e
python -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "no tests were collected" >&2
  exit 1
fi
exit "$status"
