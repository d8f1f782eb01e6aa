"""Event classes and process entry points shared by the SQLite tests (spawned children import
this module by name, so everything here is top-level)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

from eventsource import DomainEvent, OptimisticLockError, register_event
from eventsource.stores.sqlite import SQLiteEventStore


@register_event
class SqliteItemAdded(DomainEvent):
    event_type: str = "SqliteItemAdded"
    aggregate_type: str = "SqliteCart"
    sku: str
    quantity: int = 1


def item(aggregate_id: UUID, sku: str = "sku", **fields: Any) -> SqliteItemAdded:
    return SqliteItemAdded(aggregate_id=aggregate_id, sku=sku, **fields)


async def race_for_versions(
    path: str, stream: UUID, writer: int, wins_wanted: int, inline: bool = True
) -> tuple[list[tuple[int, str]], list[tuple[int, int]]]:
    """Append one event at a time with the exact expected version until `wins_wanted` appends
    succeeded; a conflict's `actual_version` is trusted as the next expected version.
    (Inline stores of one process never interleave: tasks racing in one process need
    `inline=False`; processes race either way.)

    Returns (wins as (new_version, event_id), conflicts as (expected, actual)).
    """
    wins: list[tuple[int, str]] = []
    conflicts: list[tuple[int, int]] = []
    async with SQLiteEventStore(path, inline=inline) as store:
        expected = await store.get_stream_version(stream, "SqliteCart")
        while len(wins) < wins_wanted:
            event = item(stream, f"w{writer}")
            try:
                result = await store.append_events(stream, "SqliteCart", [event], expected)
            except OptimisticLockError as exc:
                conflicts.append((exc.expected_version, exc.actual_version))
                expected = exc.actual_version
                await asyncio.sleep(0)
            else:
                wins.append((result.new_version, str(event.event_id)))
                expected = result.new_version
    return wins, conflicts


def race_process(
    path: str, stream: str, writer: int, wins_wanted: int, ready: Any, start: Any, results: Any
) -> None:
    """A spawned writer: report ready, wait for the start signal, race, send the outcome."""
    ready.put(writer)
    start.wait(30)
    outcome = asyncio.run(race_for_versions(path, UUID(stream), writer, wins_wanted))
    results.put((writer, outcome))


def append_process(path: str, stream: str, count: int) -> None:
    """A spawned writer that stores `count` events on `stream` and exits."""

    async def run() -> None:
        async with SQLiteEventStore(path) as store:
            await store.initialize()
            sid = UUID(stream)
            await store.append_events(
                sid, "SqliteCart", [item(sid, f"p{i}") for i in range(count)], 0
            )

    asyncio.run(run())


def big_batch_process(path: str, stream: str, count: int, ready: Any) -> None:
    """A spawned writer that appends `count` events in ONE call (the parent kills it mid-way)."""

    async def run() -> None:
        async with SQLiteEventStore(path) as store:
            sid = UUID(stream)
            events = [item(sid, f"big{i}") for i in range(count)]
            ready.put("appending")
            await store.append_events(sid, "SqliteCart", events, 0)
            ready.put("done")

    asyncio.run(run())


def new_stream() -> UUID:
    return uuid4()
