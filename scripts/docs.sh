#!/usr/bin/env bash
# Build the documentation site into site/ with `mkdocs build --strict`: any warning fails.
# Sets up .venv (if needed) with the `docs` extra. Usage: bash scripts/docs.sh [mkdocs args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
# Material prints a notice about its end of life on every build; it is not about this site.
export NO_MKDOCS_2_WARNING=1
exec .venv/bin/mkdocs build --strict "$@"
