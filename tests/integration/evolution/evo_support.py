"""Shared by the evolution tests: a customer event renamed and reshaped twice, its upcasters
in a registry of their own, and stores on a real SQLite file, PostgreSQL and memory, with a
way to write rows the way an older release did (raw SQL) and to hash the stored rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from eventsource import DeclarativeAggregate, DomainEvent, EventRegistry, handles
from eventsource.evolution import Upcasters
from eventsource.stores.interface import EventStore

CUSTOMER = "Customer"
PARTS_READ_MODEL = (
    "CREATE TABLE IF NOT EXISTS rm_parts (event_id TEXT PRIMARY KEY, applications INT)"
)
"""The read model of split_crash_child.py's projection `PartsApplied`."""


class CustomerSignedUp(DomainEvent):
    """Version 3, stored as `CustomerRegistered` v1 ({name}) by the first release."""

    event_type: str = "CustomerSignedUp"
    aggregate_type: str = CUSTOMER
    renamed_from = ("CustomerRegistered",)
    event_version: int = 3
    full_name: str
    tier: str


class CustomerMoved(DomainEvent):
    event_type: str = "CustomerMoved"
    aggregate_type: str = CUSTOMER
    city: str


class CustomerRenamed(DomainEvent):
    event_type: str = "CustomerRenamed"
    aggregate_type: str = CUSTOMER
    full_name: str


class Profile(BaseModel):
    """The state of `Customer`."""

    name: str = ""
    tier: str = ""
    city: str = ""


class Customer(DeclarativeAggregate[Profile]):
    """Folds the customer events (the parts of a split included)."""

    aggregate_type = CUSTOMER

    def _get_initial_state(self) -> Profile:
        return Profile()

    @handles(CustomerSignedUp)
    def _signed_up(self, event: CustomerSignedUp) -> None:
        self._state = Profile(name=event.full_name, tier=event.tier)

    @handles(CustomerRenamed)
    def _renamed(self, event: CustomerRenamed) -> None:
        self._state = (self._state or Profile()).model_copy(update={"name": event.full_name})

    @handles(CustomerMoved)
    def _moved(self, event: CustomerMoved) -> None:
        self._state = (self._state or Profile()).model_copy(update={"city": event.city})

    def move(self, city: str) -> None:
        self.apply_event(CustomerMoved(
            aggregate_id=self.aggregate_id, aggregate_version=self.get_next_version(), city=city
        ))


class OldCustomerRegistered(DomainEvent):
    """Release 1's class, not registered any more: the in-memory backend appends its objects
    as the first release would have."""

    event_type: str = "CustomerRegistered"
    aggregate_type: str = CUSTOMER
    name: str


def evolution(
    registry: EventRegistry | None = None, upcasters: Upcasters | None = None
) -> tuple[EventRegistry, Upcasters]:
    """A registry with the three classes and its upcasters: the two-step chain of the
    customer event (under its old name) and the split of the retired `CustomerEdited`. A new
    registry with upcasters of its own unless both are given (a child process: the defaults)."""
    if registry is None or upcasters is None:
        registry = EventRegistry()
        upcasters = Upcasters(registry=registry)
    for cls in (CustomerSignedUp, CustomerMoved, CustomerRenamed):
        registry.register(cls)

    @upcasters.upcaster("CustomerRegistered", 1)
    def name_to_full_name(data: dict[str, Any]) -> dict[str, Any]:
        data["full_name"] = data.pop("name")
        return data

    @upcasters.upcaster("CustomerRegistered", 2)
    def add_tier(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "tier": "basic"}

    @upcasters.split("CustomerEdited", 1, into=("CustomerRenamed", "CustomerMoved"))
    def split_edit(data: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"event_type": "CustomerRenamed", "full_name": data["name"]},
            {"event_type": "CustomerMoved", "city": data["city"]},
        ]

    return registry, upcasters


def v1_payload(
    aggregate_id: UUID, version: int, event_type: str = "CustomerRegistered", **fields: Any
) -> tuple[str, str]:
    """(event id, payload JSON) of a row as the first release wrote it."""
    event_id = str(uuid4())
    payload = {
        "event_id": event_id, "event_type": event_type, "event_version": 1,
        "occurred_at": "2024-01-01T00:00:00Z", "aggregate_id": str(aggregate_id),
        "aggregate_type": CUSTOMER, "aggregate_version": version, "tenant_id": None,
        "actor_id": None, "correlation_id": str(uuid4()), "causation_id": None,
        "metadata": {}, **fields,
    }
    return event_id, json.dumps(payload)


@dataclass
class OldRow:
    aggregate_id: UUID
    version: int
    event_type: str
    event_id: str
    payload: str


def old_rows(count: int, per_stream: int = 1) -> list[OldRow]:
    """`count` CustomerRegistered v1 rows, `per_stream` per aggregate."""
    rows: list[OldRow] = []
    aggregate = uuid4()
    for n in range(count):
        if n % per_stream == 0:
            aggregate = uuid4()
        version = n % per_stream + 1
        event_id, payload = v1_payload(aggregate, version, name=f"customer {n}")
        rows.append(OldRow(aggregate, version, "CustomerRegistered", event_id, payload))
    return rows


