"""Retention on a real SQLite file and the real PostgreSQL: rules applied by stream reads,
soft delete, tombstones, archiving, the system events, and bad input (issue 18, items 4, 6)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from _retention_support import (
    T0,
    Noted,
    append,
    read,
    sqlite_store,
    store_fixture,  # noqa: F401  (the `store` fixture)
)

from eventsource.exceptions import AggregateNotFoundError, StreamTombstonedError
from eventsource.retention import (
    PurgeJob,
    RetentionRule,
    RetentionRuleError,
    StreamMetadataChanged,
    StreamRetention,
    StreamState,
    reading,
    system_stream_type,
)
from eventsource.stores.interface import EventStore
from eventsource.stores.records import ExpectedVersion
from eventsource.stores.sqlite import SQLiteEventStore


async def test_max_count_keeps_the_newest_and_appends_continue(store: EventStore) -> None:
    stream = uuid4()
    await append(store, stream, 5)
    await StreamRetention(store).set_rule(stream, "Note", RetentionRule(max_count=2))
    assert await read(store, stream) == ([4, 5], 5)
    result = await store.append_events(stream, "Note", [Noted(aggregate_id=stream, text="6")], 5)
    assert result.new_version == 6
    assert await read(store, stream) == ([5, 6], 6)
    stored = [event async for event in store.read_stream(f"{stream}:Note")]
    assert [event.stream_position for event in stored] == [5, 6]


async def test_max_age_by_an_injected_clock(store: EventStore) -> None:
    stream = uuid4()
    await append(store, stream, 5, at=T0)  # 00:00 .. 00:04
    await StreamRetention(store).set_rule(
        stream, "Note", RetentionRule(max_age=timedelta(minutes=2))
    )
    with reading(clock=lambda: T0 + timedelta(minutes=5)):  # keeps 00:03 and 00:04
        assert await read(store, stream) == ([4, 5], 5)
    with reading(clock=lambda: T0 + timedelta(hours=1)):  # everything aged out
        assert await read(store, stream) == ([], 5)
    with reading(clock=lambda: T0):
        assert await read(store, stream) == ([1, 2, 3, 4, 5], 5)


async def test_soft_delete_reads_nothing_and_the_next_append_continues(
    store: EventStore,
) -> None:
    stream = uuid4()
    await append(store, stream, 3)
    meta = await StreamRetention(store).soft_delete(stream, "Note")
    assert meta.state is StreamState.SOFT_DELETED
    assert await read(store, stream) == ([], 3)
    assert await store.get_stream_version(stream, "Note") == 3
    await append(store, stream, 1, start=3)
    assert await read(store, stream) == ([4], 4)


async def test_tombstone_refuses_reads_and_appends_forever(store: EventStore) -> None:
    stream = uuid4()
    await append(store, stream, 2)
    retention = StreamRetention(store)
    await retention.tombstone(stream, "Note")
    for _ in range(2):
        with pytest.raises(StreamTombstonedError) as refused:
            await store.get_events(stream, "Note")
        assert refused.value.aggregate_id == stream
        with pytest.raises(StreamTombstonedError, match=str(stream)):
            await store.append_events(stream, "Note", [Noted(aggregate_id=stream)], 2)
        with pytest.raises(StreamTombstonedError):
            await store.append_events(
                stream, "Note", [Noted(aggregate_id=stream)], ExpectedVersion.ANY
            )
        with pytest.raises(StreamTombstonedError):
            await store.read_stream(f"{stream}:Note")
        with pytest.raises(StreamTombstonedError):
            await retention.archive(stream, "Note")
        await PurgeJob(store).run()  # gone from the table: still refused
    assert [e async for e in store.read_all() if e.aggregate_id == stream and
            e.aggregate_type == "Note"] == []
    other = uuid4()  # other streams are untouched
    await append(store, other, 1)
    assert await read(store, other) == ([1], 1)


async def test_archive_hides_until_asked(store: EventStore) -> None:
    stream = uuid4()
    await append(store, stream, 2)
    retention = StreamRetention(store)
    await retention.archive(stream, "Note")
    assert await read(store, stream) == ([], 2)
    with reading(include_archived=True):
        assert await read(store, stream) == ([1, 2], 2)
    await PurgeJob(store).run()  # archived streams are never purged
    await retention.unarchive(stream, "Note")
    assert await read(store, stream) == ([1, 2], 2)


async def test_each_change_is_a_system_event_in_the_global_log(store: EventStore) -> None:
    stream = uuid4()
    await append(store, stream, 3)
    retention = StreamRetention(store)
    await retention.set_rule(stream, "Note", RetentionRule(max_count=2))
    await retention.archive(stream, "Note")
    await retention.unarchive(stream, "Note")
    await retention.soft_delete(stream, "Note")
    await retention.tombstone(stream, "Note")
    log = [stored.event async for stored in store.read_all()]
    changes = [event for event in log if isinstance(event, StreamMetadataChanged)]
    assert [(c.change, c.state) for c in changes] == [
        ("rule_set", "live"), ("archived", "archived"), ("unarchived", "live"),
        ("soft_deleted", "soft_deleted"), ("tombstoned", "tombstoned"),
    ]
    assert {c.aggregate_id for c in changes} == {stream}
    assert {c.aggregate_type for c in changes} == {system_stream_type("Note")}
    # The global log is not filtered by retention: the stream's events are all still there.
    assert sum(1 for event in log if isinstance(event, Noted)) == 3


async def test_the_purge_deletes_what_reads_hide_and_keeps_the_head(store: EventStore) -> None:
    kept, deleted, tomb = uuid4(), uuid4(), uuid4()
    for stream in (kept, deleted, tomb):
        await append(store, stream, 5)
    retention = StreamRetention(store)
    await retention.set_rule(kept, "Note", RetentionRule(max_count=2))
    await retention.soft_delete(deleted, "Note")
    await retention.tombstone(tomb, "Note")
    first = await PurgeJob(store, batch_size=2).run()
    assert (first.events, first.streams) == (3 + 4 + 5, 3)
    again = await PurgeJob(store).run()  # idempotent
    assert again.events == 0
    left = [(e.aggregate_id, e.stream_position) async for e in store.read_all()
            if e.aggregate_type == "Note"]
    assert sorted(left, key=str) == sorted(
        [(kept, 4), (kept, 5), (deleted, 5)], key=str
    )
    assert await read(store, kept) == ([4, 5], 5)
    await append(store, deleted, 1, start=5)  # versions continue after the purge
    assert await read(store, deleted) == ([6], 6)


@pytest.mark.parametrize("bad", [
    {"max_count": -1}, {"max_count": 0}, {"truncate_before": -3},
    {"max_age": timedelta(seconds=-1)}, {"max_age": timedelta(0)}, {"max_count": 1.5},
])
def test_bad_rules_are_refused_when_made(bad: dict[str, Any]) -> None:
    with pytest.raises(RetentionRuleError):
        RetentionRule(**bad)


async def test_unknown_streams_and_bad_arguments_are_refused(store: EventStore) -> None:
    retention = StreamRetention(store)
    unknown = uuid4()
    for call in (
        retention.set_rule(unknown, "Note", RetentionRule(max_count=1)),
        retention.soft_delete(unknown, "Note"),
        retention.tombstone(unknown, "Note"),
        retention.archive(unknown, "Note"),
        retention.get(unknown, "Note"),
    ):
        with pytest.raises(AggregateNotFoundError):
            await call
    stream = uuid4()
    await append(store, stream, 2)
    with pytest.raises(RetentionRuleError, match="truncate_before=9"):
        await retention.set_rule(stream, "Note", RetentionRule(truncate_before=9))
    with pytest.raises(RetentionRuleError):
        await retention.truncate_before(stream, "Note", -1)
    with pytest.raises(RetentionRuleError, match="not archived"):
        await retention.unarchive(stream, "Note")
    with pytest.raises(RetentionRuleError):
        PurgeJob(store, batch_size=0)
    with pytest.raises(RetentionRuleError):
        PurgeJob(store, guarded=["projection"])  # no checkpoints to read the guard from
    assert await read(store, stream) == ([1, 2], 2)  # nothing was changed


async def test_a_store_opened_without_initialize_gets_the_tables_from_the_api(
    tmp_path: Path,
) -> None:
    """A file made from the shipped `events` schema alone reads as before; the retention API
    creates its tables, and reads apply them from then on."""
    import sqlite3

    from eventsource.migrations import get_schema

    path = tmp_path / "events.db"
    with sqlite3.connect(path) as db:
        db.executescript(get_schema("events", "sqlite"))
    async with SQLiteEventStore(str(path)) as store:
        store.event_registry.register(Noted)
        stream = uuid4()
        await append(store, stream, 3)
        assert await read(store, stream) == ([1, 2, 3], 3)
        await StreamRetention(store).set_rule(stream, "Note", RetentionRule(max_count=1))
        assert await read(store, stream) == ([3], 3)


async def test_the_append_check_exists_from_the_first_tombstone_on(tmp_path: Path) -> None:
    """Appends pay for the tombstone check only once a stream was tombstoned."""
    import sqlite3

    path = tmp_path / "events.db"

    def triggers() -> list[str]:
        with sqlite3.connect(path) as db:
            return [name for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            )]

    async with sqlite_store(path) as store:
        stream = uuid4()
        await append(store, stream, 1)
        await StreamRetention(store).soft_delete(stream, "Note")
        assert triggers() == []
        await StreamRetention(store).tombstone(stream, "Note")
        assert triggers() == ["events_refuse_tombstoned"]
