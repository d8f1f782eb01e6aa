"""Shared pieces of the outbox tests: the events and aggregate, stores with their outbox on each
backend, and buses that fail on purpose or record what they publish.

Child processes import this module too (the tests put this directory on their PYTHONPATH).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from eventsource.aggregates.base import DeclarativeAggregate
from eventsource.bus.memory import InMemoryEventBus
from eventsource.events.base import DomainEvent
from eventsource.events.registry import default_registry
from eventsource.projections.decorators import handles
from eventsource.repositories.outbox import InMemoryOutboxRepository, OutboxRepository
from eventsource.repositories.outbox_relay import OutboxRelay
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.interface import EventStore


class Deposited(DomainEvent):
    event_type: str = "OutboxDeposited"
    aggregate_type: str = "OutboxAccount"
    amount: int
    n: int  # the stream version this event was written at (checked by consumers)


class AccountState(BaseModel):
    balance: int = 0


class Account(DeclarativeAggregate[AccountState]):
    aggregate_type = "OutboxAccount"

    def _get_initial_state(self) -> AccountState:
        return AccountState()

    def deposit(self, amount: int) -> None:
        n = self.get_next_version()
        self.apply_event(
            Deposited(aggregate_id=self.aggregate_id, aggregate_version=n, amount=amount, n=n)
        )

    @handles(Deposited)
    def _on_deposited(self, event: Deposited) -> None:
        self._state = AccountState(balance=(self._state or AccountState()).balance + event.amount)


def register() -> None:
    if default_registry.get_or_none("OutboxDeposited") is None:
        default_registry.register(Deposited)


def deposits(account: UUID, start: int, count: int) -> list[Deposited]:
    """Events for versions start .. start + count - 1 of `account`."""
    return [
        Deposited(aggregate_id=account, aggregate_version=n, amount=n, n=n)
        for n in range(start, start + count)
    ]


@dataclass
class Outboxed:
    """A store writing outbox rows, and a repository over the same outbox."""

    backend: str
    store: EventStore
    outbox: Any  # the bundled repositories implement RelayOutbox
    new_outbox: Callable[[], Awaitable[Any]]  # another repository, as another process has
    location: str  # the SQLite file, or "url schema" for PostgreSQL
    relays: list[Any] = field(default_factory=list)  # stopped before the store closes

    def relay(self, bus: Any, *args: Any, outbox: Any = None, **options: Any) -> OutboxRelay:
        """An `OutboxRelay` on this outbox (or `outbox`), stopped at the end of the test."""
        made = OutboxRelay(self.outbox if outbox is None else outbox, bus, *args, **options)
        self.relays.append(made)
        return made

    async def stop_relays(self) -> None:
        for relay in self.relays:
            await relay.stop()


@asynccontextmanager
async def outboxed(
    backend: str, tmp_path: Path, pg: tuple[str, str] | None = None
) -> AsyncIterator[Outboxed]:
    """A store with its outbox on `backend` ("memory", "sqlite", "postgresql"); for
    PostgreSQL `pg` is (url, schema) of a fresh schema."""
    register()
    if backend == "memory":
        outbox = InMemoryOutboxRepository(enable_tracing=False)
        store = InMemoryEventStore(enable_tracing=False, outbox=outbox)

        async def same() -> InMemoryOutboxRepository:
            return outbox

        env = Outboxed(backend, store, outbox, same, "")
        try:
            yield env
        finally:
            await env.stop_relays()
    elif backend == "sqlite":
        from eventsource.repositories.sqlite import SQLiteOutboxRepository
        from eventsource.stores.sqlite import SQLiteEventStore

        path = str(tmp_path / "outbox.db")
        opened: list[SQLiteEventStore] = []

        async def other() -> SQLiteOutboxRepository:  # a connection of its own
            connection = SQLiteEventStore(path, enable_tracing=False)
            opened.append(connection)
            return SQLiteOutboxRepository(await connection.__aenter__(), enable_tracing=False)

        async with SQLiteEventStore(path, outbox_enabled=True, enable_tracing=False) as sqlite:
            await sqlite.initialize()
            env = Outboxed(
                backend, sqlite, SQLiteOutboxRepository(sqlite, enable_tracing=False), other, path
            )
            try:
                yield env
            finally:
                await env.stop_relays()  # gives up each relay's lock file
                for connection in opened:
                    await connection.close()
    else:
        assert pg is not None
        async with pg_outboxed(*pg) as outboxed:
            yield outboxed


@asynccontextmanager
async def pg_outboxed(url: str, schema: str) -> AsyncIterator[Outboxed]:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.repositories.postgresql import PostgreSQLOutboxRepository
    from eventsource.stores.postgresql import PostgreSQLEventStore

    engines: list[Any] = []

    def engine() -> Any:
        made = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=5,
            connect_args={"server_settings": {"search_path": schema}},
        )
        engines.append(made)
        return made

    async def other() -> PostgreSQLOutboxRepository:  # an engine of its own
        return PostgreSQLOutboxRepository(engine(), enable_tracing=False)

    sessions = async_sessionmaker(engine(), expire_on_commit=False)
    store = PostgreSQLEventStore(sessions, outbox_enabled=True, enable_tracing=False)
    await store.initialize()
    env = Outboxed(
        "postgresql",
        store,
        PostgreSQLOutboxRepository(sessions, enable_tracing=False),
        other,
        f"{url} {schema}",
    )
    try:
        yield env
    finally:
        await env.stop_relays()
        await store.close()
        for made in engines:
            await made.dispose()


class RecordingBus(InMemoryEventBus):
    """An in-memory bus that records every event it accepts, in order, and can be told to fail
    (before sending anything) for chosen aggregates or altogether."""

    def __init__(self) -> None:
        super().__init__(enable_tracing=False)
        self.published: list[DomainEvent] = []
        self.failing: set[UUID] = set()
        self.down = False
        self.calls = 0

    async def publish(self, events: Sequence[DomainEvent], background: bool = False) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("broker unreachable")
        bad = [e for e in events if e.aggregate_id in self.failing]
        if bad:
            raise ValueError(f"broker rejected event {bad[0].event_id}")
        self.published.extend(events)
        await super().publish(list(events), background)


def versions_by_aggregate(events: Sequence[DomainEvent]) -> dict[UUID, list[int]]:
    """Each aggregate's `n` values in the order given."""
    seen: dict[UUID, list[int]] = {}
    for event in events:
        seen.setdefault(event.aggregate_id, []).append(event.n)
    return seen


