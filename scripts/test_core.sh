#!/usr/bin/env bash
# The core run: the unit and contract tests in a separate .venv-core holding the package (with
# its dependencies pydantic and aiosqlite) and pytest only -- no PostgreSQL or broker drivers,
# no OpenTelemetry. It proves the library, SQLite included, works without its extras. There
# (EVENTSOURCE_NO_EXTRAS=1), and only there, tests that need a missing extra are skipped; in
# scripts/test.sh a missing extra fails them.
# Usage: bash scripts/test_core.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv-core/bin/python ]; then
    "$PYTHON" -m venv .venv-core
fi
.venv-core/bin/python -m pip install --quiet --disable-pip-version-check -e . \
    'pytest>=8' 'pytest-asyncio>=0.24' 'pytest-timeout>=2.3' 'hypothesis>=6.100'
.venv-core/bin/python - <<'CHECK'
import importlib.util, sys
extras = ("opentelemetry", "sqlalchemy", "asyncpg", "redis", "aio_pika", "aiokafka", "nats")
present = [name for name in extras if importlib.util.find_spec(name) is not None]
if present:
    sys.exit(f"test_core: .venv-core must not contain the extras, found {present}")
if importlib.util.find_spec("aiosqlite") is None:
    sys.exit("test_core: aiosqlite, a dependency of the package, was not installed with it")
CHECK
echo "== pytest (core, without extras)"
EVENTSOURCE_NO_EXTRAS=1 .venv-core/bin/python -m pytest -q tests/unit tests/contract "$@"
