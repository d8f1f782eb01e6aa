#!/usr/bin/env bash
# Set up .venv (if needed) and run the whole test suite: ruff, mypy --strict on src/ and tests/,
# pytest with warnings as errors and, for the whole suite under CI (or COVERAGE=1), the coverage
# floor.
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
if [ $# -eq 0 ] && [ -n "${CI:-}${COVERAGE:-}" ]; then
    # The whole suite under CI (or with COVERAGE=1) fails below the coverage floor
    # ([tool.coverage.report] fail_under). Tracing lines costs ~70 % more CPU on Python 3.11
    # (measured on the unit and contract tests), so other runs skip it; on 3.12+ coverage uses
    # the cheaper sys.monitoring core.
    if .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
        export COVERAGE_CORE=sysmon
    fi
    echo "== pytest (coverage floor)"
    .venv/bin/python -m pytest -q --cov=eventsource --cov-report=term:skip-covered
else
    echo "== pytest $*"
    .venv/bin/python -m pytest -q "$@"
fi
