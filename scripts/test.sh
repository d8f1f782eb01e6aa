#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite: ruff, mypy --strict on src/, pytest.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "== ruff"
.venv/bin/ruff check src tests benchmarks examples
echo "== mypy --strict src"
.venv/bin/mypy src
echo "== pytest"
.venv/bin/python -m pytest -q "$@"
