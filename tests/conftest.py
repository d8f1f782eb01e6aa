"""Shared fixtures: real services only, never mocks.

PostgreSQL: `EVENTSOURCE_TEST_PG_URL` (default postgresql://postgres@127.0.0.1:5432/test). When
the server is unreachable, PostgreSQL tests skip locally with instructions, and FAIL when the
environment variable CI is set (CI must never skip a service test silently).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from eventsource._sql.postgresql import asyncpg_url
from eventsource.events.registry import default_registry
from extras import NO_EXTRAS, POSTGRESQL_MODULES, missing_modules, require_extra

# Any of postgresql://, postgres:// and postgresql+asyncpg://, kept in the first form.
PG_URL = asyncpg_url(
    os.environ.get("EVENTSOURCE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
PG_HINT = (
    "PostgreSQL is not reachable at {url}: start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
    "or set EVENTSOURCE_TEST_PG_URL"
)


def _pg_reachable(url: str) -> str | None:
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed (pip install -e .[dev])"

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()

    try:
        # In a thread of its own: the first caller may be inside a running event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except Exception as exc:
        return f"{PG_HINT.format(url=url)} ({exc})"
    return None


_pg_problem: list[str | None] = []


def require_postgres() -> str:
    """The PostgreSQL URL, after checking the server once per session."""
    require_extra(*POSTGRESQL_MODULES)
    if not _pg_problem:
        _pg_problem.append(_pg_reachable(PG_URL))
    problem = _pg_problem[0]
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    return PG_URL


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL URL (asyncpg form); skips or fails as described above."""
    return require_postgres()


@pytest.fixture
async def pg_schema(pg_url: str) -> AsyncIterator[str]:
    """A fresh, empty schema, dropped afterwards."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{name}"')
        yield name
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await conn.close()


@pytest.fixture
async def pg_session_factory(pg_url: str, pg_schema: str) -> AsyncIterator[object]:
    """An SQLAlchemy async_sessionmaker bound to the fresh schema (search_path)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    engine = create_async_engine(
        pg_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        pool_size=10,
        max_overflow=10,
        connect_args={"server_settings": {"search_path": pg_schema}},
    )
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
def _isolated_default_registry() -> Iterator[None]:
    """Tests may register event classes; restore the default registry afterwards."""
    before = {name: default_registry.get(name) for name in default_registry.list_types()}
    yield
    default_registry.clear()
    for name, cls in before.items():
        default_registry.register(cls, name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the core run without extras, skip the PostgreSQL tests up front (they import the
    drivers before they could ask `require_postgres`)."""
    if not NO_EXTRAS or not missing_modules(*POSTGRESQL_MODULES):
        return
    skip = pytest.mark.skip(
        reason="sqlalchemy/asyncpg not installed (EVENTSOURCE_NO_EXTRAS=1: the core run)"
    )
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if item.get_closest_marker("postgresql") is not None or "postgresql" in params:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _telemetry_session() -> object:
    """The session's SDK tracer and meter providers, set once (OpenTelemetry allows setting a
    global provider only once), on first use by a test."""
    require_extra("opentelemetry.sdk")
    from otel_support import install

    return install()


@pytest.fixture
def telemetry(_telemetry_session: object) -> Iterator[object]:
    """Spans and metrics recorded during this test only (see tests/telemetry.py)."""
    from otel_support import Telemetry

    assert isinstance(_telemetry_session, Telemetry)
    _telemetry_session.arm()
    try:
        yield _telemetry_session
    finally:
        _telemetry_session.disarm()
