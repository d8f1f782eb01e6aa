"""`EventBusContract`: the behaviour every broker `EventBus` must show.

Subclass it in a test module (name the subclass `Test...`) and provide an `open_bus` fixture: a
`BusFactory` whose call opens a connected bus on the test's own fresh stream/topic, so a test can
open several consumers, in one group or in several. The factory also reads the backend's dead
letters and injects raw (broken) messages. Buses must be configured so that a message failing
`max_attempts` times is dead-lettered and a stopped consumer's unacknowledged messages reach
the other consumers of its group within seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID, uuid4

import pytest

from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, register_event
from eventsource.types import JSON

__all__ = [
    "UNKNOWN_EVENT_TYPE",
    "BusFactory",
    "ConsumingBus",
    "ContractPing",
    "ContractPong",
    "DeadLetter",
    "EventBusContract",
    "consuming",
    "eventually",
]

RawKind = Literal["garbage", "unknown_type"]
UNKNOWN_EVENT_TYPE = "ContractNeverDefined"
"""The event type a raw "unknown_type" message must name."""


@register_event
class ContractPing(DomainEvent):
    """The bus contract's main event type."""

    event_type: str = "ContractPing"
    aggregate_type: str = "ContractBall"
    n: int = 0


@register_event
class ContractPong(DomainEvent):
    """A second type, for routing by type."""

    event_type: str = "ContractPong"
    aggregate_type: str = "ContractBall"


EventCallback = Callable[[DomainEvent], object]  # a plain or async function taking one event
E = TypeVar("E", bound=DomainEvent)


class ConsumingBus(Protocol):
    """What the contract uses of a broker bus."""

    def subscribe(
        self, event_type: type[E], handler: Callable[[E], object] | None = None
    ) -> object: ...
    def subscribe_to_all_events(self, handler: EventCallback) -> None: ...
    async def publish(self, events: Sequence[DomainEvent], background: bool = False) -> None: ...
    async def start_consuming(self) -> None: ...
    async def stop_consuming(self) -> None: ...
    async def wait_until_consuming(self, timeout: float = 30.0) -> None: ...
    async def shutdown(self, timeout: float = 30.0) -> None: ...
    def get_stats_dict(self) -> JSON: ...
    @property
    def is_consuming(self) -> bool: ...


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message as the contract sees it."""

    event_id: str | None
    event_type: str | None
    reason: str


class BusFactory(Protocol):
    """Opens buses on one test's stream; reads its DLQ; injects broken messages."""

    max_attempts: int

    def __call__(
        self,
        consumer_group: str = "contract",
        consumer_name: str | None = None,
        event_registry: EventRegistry | None = None,
    ) -> AbstractAsyncContextManager[ConsumingBus]: ...

    async def dead_letters(self, bus: ConsumingBus) -> list[DeadLetter]: ...

    async def publish_raw(self, bus: ConsumingBus, kind: RawKind) -> None:
        """Send a message that is not valid text/JSON ("garbage") or names an unregistered
        event type ("unknown_type")."""


async def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait until `check()` holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def consuming(bus: ConsumingBus) -> AsyncIterator[asyncio.Task[None]]:
    """Consume in a task while the block runs (subscribed on entry); stop it on exit."""
    task = asyncio.create_task(bus.start_consuming())
    try:
        waiter = asyncio.ensure_future(bus.wait_until_consuming())
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            await task  # raises the consumer's error
        yield task
    finally:
        await asyncio.wait_for(bus.stop_consuming(), 30)
        await asyncio.wait_for(task, 30)


def pings(count: int, aggregate_id: UUID | None = None) -> list[ContractPing]:
    aggregate = aggregate_id or uuid4()
    return [
        ContractPing(aggregate_id=aggregate, aggregate_version=n + 1, n=n) for n in range(count)
    ]


