"""A counter aggregate and its event, shared by the synchronous-API tests."""

from __future__ import annotations

import traceback
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
from eventsource.sync import SyncAggregateRepository


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
