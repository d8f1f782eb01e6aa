"""Optional extras in the test runs.

The main run (`scripts/test.sh`) installs every extra, so a missing module FAILS the tests that
need it. The core run (`scripts/test_core.sh`, with `EVENTSOURCE_NO_EXTRAS=1`) installs the core
package (pydantic and aiosqlite come with it) and pytest only -- no PostgreSQL or broker
drivers, no OpenTelemetry, no mypy -- to prove that everything else works without them: there,
and only there, tests needing a missing extra are skipped, naming the module.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import pytest

NO_EXTRAS = os.environ.get("EVENTSOURCE_NO_EXTRAS") == "1"

POSTGRESQL_MODULES = ("sqlalchemy", "asyncpg")


def missing_modules(*modules: str) -> list[str]:
    """Those of `modules` that cannot be imported."""
    absent = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # a parent package is missing
            found = False
        if not found:
            absent.append(module)
    return absent


def require_extra(*modules: str) -> None:
    """Skip (no-extras run) or fail (any other run) unless every module imports."""
    absent = missing_modules(*modules)
    if not absent:
        return
    message = f"{', '.join(absent)} not installed"
    if NO_EXTRAS:
        pytest.skip(f"{message} (EVENTSOURCE_NO_EXTRAS=1: the core run without extras)")
    pytest.fail(f"{message}: install the dev extras (pip install -e '.[dev]')", pytrace=False)


def import_extra(module: str) -> object:
    """Import a module of an optional extra at the top of a test module: skipped (whole module)
    in the no-extras run, an ImportError -- a failure -- anywhere else."""
    if NO_EXTRAS:
        return pytest.importorskip(
            module, reason=f"{module} not installed (EVENTSOURCE_NO_EXTRAS=1: the core run)"
        )
    return importlib.import_module(module)
