"""Failures of PostgreSQL and of the road to it surface as the library's typed errors, from the
store and from every repository, with a message that names the database and what was wrong
(never SQLAlchemy's statement dump); and PostgreSQL URLs are accepted in each usual form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import uuid4

import pytest
from _pg_support import added, register
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from eventsource.exceptions import CheckpointError, EventStoreError
from eventsource.repositories.postgresql import (
    PostgreSQLCheckpointRepository,
    PostgreSQLDLQRepository,
    PostgreSQLOutboxRepository,
)
from eventsource.snapshots import SnapshotError
from eventsource.snapshots.postgresql import PostgreSQLSnapshotStore
from eventsource.stores.postgresql import PostgreSQLEventStore
from eventsource.testing.contract.snapshot import make_snapshot

pytestmark = pytest.mark.postgresql
pytest_plugins = ["pytester"]

Call = Callable[[Any], Awaitable[Any]]


# (repository class, library error, a call with a bad value, what the message must name)
BAD_VALUES: list[tuple[Any, type[Exception], Call, str]] = [
    (PostgreSQLCheckpointRepository, CheckpointError,
     lambda repo: repo.update_checkpoint("nul\x00name", uuid4(), "PgItemAdded"), "0x00"),
    (PostgreSQLCheckpointRepository, CheckpointError,
     lambda repo: repo.update_checkpoint("p", "not-a-uuid", "PgItemAdded"), "event_id"),
    (PostgreSQLDLQRepository, EventStoreError,
     lambda repo: repo.get_failed_event_by_id(2**70), "int64"),
    (PostgreSQLOutboxRepository, EventStoreError,
     lambda repo: repo.mark_published("not-a-uuid"), "(id)"),
    (PostgreSQLOutboxRepository, EventStoreError,
     lambda repo: repo.get_pending_events(-1), "LIMIT"),
    (PostgreSQLSnapshotStore, SnapshotError,
     lambda repo: repo.save_snapshot(make_snapshot(version=2**40)), "(version)"),
]
REPOSITORIES = sorted({row[0] for row in BAD_VALUES}, key=lambda cls: cls.__name__)
ERRORS = {row[0]: row[1] for row in BAD_VALUES}
FIRST_CALLS: dict[Any, Call] = {
    PostgreSQLCheckpointRepository: lambda repo: repo.get_checkpoint("p"),
    PostgreSQLDLQRepository: lambda repo: repo.get_failure_stats(),
    PostgreSQLOutboxRepository: lambda repo: repo.get_stats(),
    PostgreSQLSnapshotStore: lambda repo: repo.get_snapshot(uuid4(), "PgCart"),
}


def _check(error: BaseException, kind: type[Exception], *named: str) -> None:
    assert isinstance(error, kind), repr(error)
    message = str(error)
    assert "[SQL:" not in message, message
    assert "sqlalche.me" not in message, message
    for part in named:
        assert part in message, message
    assert error.__cause__ is not None


@pytest.mark.parametrize(
    ("repository", "kind", "call", "named"),
    BAD_VALUES,
    ids=[f"{row[0].__name__}-{i}" for i, row in enumerate(BAD_VALUES)],
)
async def test_bad_values_are_typed_errors_naming_the_value(
    pg_session_factory: Any, repository: Any, kind: type[Exception], call: Call, named: str
) -> None:
    repo = repository(pg_session_factory, enable_tracing=False)
    await FIRST_CALLS[repository](repo)  # the table exists: the failure is the value's
    with pytest.raises(kind) as caught:
        await call(repo)
    _check(caught.value, kind, named, "database 'test'")


@pytest.mark.parametrize("repository", REPOSITORIES, ids=lambda cls: cls.__name__)
async def test_an_unreachable_server_is_a_typed_error(repository: Any) -> None:
    closed_port = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    try:
        with pytest.raises(ERRORS[repository]) as caught:
            await FIRST_CALLS[repository](repository(closed_port, enable_tracing=False))
    finally:
        await closed_port.dispose()
    _check(caught.value, ERRORS[repository], "127.0.0.1:1")


async def test_a_missing_database_is_a_typed_error_naming_it(pg_url: str) -> None:
    """A URL naming a database that does not exist: the store and every repository raise
    their library error naming the database (a closed port already did)."""
    register()
    missing = f"missing_{uuid4().hex[:8]}"
    url = pg_url.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0]
    nowhere = create_async_engine(f"{url}/{missing}")
    try:
        store = PostgreSQLEventStore(async_sessionmaker(nowhere), enable_tracing=False)
        cart = uuid4()
        with pytest.raises(EventStoreError) as caught:
            await store.append_events(cart, "PgCart", [added(cart, 1)], 0)
        _check(caught.value, EventStoreError, f"'{missing}'")
        for repository in REPOSITORIES:
            with pytest.raises(ERRORS[repository]) as failed:
                await FIRST_CALLS[repository](repository(nowhere, enable_tracing=False))
            _check(failed.value, ERRORS[repository], f"'{missing}'")
    finally:
        await nowhere.dispose()


async def test_a_caller_connection_in_a_failed_transaction_is_a_typed_error(
    pg_session_factory: Any,
) -> None:
    """With the caller's `AsyncConnection`, a statement of the repository inside a transaction
    the caller already broke is reported as the library's error too."""
    engine: AsyncEngine = pg_session_factory.kw["bind"]
    async with engine.connect() as conn:
        repo = PostgreSQLCheckpointRepository(conn, enable_tracing=False)
        await repo.get_checkpoint("p")
        await conn.begin()
        with pytest.raises(Exception):  # noqa: B017 - the caller's own failure, raw
            await conn.exec_driver_sql("SELECT 1/0")
        with pytest.raises(CheckpointError) as caught:
            await repo.update_checkpoint("p", uuid4(), "PgItemAdded")
        _check(caught.value, CheckpointError, "aborted")
        await conn.rollback()


# -- URL forms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+asyncpg"])
def test_the_pytest_plugin_takes_every_url_form(
    pytester: pytest.Pytester, pg_url: str, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`EVENTSOURCE_TEST_PG_URL` may be written as the README does (`postgresql://`), as libpq
    allows (`postgres://`) or as SQLAlchemy wants it (`postgresql+asyncpg://`)."""
    monkeypatch.setenv("EVENTSOURCE_TEST_PG_URL", scheme + "://" + pg_url.split("://", 1)[1])
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(
        """
        from uuid import uuid4
        from eventsource import DomainEvent, register_event

        pytest_plugins = ["eventsource.testing.pytest_plugin"]

        @register_event
        class UrlChecked(DomainEvent):
            event_type: str = "UrlChecked"
            aggregate_type: str = "UrlCheck"

        async def test_store(postgresql_event_store):
            cart = uuid4()
            await postgresql_event_store.append_events(
                cart, "UrlCheck", [UrlChecked(aggregate_id=cart)], 0
            )
        """
    )
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=1)


def test_urls_convert_between_the_drivers_forms() -> None:
    from eventsource._sql.postgresql import asyncpg_url, sqlalchemy_url

    for scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        url = f"{scheme}://u:p@h:5/db?sslmode=disable"
        assert asyncpg_url(url) == "postgresql://u:p@h:5/db?sslmode=disable"
        assert sqlalchemy_url(url) == "postgresql+asyncpg://u:p@h:5/db?sslmode=disable"
    with pytest.raises(ValueError, match="mysql"):
        asyncpg_url("mysql://u:secret@h/db")
    with pytest.raises(ValueError) as caught:
        sqlalchemy_url("mysql://u:secret@h/db")
    assert "secret" not in str(caught.value)