class EventBusContract:
    """Subclass and provide an `open_bus` fixture (see the module docstring)."""

    async def test_routes_by_event_type_and_to_wildcards(self, open_bus: BusFactory) -> None:
        typed: list[DomainEvent] = []
        every: list[DomainEvent] = []
        async with open_bus() as consumer, open_bus() as publisher:
            consumer.subscribe(ContractPing, typed.append)
            consumer.subscribe_to_all_events(every.append)
            async with consuming(consumer):
                ping, pong = ContractPing(aggregate_id=uuid4()), ContractPong(aggregate_id=uuid4())
                await publisher.publish([ping, pong])
                await eventually(lambda: len(every) >= 2, "both events at the wildcard handler")
        assert [type(e) for e in typed] == [ContractPing]
        assert typed[0] == ping
        assert {e.event_id for e in every} == {ping.event_id, pong.event_id}
        assert every[1] == pong  # rebuilt as the registered class, every field intact

    async def test_events_of_one_aggregate_arrive_in_order(self, open_bus: BusFactory) -> None:
        streams = [pings(30) for _ in range(3)]
        interleaved = [event for trio in zip(*streams, strict=True) for event in trio]
        seen: list[ContractPing] = []
        async with open_bus() as consumer, open_bus() as publisher:
            consumer.subscribe(ContractPing, seen.append)
            async with consuming(consumer):
                for start in range(0, len(interleaved), 7):  # several publish calls
                    await publisher.publish(interleaved[start : start + 7])
                await eventually(lambda: len(seen) >= len(interleaved), "all 90 events")
        by_aggregate: dict[UUID, list[int]] = defaultdict(list)
        for event in seen:
            by_aggregate[event.aggregate_id].append(event.n)
        assert all(ns == list(range(30)) for ns in by_aggregate.values())

    async def test_every_event_is_delivered_at_least_once(self, open_bus: BusFactory) -> None:
        events = pings(400)
        counts: Counter[UUID] = Counter()
        async with open_bus() as consumer, open_bus() as publisher:
            consumer.subscribe(ContractPing, lambda e: counts.update([e.event_id]))
            async with consuming(consumer):
                await publisher.publish(events[:300])
                await publisher.publish(events[300:], background=True)
                await eventually(lambda: len(counts) == len(events), "all 400 events")
            assert publisher.get_stats_dict()["events_published"] == len(events)
        assert set(counts) == {e.event_id for e in events}
        assert min(counts.values()) >= 1

    async def test_failing_handler_is_retried_then_dead_lettered(
        self, open_bus: BusFactory
    ) -> None:
        poison, good = ContractPing(aggregate_id=uuid4(), n=1), ContractPing(aggregate_id=uuid4())
        attempts: Counter[UUID] = Counter()

        def handler(event: DomainEvent) -> None:
            attempts[event.event_id] += 1
            if event.event_id == poison.event_id:
                raise RuntimeError("contract boom")

        async with open_bus() as consumer, open_bus() as publisher:
            consumer.subscribe(ContractPing, handler)
            async with consuming(consumer):
                await publisher.publish([poison, good])
                await eventually(
                    lambda: attempts[poison.event_id] >= open_bus.max_attempts,
                    "the poison message's attempts",
                )
                letters = await self._await_dead_letters(open_bus, consumer, 1)
        assert attempts[poison.event_id] == open_bus.max_attempts
        assert attempts[good.event_id] == 1
        assert [(d.event_id, d.event_type) for d in letters] == [
            (str(poison.event_id), "ContractPing")
        ]
        assert "contract boom" in letters[0].reason

    async def test_a_transient_failure_is_redelivered(self, open_bus: BusFactory) -> None:
        events = pings(20)
        attempts: Counter[UUID] = Counter()
        done: set[UUID] = set()

        async def flaky(event: DomainEvent) -> None:
            attempts[event.event_id] += 1
            if attempts[event.event_id] == 1:
                raise ConnectionError("first try fails")
            done.add(event.event_id)

        async with open_bus() as consumer, open_bus() as publisher:
            consumer.subscribe(ContractPing, flaky)
            async with consuming(consumer):
                await publisher.publish(events)
                await eventually(lambda: len(done) == len(events), "every event's second try")
            assert await open_bus.dead_letters(consumer) == []

    async def test_consumers_of_one_group_share_the_events(self, open_bus: BusFactory) -> None:
        events = pings(200)
        seen: dict[str, set[UUID]] = {"a": set(), "b": set()}

        def recorder(name: str) -> Callable[[DomainEvent], Any]:
            async def record(event: DomainEvent) -> None:
                seen[name].add(event.event_id)
                await asyncio.sleep(0.002)  # slow enough that the other consumer gets work

            return record

        async with (
            open_bus(consumer_name="a") as first,
            open_bus(consumer_name="b") as second,
            open_bus() as publisher,
        ):
            first.subscribe(ContractPing, recorder("a"))
            second.subscribe(ContractPing, recorder("b"))
            async with consuming(first), consuming(second):
                await publisher.publish(events)
                await eventually(
                    lambda: len(seen["a"] | seen["b"]) == len(events), "all events in the group"
                )
        for name, ids in seen.items():
            assert 0 < len(ids) < len(events), f"consumer {name} got a share, not everything"

    async def test_each_group_receives_every_event(self, open_bus: BusFactory) -> None:
        events = pings(100)
        seen: dict[str, set[UUID]] = {"g1": set(), "g2": set()}
        async with (
            open_bus(consumer_group="g1") as first,
            open_bus(consumer_group="g2") as second,
            open_bus() as publisher,
        ):
            first.subscribe(ContractPing, lambda e: seen["g1"].add(e.event_id))
            second.subscribe(ContractPing, lambda e: seen["g2"].add(e.event_id))
            async with consuming(first), consuming(second):
                await publisher.publish(events)
                await eventually(
                    lambda: all(len(ids) == len(events) for ids in seen.values()),
                    "every event in both groups",
                )

    async def test_graceful_stop_leaves_the_unprocessed_to_the_group(
        self, open_bus: BusFactory
    ) -> None:
        events = pings(150)
        first_seen: set[UUID] = set()
        second_seen: set[UUID] = set()

        async def slow(event: DomainEvent) -> None:
            await asyncio.sleep(0.01)
            first_seen.add(event.event_id)

        async with open_bus(consumer_name="first") as first, open_bus() as publisher:
            first.subscribe(ContractPing, slow)
            async with consuming(first):
                await publisher.publish(events)
                await eventually(lambda: len(first_seen) >= 20, "the first consumer's progress")
            assert len(first_seen) < len(events), "stopped mid-stream"
            async with open_bus(consumer_name="second") as second:
                second.subscribe(ContractPing, lambda e: second_seen.add(e.event_id))
                async with consuming(second):
                    await eventually(
                        lambda: len(first_seen | second_seen) == len(events),
                        "the rest at the second consumer",
                    )
        assert second_seen - first_seen, "the second consumer did the rest"

    async def test_bad_messages_are_dead_lettered_and_the_consumer_goes_on(
        self, open_bus: BusFactory
    ) -> None:
        seen: list[DomainEvent] = []
        async with open_bus() as consumer, open_bus() as publisher:
            consumer.subscribe_to_all_events(seen.append)
            async with consuming(consumer):
                await open_bus.publish_raw(publisher, "garbage")
                await open_bus.publish_raw(publisher, "unknown_type")
                good = ContractPing(aggregate_id=uuid4())
                await publisher.publish([good])
                await eventually(lambda: bool(seen), "the good event after the bad ones")
                letters = await self._await_dead_letters(open_bus, consumer, 2)
                assert consumer.is_consuming
        assert [e.event_id for e in seen] == [good.event_id]
        assert all(letter.reason for letter in letters)
        unknown = [d for d in letters if d.event_type == UNKNOWN_EVENT_TYPE]
        assert len(unknown) == 1
        assert "unknown event type" in unknown[0].reason

    async def test_events_published_before_consuming_starts_are_delivered(
        self, open_bus: BusFactory
    ) -> None:
        # The tutorial's order: connect, subscribe, publish, and only then start consuming. A
        # connected bus of another group must get the events too, before it consumes.
        events = pings(5)
        seen: dict[str, list[UUID]] = {"own": [], "other": []}
        async with open_bus() as bus, open_bus(consumer_group="other") as other:
            bus.subscribe(ContractPing, lambda e: seen["own"].append(e.event_id))
            other.subscribe(ContractPing, lambda e: seen["other"].append(e.event_id))
            await bus.publish(events)
            async with consuming(bus), consuming(other):
                await eventually(
                    lambda: all(len(ids) >= len(events) for ids in seen.values()),
                    "the events published before consuming started, in both groups",
                )
        expected = {e.event_id for e in events}
        assert {group: set(ids) for group, ids in seen.items()} == {
            "own": expected,
            "other": expected,
        }

    async def test_publishing_needs_no_consumer(self, open_bus: BusFactory) -> None:
        async with open_bus() as publisher:
            await publisher.publish([])
            await publisher.publish(pings(3))
            assert publisher.get_stats_dict()["events_published"] == 3
            assert not publisher.is_consuming

    @staticmethod
    async def _await_dead_letters(
        open_bus: BusFactory, bus: ConsumingBus, count: int
    ) -> list[DeadLetter]:
        deadline = time.monotonic() + 20
        while True:
            letters = await open_bus.dead_letters(bus)
            if len(letters) >= count or time.monotonic() > deadline:
                assert len(letters) == count, letters
                return letters
            await asyncio.sleep(0.05)
