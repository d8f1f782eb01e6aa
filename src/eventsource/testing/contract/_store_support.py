"""Shared pieces of the event-store contract: its event types, helpers and switches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, register_event
from eventsource.stores.interface import (
    EventStore,
    StoredEvent,
)

StoreFactory = Callable[[EventRegistry | None], AbstractAsyncContextManager[EventStore]]

CART = "ContractCart"
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@register_event
class ContractItemAdded(DomainEvent):
    """An item put into a cart (the contract's main event type)."""

    event_type: str = "ContractItemAdded"
    aggregate_type: str = CART
    sku: str
    quantity: int = 1
    price: Decimal = Decimal("0")


@register_event
class ContractCartClosed(DomainEvent):
    """A cart closed (a second event type)."""

    event_type: str = "ContractCartClosed"
    aggregate_type: str = CART
    reason: str = ""


class ContractItemAddedV2(ContractItemAdded):
    """Registered only in per-test registries, under the name of `ContractItemAdded`."""


class ContractNeverRegistered(DomainEvent):
    """Deliberately in no registry: no store could rebuild it, so every store refuses it."""

    event_type: str = "ContractNeverRegistered"
    aggregate_type: str = CART


def at(seconds: float) -> datetime:
    """A fixed instant, so time filters do not depend on the clock."""
    return T0 + timedelta(seconds=seconds)


def added(aggregate_id: UUID, sku: str = "sku", **fields: Any) -> ContractItemAdded:
    return ContractItemAdded(aggregate_id=aggregate_id, sku=sku, **fields)


def added_many(aggregate_id: UUID, count: int, first_version: int = 1) -> list[ContractItemAdded]:
    return [
        added(aggregate_id, f"sku-{v}", aggregate_version=v, occurred_at=at(v))
        for v in range(first_version, first_version + count)
    ]


def ids(events: Sequence[DomainEvent | StoredEvent]) -> list[UUID]:
    return [e.event_id for e in events]


async def everything(store: EventStore) -> list[StoredEvent]:
    return (await store.read_all()).events


async def fingerprint(store: EventStore) -> tuple[int, list[tuple[UUID, str, int, int]]]:
    """What a failed call must leave unchanged."""
    rows = [
        (s.event_id, s.stream_id, s.stream_position, s.global_position)
        for s in await everything(store)
    ]
    return await store.get_global_position(), rows


class StoreContractBase:
    """The switches a backend may flip; both halves of the contract read them."""

    gap_free_positions: ClassVar[bool] = True
    """Global positions are 1, 2, 3, ... (a sequence-based backend may skip numbers)."""
    rejects_unserialisable_payload: ClassVar[bool] = True
    """Appending an event without a JSON form raises SerializationError (every bundled store
    does; a store that keeps objects and never serialises them may turn this off)."""
    deserialises_events: ClassVar[bool] = True
    """Reads rebuild events from stored JSON (memory returns the appended objects)."""
    concurrent_writers: ClassVar[int] = 16
