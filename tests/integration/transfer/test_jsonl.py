"""JSON-Lines export and import: byte-for-byte round trips of payload and metadata on SQLite
and PostgreSQL, rows of an older shape exported as stored, resumable import, bad lines."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transfer_support import REGISTRY, ItemAdded, fresh_pg_store, seed, sqlite_store

from eventsource import InMemoryEventStore
from eventsource.exceptions import TransferError, TransferFileError
from eventsource.stores.interface import EventStore
from eventsource.transfer import copy_events, export_jsonl, import_jsonl

# A row as an older version of ItemAdded wrote it: another key order, spacing, an old field.
_OLD_PAYLOAD = (
    '{"sku": "old-1",  "event_type": "ItemAdded", "legacy_field": [1, 2], '
    '"event_id": "%s", "aggregate_id": "%s", "aggregate_type": "Cart"}'
)


async def _add_old_row_sqlite(path: Path) -> str:
    import sqlite3

    event_id, cart = uuid.uuid4(), uuid.uuid4()
    payload = _OLD_PAYLOAD % (event_id, cart)
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
            " timestamp, payload, created_at) VALUES (?, 'ItemAdded', ?, 'Cart', 1, ?, ?, ?)",
            (str(event_id), str(cart), "2020-01-02T03:04:05.000006+00:00", payload,
             "2020-01-02T03:04:05.000007+00:00"),
        )
    return payload


async def test_sqlite_round_trip_is_byte_for_byte_and_keeps_old_rows_as_stored(
    tmp_path: Path,
) -> None:
    async with sqlite_store(tmp_path / "a.db") as first:
        await seed(first, 300)
    old = await _add_old_row_sqlite(tmp_path / "a.db")
    async with sqlite_store(tmp_path / "a.db") as first:
        done = await export_jsonl(first, tmp_path / "a.jsonl", batch_size=64)
        assert done.events_read == await first.get_global_position()
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["payload"] == old  # not re-dumped
    async with sqlite_store(tmp_path / "b.db") as second:
        await import_jsonl(tmp_path / "a.jsonl", second, batch_size=50)
        await export_jsonl(second, tmp_path / "b.jsonl")
        assert [s.global_position async for s in second.read_all()][-1] == len(lines)
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


@pytest.fixture
async def second_pg_factory(pg_url: str) -> AsyncIterator[Any]:
    """A session factory on another fresh schema (the import's target)."""
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_url)
    await conn.execute(f"CREATE SCHEMA {name}")
    engine = create_async_engine(
        pg_url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": name}},
    )
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()
        await conn.execute(f"DROP SCHEMA {name} CASCADE")
        await conn.close()


