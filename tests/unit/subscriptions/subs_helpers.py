"""Shared pieces of the subscription tests: events, recording subscribers, real test doubles."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

from eventsource import (
    DomainEvent,
    InMemoryCheckpointRepository,
    InMemoryEventStore,
    register_event,
)
from eventsource.stores.interface import CommittedPage


@register_event
class OrderPlaced(DomainEvent):
    event_type: str = "OrderPlaced"
    aggregate_type: str = "Order"
    total: float = 0.0


@register_event
class OrderShipped(DomainEvent):
    event_type: str = "OrderShipped"
    aggregate_type: str = "Order"


@register_event
class UserRegistered(DomainEvent):
    event_type: str = "UserRegistered"
    aggregate_type: str = "User"


class Recorder:
    """Records every event it handles, in order; optionally fails on chosen events."""

    def __init__(
        self,
        types: list[type[DomainEvent]] | None = None,
        fail: Callable[[DomainEvent, int], BaseException | None] | None = None,
    ) -> None:
        default: list[type[DomainEvent]] = [OrderPlaced, OrderShipped]
        self.types = types if types is not None else default
        self.fail = fail
        self.seen: list[UUID] = []
        self.attempts: dict[UUID, int] = {}

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return self.types

    async def handle(self, event: DomainEvent) -> None:
        count = self.attempts[event.event_id] = self.attempts.get(event.event_id, 0) + 1
        if self.fail is not None:
            error = self.fail(event, count)
            if error is not None:
                raise error
        self.seen.append(event.event_id)


async def place_orders(store: InMemoryEventStore, count: int) -> list[UUID]:
    """Append `count` one-event streams; returns the event ids in order."""
    ids = []
    for _ in range(count):
        order_id = uuid4()
        event = OrderPlaced(aggregate_id=order_id, aggregate_version=1)
        await store.append_events(order_id, "Order", [event], 0)
        ids.append(event.event_id)
    return ids


async def eventually(predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    """Wait until `predicate()` is truthy (a generous deadline, not a timing assertion)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polls plain state, there is no event to await
            await asyncio.sleep(0.005)


async def stored_ids(store: InMemoryEventStore) -> list[UUID]:
    return [stored.event_id for stored in (await store.read_all()).events]


class CountingCheckpointRepository(InMemoryCheckpointRepository):
    """A real checkpoint repository that counts `save_position` round trips."""

    def __init__(self) -> None:
        super().__init__(enable_tracing=False)
        self.saves: list[tuple[int, str | None]] = []

    async def save_position(
        self, subscription_id: str, position: int, event_id: UUID, event_type: str,
        cursor: str | None = None,
        count: int = 1,
    ) -> None:
        self.saves.append((position, cursor))
        await super().save_position(
            subscription_id, position, event_id, event_type, cursor, count
        )


class FlakyStore(InMemoryEventStore):
    """An in-memory store whose first `failures` reads raise ConnectionError (an outage)."""

    def __init__(self, failures: int) -> None:
        super().__init__(enable_tracing=False)
        self.failures_left = failures
        self.position_down = False
        self.reads = 0

    async def get_global_position(self) -> int:
        if self.position_down:
            raise ConnectionError("event store unreachable")
        return await super().get_global_position()

    async def read_committed(self, after: str | None = None, limit: int = 1000) -> CommittedPage:
        self.reads += 1
        if self.failures_left > 0:
            self.failures_left -= 1
            raise ConnectionError("event store unreachable")
        return await super().read_committed(after, limit)
