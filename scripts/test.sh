#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite: ruff, mypy --strict on src/ and tests/,
# pytest with warnings as errors and (with no arguments) the coverage floor.
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
echo "== mypy --strict src tests"
.venv/bin/mypy src tests
if [ $# -eq 0 ]; then
    # The whole suite: below the coverage floor ([tool.coverage.report] fail_under) it fails.
    echo "== pytest (coverage floor)"
    .venv/bin/python -m pytest -q --cov=eventsource --cov-report=term:skip-covered
else
    echo "== pytest $*"  # a part of the suite: no floor to meet
    .venv/bin/python -m pytest -q "$@"
fi
