"""A counter aggregate and its event, and the fixtures shared by the synchronous-API tests
(imported by the test modules: a conftest.py here would shadow the root one's module name)."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from eventsource import (
    DeclarativeAggregate,
    DomainEvent,
    OptimisticLockError,
    handles,
    register_event,
)
from eventsource.sync import Portal, SyncAggregateRepository


@pytest.fixture
def portal() -> Iterator[Portal]:
    """A portal of the test's own, closed afterwards (the default one is shared)."""
    with Portal(f"test-{uuid4().hex[:6]}") as made:
        yield made


@pytest.fixture
def pg_engine_options(pg_url: str) -> Iterator[dict[str, Any]]:
    """Engine options putting everything in a fresh schema, dropped afterwards (made here
    synchronously: these tests run without an event loop, the shared fixtures are async)."""
    import asyncpg

    name = f"t_{uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE SCHEMA "{name}"'))
    try:
        yield {"connect_args": {"server_settings": {"search_path": name}}}
    finally:
        asyncio.run(execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


@register_event
class SyncIncremented(DomainEvent):
    event_type: str = "SyncIncremented"
    aggregate_type: str = "SyncCounter"
    writer: int = 0
    seq: int = 0


class CounterState(BaseModel):
    count: int = 0


class SyncCounter(DeclarativeAggregate[CounterState]):
    aggregate_type = "SyncCounter"

    def _get_initial_state(self) -> CounterState:
        return CounterState()

    @handles(SyncIncremented)
    def _on_incremented(self, event: SyncIncremented) -> None:
        self._state = CounterState(count=(self._state or CounterState()).count + 1)

    def increment(self, writer: int = 0, seq: int = 0) -> None:
        self.apply_event(
            SyncIncremented(
                aggregate_id=self.aggregate_id,
                aggregate_version=self.get_next_version(),
                writer=writer,
                seq=seq,
            )
        )


def counter(aggregate_id: UUID) -> SyncCounter:
    return SyncCounter(aggregate_id)


def stale_save(repo: SyncAggregateRepository[Any]) -> tuple[SyncCounter, OptimisticLockError]:
    """Save a counter loaded at version 1 after another save took it to 2: the aggregate and
    the error the stale save raised (checked to be exactly an `OptimisticLockError(1, 2)`)."""
    fresh = repo.create_new(uuid4())
    fresh.increment()
    repo.save(fresh)
    stale = repo.load(fresh.aggregate_id)
    fresh.increment()
    repo.save(fresh)
    stale.increment()
    with pytest.raises(OptimisticLockError) as caught:
        repo.save(stale)
    error = caught.value
    assert type(error) is OptimisticLockError
    assert (error.aggregate_id, error.expected_version, error.actual_version) == (
        fresh.aggregate_id, 1, 2,
    )
    assert stale.has_uncommitted_events  # nothing was half-done to the aggregate
    return stale, error


def raised_in(error: BaseException) -> list[str]:
    """The files of the frames `error` passed through, innermost last."""
    return [frame.filename for frame in traceback.extract_tb(error.__traceback__)]
