"""InMemoryEventBus behaviour (API.md §6.2, §15 items 26-29)."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from eventsource import DomainEvent, InMemoryEventBus


class ItemAdded(DomainEvent):
    event_type: str = "ItemAdded"
    aggregate_type: str = "Cart"
    sku: str = "A"


class CartClosed(DomainEvent):
    event_type: str = "CartClosed"
    aggregate_type: str = "Cart"


def added() -> ItemAdded:
    return ItemAdded(aggregate_id=uuid4())


def closed() -> CartClosed:
    return CartClosed(aggregate_id=uuid4())


async def test_failing_handler_does_not_stop_the_others_nor_the_publisher() -> None:
    bus = InMemoryEventBus()
    seen: list[DomainEvent] = []

    async def broken(event: DomainEvent) -> None:
        raise RuntimeError("boom")

    async def working(event: DomainEvent) -> None:
        seen.append(event)

    bus.subscribe(ItemAdded, broken)
    bus.subscribe(ItemAdded, working)
    event = added()
    await bus.publish([event])
    assert seen == [event]
    assert bus.get_stats()["handler_errors"] == 1


async def test_counts_and_stats_match_the_tutorial() -> None:
    bus = InMemoryEventBus()
    calls: list[str] = []

    async def h1(event: DomainEvent) -> None:
        calls.append("h1")

    def h2(event: DomainEvent) -> None:  # sync handlers work too
        calls.append("h2")

    async def wildcard(event: DomainEvent) -> None:
        calls.append("w")

    bus.subscribe(ItemAdded, h1)
    bus.subscribe(ItemAdded, h2)
    bus.subscribe(CartClosed, h1)
    bus.subscribe_to_all_events(wildcard)
    assert bus.get_subscriber_count() == 3
    assert bus.get_subscriber_count(ItemAdded) == 2
    assert bus.get_subscriber_count(CartClosed) == 1
    assert bus.get_wildcard_subscriber_count() == 1
    await bus.publish([added(), closed()])
    assert bus.get_stats() == {
        "events_published": 2,
        "handlers_invoked": 5,
        "handler_errors": 0,
        "background_tasks_created": 0,
        "background_tasks_completed": 0,
    }
    assert list(bus.get_stats()) == [
        "events_published", "handlers_invoked", "handler_errors",
        "background_tasks_created", "background_tasks_completed",
    ]
    assert sorted(calls) == ["h1", "h1", "h2", "w", "w"]


async def test_background_publish_returns_first_and_shutdown_waits() -> None:
    bus = InMemoryEventBus()
    release = asyncio.Event()
    done: list[DomainEvent] = []

    async def slow(event: DomainEvent) -> None:
        await release.wait()
        done.append(event)

    bus.subscribe(ItemAdded, slow)
    await bus.publish([added()], background=True)
    assert done == []
    assert bus.get_background_task_count() == 1
    release.set()
    await bus.shutdown(timeout=5)
    assert len(done) == 1
    stats = bus.get_stats()
    assert stats["background_tasks_created"] == 1
    assert stats["background_tasks_completed"] == 1


async def test_shutdown_cancels_what_outlives_the_timeout() -> None:
    bus = InMemoryEventBus()

    async def forever(event: DomainEvent) -> None:
        await asyncio.sleep(3600)

    bus.subscribe(ItemAdded, forever)
    await bus.publish([added()], background=True)
    await bus.shutdown(timeout=0.05)
    assert bus.get_background_task_count() == 0


async def test_unsubscribe_by_identity() -> None:
    bus = InMemoryEventBus()

    async def handler(event: DomainEvent) -> None:
        return None

    async def other(event: DomainEvent) -> None:
        return None

    bus.subscribe(ItemAdded, handler)
    assert bus.unsubscribe(ItemAdded, other) is False
    assert bus.unsubscribe(ItemAdded, handler) is True
    assert bus.unsubscribe(ItemAdded, handler) is False
    bus.subscribe_to_all_events(handler)
    assert bus.unsubscribe_from_all_events(handler) is True
    assert bus.unsubscribe_from_all_events(handler) is False


async def test_subscribe_without_handler_is_a_decorator() -> None:
    bus = InMemoryEventBus()
    seen: list[DomainEvent] = []

    @bus.subscribe(CartClosed)  # type: ignore[untyped-decorator]  # subscribe() returns Any
    async def on_closed(event: DomainEvent) -> None:
        seen.append(event)

    assert callable(on_closed)
    await bus.publish([closed()])
    assert len(seen) == 1


async def test_subscribe_all_registers_exactly_the_subscribed_types() -> None:
    bus = InMemoryEventBus()

    class Subscriber:
        def __init__(self) -> None:
            self.seen: list[DomainEvent] = []

        def subscribed_to(self) -> list[type[DomainEvent]]:
            return [ItemAdded]

        async def handle(self, event: DomainEvent) -> None:
            self.seen.append(event)

    sub = Subscriber()
    bus.subscribe_all(sub)
    assert bus.get_subscriber_count(ItemAdded) == 1
    assert bus.get_subscriber_count(CartClosed) == 0
    await bus.publish([added(), closed()])
    assert [type(e) for e in sub.seen] == [ItemAdded]


async def test_events_are_dispatched_in_order_and_empty_publish_is_a_no_op() -> None:
    bus = InMemoryEventBus()
    seen: list[DomainEvent] = []
    bus.subscribe_to_all_events(seen.append)
    events = [added(), closed(), added()]
    await bus.publish(events)
    await bus.publish([])
    assert seen == events
    assert bus.get_stats()["events_published"] == 3


@pytest.mark.parametrize("background", [False, True])
async def test_handler_objects_with_sync_or_async_handle(background: bool) -> None:
    bus = InMemoryEventBus()
    seen: list[str] = []

    class SyncHandler:
        def handle(self, event: DomainEvent) -> None:
            seen.append("sync")

    class AsyncHandler:
        async def handle(self, event: DomainEvent) -> None:
            seen.append("async")

    bus.subscribe(ItemAdded, SyncHandler())
    bus.subscribe(ItemAdded, AsyncHandler())
    await bus.publish([added()], background=background)
    await bus.shutdown()
    assert sorted(seen) == ["async", "sync"]


# -- issue 20, group 7: what eventsource-py 0.2.0 code relies on ------------------------------


@pytest.mark.parametrize("handler", ["not a handler", 42, object()], ids=["str", "int", "object"])
def test_subscribe_refuses_what_cannot_handle_an_event(handler: object) -> None:
    from eventsource.exceptions import EventBusError

    bus = InMemoryEventBus()
    with pytest.raises(TypeError, match=r"ItemAdded .* a callable or an object with handle"):
        bus.subscribe(ItemAdded, handler)
    with pytest.raises(EventBusError, match="all events"):
        bus.subscribe_to_all_events(handler)
    with pytest.raises(TypeError, match="CartClosed"):
        bus.subscribe(CartClosed)(handler)  # the decorator form checks too
    assert (bus.get_subscriber_count(), bus.get_wildcard_subscriber_count()) == (0, 0)


@pytest.mark.parametrize(
    ("module", "extra"),
    [("eventsource.bus.redis", "redis"), ("eventsource.bus.nats", "nats"),
     ("eventsource.bus.rabbitmq", "aio_pika")],
)
def test_broker_buses_refuse_the_same_handlers(module: str, extra: str) -> None:
    import importlib

    from extras import require_extra

    require_extra(extra)
    bus_module = importlib.import_module(module)
    bus_class = next(
        getattr(bus_module, name) for name in bus_module.__all__ if name.endswith("EventBus")
    )
    bus = bus_class()  # not connected: subscribing needs no broker
    with pytest.raises(TypeError, match="ItemAdded"):
        bus.subscribe(ItemAdded, "not a handler")
    assert bus.get_subscriber_count() == 0


def test_event_subscriber_is_checked_by_shape_and_still_an_abc() -> None:
    from eventsource.bus.interface import EventSubscriber
    from eventsource.projections import DeclarativeProjection

    class Plain:  # no base class, as upstream's protocol allowed
        def subscribed_to(self) -> list[type[DomainEvent]]:
            return [ItemAdded]

        async def handle(self, event: DomainEvent) -> None:
            pass

    class HandleOnly:
        async def handle(self, event: DomainEvent) -> None:
            pass

    class Incomplete(EventSubscriber):
        def subscribed_to(self) -> list[type[DomainEvent]]:
            return []

    class Projection(DeclarativeProjection):
        pass

    assert isinstance(Plain(), EventSubscriber)
    assert issubclass(Plain, EventSubscriber)
    assert not isinstance(HandleOnly(), EventSubscriber)
    assert not isinstance("subscribed_to", EventSubscriber)
    assert isinstance(Projection(), EventSubscriber)
    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]
