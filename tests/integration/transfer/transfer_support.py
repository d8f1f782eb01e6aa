"""Shared by the transfer tests: a small shop domain with a merge rule (an `ItemAdded` followed
in its stream by its `ItemPriced` becomes one `PricedItemAdded`), a projection that gives the
same totals over either shape, and stores seeded quickly."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsource import DomainEvent
from eventsource.cli import CliApp
from eventsource.events.registry import EventRegistry
from eventsource.stores.interface import EventStore
from eventsource.stores.records import ExpectedVersion
from eventsource.stores.sqlite import SQLiteEventStore
from eventsource.transfer import Step, TransformResult

REGISTRY = EventRegistry()


class _CartLine(DomainEvent):
    """What the events about one line of a cart share (not registered itself)."""

    aggregate_type: str = "Cart"
    sku: str


@REGISTRY.register
class ItemAdded(_CartLine):
    event_type: str = "ItemAdded"


@REGISTRY.register
class ItemPriced(_CartLine):
    event_type: str = "ItemPriced"
    cents: int


@REGISTRY.register
class PricedItemAdded(_CartLine):
    event_type: str = "PricedItemAdded"
    cents: int


@REGISTRY.register
class CartNoted(DomainEvent):
    event_type: str = "CartNoted"
    aggregate_type: str = "Cart"
    note: str


def merge_priced(step: Step) -> TransformResult:
    """The merge rule: ItemAdded + the next ItemPriced of the same sku -> PricedItemAdded;
    CartNoted is dropped; everything else is kept."""
    event = step.event.event
    if isinstance(event, CartNoted):
        return None
    if isinstance(event, ItemAdded):
        following = step.ahead(1)
        if following is not None and isinstance(following.event, ItemPriced) and (
            following.event.sku == event.sku
        ):
            step.absorb(1)
            return PricedItemAdded(
                aggregate_id=event.aggregate_id, sku=event.sku, cents=following.event.cents,
                event_id=event.event_id, occurred_at=event.occurred_at,
            )
    return event


def cli_app() -> CliApp:
    """For `--app transfer_support:cli_app`: the registry, and `REBUILT` as `CartTotals`."""
    return CliApp(registry=REGISTRY, projections=[REBUILT])


class CartTotals:
    """Items and cents per cart, whichever shape the events have."""

    projection_name = "CartTotals"

    def __init__(self) -> None:
        self.carts: dict[UUID, tuple[int, int]] = {}

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [ItemAdded, ItemPriced, PricedItemAdded]

    async def reset(self) -> None:
        self.carts.clear()

    async def handle(self, event: DomainEvent) -> None:
        items, cents = self.carts.get(event.aggregate_id, (0, 0))
        if isinstance(event, ItemAdded):
            items += 1
        elif isinstance(event, ItemPriced):
            cents += event.cents
        elif isinstance(event, PricedItemAdded):
            items, cents = items + 1, cents + event.cents
        self.carts[event.aggregate_id] = (items, cents)


REBUILT = CartTotals()  # what `projections rebuild CartTotals` rebuilds, in this process


def cart_events(cart: UUID, rng: random.Random) -> list[DomainEvent]:
    """A cart's events: added/priced pairs, a note now and then, a lone ItemAdded at times."""
    events: list[DomainEvent] = []
    for n in range(rng.randint(1, 4)):
        sku = f"sku-{n}"
        events.append(ItemAdded(aggregate_id=cart, sku=sku))
        if rng.random() < 0.8:
            events.append(ItemPriced(aggregate_id=cart, sku=sku, cents=rng.randint(1, 999)))
        if rng.random() < 0.2:
            events.append(CartNoted(aggregate_id=cart, note="n" * rng.randint(0, 5)))
    return events


async def seed(store: EventStore, count: int, seed_value: int = 7) -> int:
    """About `count` events in carts whose events interleave (appended in small rounds), so a
    cart's pair may straddle a page; the number stored."""
    rng = random.Random(seed_value)
    pending: list[tuple[UUID, list[DomainEvent]]] = []
    stored = 0
    while stored < count or pending:
        if stored < count and len(pending) < 50:
            cart = uuid4()
            events = cart_events(cart, rng)
            stored += len(events)
            pending.append((cart, events))
            continue
        cart, events = pending.pop(rng.randrange(len(pending)))
        take = rng.randint(1, len(events))
        await store.append_events(cart, "Cart", events[:take], ExpectedVersion.ANY)
        if events[take:]:
            pending.append((cart, events[take:]))
    return stored


@asynccontextmanager
async def sqlite_store(path: Path) -> AsyncIterator[SQLiteEventStore]:
    store = SQLiteEventStore(str(path), event_registry=REGISTRY, enable_tracing=False)
    async with store:
        await store.initialize()
        yield store


async def stream_types(store: EventStore) -> dict[str, list[str]]:
    """Every stream's event types in stream order."""
    streams: dict[str, list[str]] = {}
    async for stored in store.read_all():
        streams.setdefault(stored.stream_id, []).append(stored.event_type)
        assert len(streams[stored.stream_id]) == stored.stream_position
    return streams


def expected_types(streams: dict[str, list[str]]) -> dict[str, list[str]]:
    """What the merge rule makes of every stream (a model of `merge_priced` on type lists)."""
    out: dict[str, list[str]] = {}
    for stream, types in streams.items():
        made: list[str] = []
        i = 0
        while i < len(types):
            kind = types[i]
            if kind == "CartNoted":
                i += 1
                continue
            if kind == "ItemAdded" and i + 1 < len(types) and types[i + 1] == "ItemPriced":
                made.append("PricedItemAdded")
                i += 2
                continue
            made.append(kind)
            i += 1
        if made:
            out[stream] = made
    return out


def fresh_pg_store(session_factory: Any) -> Any:
    from eventsource.stores.postgresql import PostgreSQLEventStore

    return PostgreSQLEventStore(session_factory, event_registry=REGISTRY, enable_tracing=False)