async def committed_events(store: EventStore, count: int) -> list[DomainEvent]:
    """The first `count` events of the store's commit-safe order. On PostgreSQL other sessions
    of the shared cluster may hold the horizon back for a moment: read on until they come."""
    found: list[DomainEvent] = []
    cursor: str | None = None
    async with asyncio.timeout(30):
        while len(found) < count:
            page = await store.read_committed(cursor, 300)
            found.extend(stored.event for stored in page.events)
            cursor = page.cursor
            if not page.events:
                await asyncio.sleep(0.05)
    return found


InsertRows = Callable[[Sequence[OldRow]], Awaitable[None]]
HashRows = Callable[[], Awaitable[str]]


@dataclass
class Backend:
    name: str
    store: EventStore
    insert: InsertRows  # rows as an older release wrote them, by raw SQL
    digest: HashRows  # a hash of every stored row, to prove reads changed nothing
    sessions: Any


_STAMP = datetime(2024, 1, 1, tzinfo=UTC).isoformat(timespec="microseconds")


@asynccontextmanager
async def sqlite_backend(path: str, registry: EventRegistry) -> AsyncIterator[Backend]:
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.stores.sqlite import SQLiteEventStore

    async def insert(rows: Sequence[OldRow]) -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.executemany(
                "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
                " timestamp, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r.event_id, r.event_type, str(r.aggregate_id), CUSTOMER, r.version, _STAMP,
                  r.payload) for r in rows],
            )
        conn.close()

    async def digest() -> str:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
        finally:
            conn.close()
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with SQLiteEventStore(path, event_registry=registry) as store:
            await store.initialize()
            yield Backend("sqlite", store, insert, digest,
                          async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await engine.dispose()


@asynccontextmanager
async def memory_backend(registry: EventRegistry) -> AsyncIterator[Backend]:
    """An `InMemoryEventStore`; "rows" are appended as objects of release 1's class, and the
    digest hashes what the store holds."""
    from eventsource import InMemoryEventStore
    from eventsource.stores.interface import ExpectedVersion

    store = InMemoryEventStore(enable_tracing=False, event_registry=registry)

    async def insert(rows: Sequence[OldRow]) -> None:
        for row in rows:
            assert row.event_type == "CustomerRegistered", row.event_type
            old = OldCustomerRegistered.model_validate_json(row.payload)
            await store.append_events(row.aggregate_id, CUSTOMER, [old], ExpectedVersion.ANY)

    async def digest() -> str:
        dumps = [stored.event.model_dump_json() async for stored in store.read_all()]
        return hashlib.sha256(repr(dumps).encode()).hexdigest()

    yield Backend("memory", store, insert, digest, None)


@asynccontextmanager
async def postgresql_at(url: str, schema: str, registry: EventRegistry) -> AsyncIterator[Backend]:
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from eventsource.stores.postgresql import PostgreSQLEventStore

    async def connect() -> Any:
        return await asyncpg.connect(url, server_settings={"search_path": schema})

    async def insert(rows: Sequence[OldRow]) -> None:
        conn = await connect()
        try:
            await conn.executemany(
                "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version,"
                ' "timestamp", payload) VALUES ($1, $2, $3, $4, $5, now(), $6::jsonb)',
                [(UUID(r.event_id), r.aggregate_id, CUSTOMER, r.event_type, r.version, r.payload)
                 for r in rows],
            )
        finally:
            await conn.close()

    async def digest() -> str:
        conn = await connect()
        try:
            rows = await conn.fetch("SELECT *, payload::text AS t FROM events ORDER BY id")
        finally:
            await conn.close()
        return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()

    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema}},
    )
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    store = PostgreSQLEventStore(sessions, event_registry=registry)
    try:
        await store.initialize()
        yield Backend("postgresql", store, insert, digest, sessions)
    finally:
        await store.close()
        await engine.dispose()


# -- fixtures (test modules import them and name them in __all__) -----------------------------


@pytest.fixture
def evolved() -> tuple[EventRegistry, Upcasters]:
    return evolution()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend of the parameter (a fresh SQLite file or PostgreSQL schema)."""
    found: Backend = request.getfixturevalue(
        "sqlite_backend_" if request.param == "sqlite" else "postgresql_backend"
    )
    return found


@pytest.fixture
async def sqlite_backend_(
    tmp_path: Path, evolved: tuple[EventRegistry, Upcasters]
) -> AsyncIterator[Backend]:
    async with sqlite_backend(str(tmp_path / "events.db"), evolved[0]) as opened:
        yield opened


@pytest.fixture
async def postgresql_backend(
    pg_url: str, pg_schema: str, evolved: tuple[EventRegistry, Upcasters]
) -> AsyncIterator[Backend]:
    async with postgresql_at(pg_url, pg_schema, evolved[0]) as opened:
        yield opened


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql",
                                                         marks=pytest.mark.postgresql)])
def any_backend(request: pytest.FixtureRequest) -> Backend:
    """`backend`, and the in-memory store too (for the tests whose rows it can hold)."""
    found: Backend = request.getfixturevalue(
        {"memory": "memory_backend_", "sqlite": "sqlite_backend_"}.get(
            request.param, "postgresql_backend"
        )
    )
    return found


@pytest.fixture
async def memory_backend_(evolved: tuple[EventRegistry, Upcasters]) -> AsyncIterator[Backend]:
    async with memory_backend(evolved[0]) as opened:
        yield opened