def first_occurrences(versions: list[int]) -> list[int]:
    """The versions in order of their first appearance (duplicates of at-least-once dropped)."""
    seen: set[int] = set()
    return [v for v in versions if not (v in seen or seen.add(v))]  # type: ignore[func-returns-value]


async def statuses(outbox: OutboxRepository) -> tuple[int, int, int]:
    stats = await outbox.get_stats()
    return stats.pending_count, stats.published_count, stats.failed_count


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """A new PostgreSQL schema, dropped afterwards."""
    import asyncpg

    name = f"o_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
        yield name
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.close()


@asynccontextmanager
async def backend_env(backend: str, tmp_path: Path, pg_url: str | None) -> AsyncIterator[Outboxed]:
    """`outboxed` on a fresh schema for PostgreSQL (`pg_url` from the `pg_url` fixture)."""
    if backend != "postgresql":
        async with outboxed(backend, tmp_path) as opened:
            yield opened
        return
    assert pg_url is not None
    async with fresh_schema(pg_url) as schema, outboxed(backend, tmp_path, (pg_url, schema)) as env:
        yield env


def pg_url_for(backend: str, request: Any) -> str | None:
    """The PostgreSQL URL for the postgresql backend (skips, or fails under CI, if the server is
    unreachable); call it from a synchronous fixture."""
    return str(request.getfixturevalue("pg_url")) if backend == "postgresql" else None