@pytest.mark.postgresql
async def test_postgresql_round_trip_is_byte_for_byte(
    tmp_path: Path, pg_session_factory: Any, second_pg_factory: Any
) -> None:
    first, second = fresh_pg_store(pg_session_factory), fresh_pg_store(second_pg_factory)
    try:
        await seed(first, 300)
        await export_jsonl(first, tmp_path / "a.jsonl", batch_size=64)
        await import_jsonl(tmp_path / "a.jsonl", second, batch_size=50)
        await export_jsonl(second, tmp_path / "b.jsonl")
        assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
        # The id sequence moved past the imported positions: appends go on after them.
        cart = uuid.uuid4()
        done = await second.append_events(cart, "Cart", [ItemAdded(aggregate_id=cart, sku="z")], 0)
        assert done.global_position > await first.get_global_position()
        # PostgreSQL -> SQLite -> export: the same file again.
        async with sqlite_store(tmp_path / "c.db") as third:
            await import_jsonl(tmp_path / "a.jsonl", third)
            await export_jsonl(third, tmp_path / "c.jsonl")
        assert (tmp_path / "c.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    finally:
        await first.close()
        await second.close()


async def test_an_import_stopped_by_a_bad_line_resumes_after_its_last_batch(
    tmp_path: Path,
) -> None:
    async with sqlite_store(tmp_path / "a.db") as first:
        await seed(first, 200)
        await export_jsonl(first, tmp_path / "a.jsonl")
    good = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    broken = [*good[:130], "{not json\n", *good[130:]]
    (tmp_path / "broken.jsonl").write_text("".join(broken), encoding="utf-8")
    async with sqlite_store(tmp_path / "b.db") as second:
        with pytest.raises(TransferFileError, match="line 131") as caught:
            await import_jsonl(tmp_path / "broken.jsonl", second, batch_size=40)
        assert caught.value.line == 131
        assert await second.get_global_position() == json.loads(good[119])["position"]
        done = await import_jsonl(tmp_path / "a.jsonl", second, batch_size=40)
        assert done.read_this_run == len(good) - 120
        await export_jsonl(second, tmp_path / "b.jsonl")
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda row: [1, 2], "not an object"),
        (lambda row: {k: v for k, v in row.items() if k != "payload"}, "missing payload"),
        (lambda row: {**row, "version": "1"}, "version is '1', not a int"),
        (lambda row: {**row, "event_id": "nope"}, "event_id 'nope' is malformed"),
        (lambda row: {**row, "timestamp": "yesterday"}, "timestamp 'yesterday' is malformed"),
        (lambda row: {**row, "payload": "[1]"}, "payload '\\[1\\]' is malformed"),
        (lambda row: {**row, "position": 0}, "must be >= 1"),
    ],
)
async def test_a_malformed_line_is_named_and_nothing_of_its_batch_is_written(
    tmp_path: Path, change: Any, reason: str
) -> None:
    source = InMemoryEventStore(enable_tracing=False, event_registry=REGISTRY)
    await seed(source, 5)
    await export_jsonl(source, tmp_path / "a.jsonl")
    lines = (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()
    lines[1] = json.dumps(change(json.loads(lines[1])))
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with sqlite_store(tmp_path / "b.db") as target:
        with pytest.raises(TransferFileError, match=reason):
            await import_jsonl(tmp_path / "a.jsonl", target)
        assert await target.get_global_position() == 0


async def test_memory_stores_export_and_import_too(tmp_path: Path) -> None:
    source = InMemoryEventStore(enable_tracing=False, event_registry=REGISTRY)
    await seed(source, 60)
    await export_jsonl(source, tmp_path / "a.jsonl")
    target: EventStore = InMemoryEventStore(enable_tracing=False, event_registry=REGISTRY)
    await import_jsonl(tmp_path / "a.jsonl", target)
    assert [(s.event_id, s.stream_position) async for s in target.read_all()] == [
        (s.event_id, s.stream_position) async for s in source.read_all()
    ]


@pytest.fixture(
    name="store_factory",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)],
)
def store_factory_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Makes a durable store: a SQLite file, or a PostgreSQL store on a fresh schema."""
    if request.param == "sqlite":
        return lambda: sqlite_store(tmp_path / "target.db")
    factory = request.getfixturevalue("pg_session_factory")

    @asynccontextmanager
    async def postgresql() -> AsyncIterator[EventStore]:
        store = fresh_pg_store(factory)
        try:
            yield store
        finally:
            await store.close()

    return postgresql


async def test_importing_events_the_target_holds_is_a_typed_error_writing_nothing(
    tmp_path: Path, store_factory: Any
) -> None:
    async with store_factory() as target:
        await seed(target, 30)
        await export_jsonl(target, tmp_path / "a.jsonl")
        head = await target.get_global_position()
        with pytest.raises(TransferError, match="already holds an event of this batch"):
            await import_jsonl(tmp_path / "a.jsonl", target, job="again")
        assert await target.get_global_position() == head
        # A copy into a store holding the same event ids is refused the same way.
        with pytest.raises(TransferError, match="already holds"):
            await copy_events(target, target, job="onto-itself")
        assert await target.get_global_position() == head


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.text(max_size=40), min_size=1, max_size=6),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
)
def test_any_stored_payload_text_survives_export_and_import_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str], ascii_only: bool,
    indent: int | None,
) -> None:
    import sqlite3

    folder = tmp_path_factory.mktemp("prop")
    rows = []
    for number, text in enumerate(texts, start=1):
        event_id, cart = uuid.uuid4(), uuid.uuid4()
        payload = json.dumps({"event_id": str(event_id), "note": text, "n": number},
                             ensure_ascii=ascii_only, indent=indent)
        rows.append((str(event_id), str(cart), payload))

    async def run() -> None:
        async with sqlite_store(folder / "a.db"):
            pass
        with sqlite3.connect(folder / "a.db") as db:
            db.executemany(
                "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, version,"
                " timestamp, payload, created_at) VALUES (?, 'Noted', ?, 'Cart', 1,"
                " '2021-05-06T07:08:09.000010+00:00', ?, '2021-05-06T07:08:09.000011+00:00')",
                rows,
            )
        async with sqlite_store(folder / "a.db") as first:
            await export_jsonl(first, folder / "a.jsonl")
        async with sqlite_store(folder / "b.db") as second:
            await import_jsonl(folder / "a.jsonl", second)
            await export_jsonl(second, folder / "b.jsonl")

    asyncio.run(run())
    exported = (folder / "a.jsonl").read_bytes()
    assert (folder / "b.jsonl").read_bytes() == exported
    lines = exported.decode("utf-8").split("\n")[:-1]
    assert [json.loads(line)["payload"] for line in lines] == [row[2] for row in rows]
