"""Event classes and backends shared by the DCB tests: every test runs against a real SQLite
file and the real PostgreSQL (a fresh schema), and the in-memory store."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from eventsource import DomainEvent, register_event
from eventsource.dcb import DCBStore, InMemoryDCBStore, Tagged
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.testing.contract.bus import ContractPing, ContractPong

BACKENDS = ["memory", "sqlite", "postgresql"]


@register_event
class Enrolled(DomainEvent):
    """Tagged by its class: `course:<id>` and `student:<id>`."""

    event_type: str = "DcbEnrolled"
    course_id: str
    student_id: str
    aggregate_type: str = "DcbStudent"
    dcb_tags: ClassVar[tuple[str, ...]] = ("course:{course_id}", "student:{student_id}")


# Two event types without tags of their own (given with `Tagged`): the bus contract's.
Noted, Closed = ContractPing, ContractPong


def noted(*tags: str, kind: type[DomainEvent] = Noted, stream: uuid.UUID | None = None) -> Tagged:
    """An event of `kind` with `tags`, on a stream of its own unless one is given."""
    return Tagged(kind(aggregate_id=stream or uuid.uuid4()), frozenset(tags))


@dataclass
class Backend:
    """Opens DCB stores over one database; `open()` again gives another connection to it
    (a racer of its own), except in memory, where there is one store."""

    name: str
    path: Path
    schema: str = ""
    closers: list[Any] = field(default_factory=list)
    _memory: DCBStore | None = None

    async def open(self, pool_size: int = 10) -> DCBStore:
        if self.name == "memory":
            if self._memory is None:
                self._memory = InMemoryDCBStore(InMemoryEventStore(enable_tracing=False))
            return self._memory
        if self.name == "sqlite":
            from eventsource.dcb.sqlite import SQLiteDCBStore
            from eventsource.stores.sqlite import SQLiteEventStore

            store = SQLiteEventStore(str(self.path), enable_tracing=False, busy_timeout=30000)
            await store.initialize()
            self.closers.append(store.close)
            return SQLiteDCBStore(store)
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        from eventsource.dcb.postgresql import PostgreSQLDCBStore
        from eventsource.stores.postgresql import PostgreSQLEventStore

        engine = create_async_engine(
            pg_url().replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=pool_size,
            connect_args={"server_settings": {"search_path": self.schema}},
        )
        pg_store = PostgreSQLEventStore(async_sessionmaker(engine), enable_tracing=False)
        self.closers += [engine.dispose, pg_store.close]
        return PostgreSQLDCBStore(pg_store)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        if self.schema:
            import asyncpg

            conn = await asyncpg.connect(pg_url())
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            finally:
                await conn.close()


def pg_url() -> str:
    from conftest import require_postgres

    return require_postgres()


async def open_backend(name: str, directory: Path) -> Backend:
    """A backend on a new SQLite file in `directory`, or a fresh PostgreSQL schema."""
    backend = Backend(name, directory / f"dcb-{uuid.uuid4().hex[:8]}.db")
    if name == "postgresql":
        import asyncpg

        backend.schema = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(pg_url())
        try:
            await conn.execute(f'CREATE SCHEMA "{backend.schema}"')
        finally:
            await conn.close()
    return backend


def positions(found: Iterable[Any]) -> list[int]:
    return [event.position for event in found]


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each DCB test on memory, a real SQLite file and real PostgreSQL (import this fixture)."""
    opened = await open_backend(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close()
