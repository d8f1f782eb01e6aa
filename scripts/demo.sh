#!/usr/bin/env bash
# Set up .venv (if needed) and run the demo on the embedded default store: a SQLite file.
# Usage: bash scripts/demo.sh [path/to/events.db]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/python examples/demo.py "$@"
