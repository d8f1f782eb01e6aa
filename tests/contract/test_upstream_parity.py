"""Issue 20: eventsource-py 0.2.0 behaviour beyond the tutorials, on every backend it touches
(groups 1, 2, 4, 5 and 6 of the gap list; see docs/compatibility.md).

The expectations come from the upstream API reference; where it and the tutorial (API.md)
disagree, the tutorial wins and the test says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel
from test_repositories import _MODULES, _connection, open_repository
from test_snapshots import _checked, open_snapshot_store
from test_stores import open_store

from eventsource import AggregateRoot, DomainEvent, ExpectedVersion, register_event
from eventsource.snapshots import Snapshot, SnapshotStore
from eventsource.stores.interface import (
    EventStore,
    EventStream,
    ReadDirection,
    ReadOptions,
)

_PG = pytest.mark.postgresql


@pytest.fixture(params=["memory", "sqlite-file", pytest.param("postgresql", marks=_PG)])
def store_backend(request: pytest.FixtureRequest) -> str:
    """An event-store or snapshot-store backend (names as in test_stores and test_snapshots)."""
    return _checked(request)


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgresql", marks=_PG),
            pytest.param("postgresql-engine", marks=_PG)]
)
def repository_backend(request: pytest.FixtureRequest) -> str:
    """A repository backend (names as in test_repositories)."""
    return _checked(request)


@register_event
class ParityNoted(DomainEvent):
    event_type: str = "ParityNoted"
    aggregate_type: str = "Parity"
    note: str = ""


# -- group 1: checkpoint and DLQ repositories from their own modules ---------------------------


async def test_checkpoint_and_dlq_repositories_work_from_their_family_modules(
    repository_backend: str, tmp_path: Path
) -> None:
    """`from eventsource.repositories.checkpoint import SQLiteCheckpointRepository` (and the
    PostgreSQL and DLQ ones) give working repositories on the real database."""
    module, prefix = _MODULES[repository_backend.partition("-")[0]]
    checkpoints_cls = getattr(import_module("eventsource.repositories.checkpoint"),
                              f"{prefix}CheckpointRepository")
    dlq_cls = getattr(import_module("eventsource.repositories.dlq"), f"{prefix}DLQRepository")
    assert checkpoints_cls is getattr(import_module(module), checkpoints_cls.__name__)
    event_id = uuid4()
    async with _connection(repository_backend, tmp_path) as conn:
        checkpoints = checkpoints_cls() if conn is None else checkpoints_cls(conn)
        dlq = dlq_cls() if conn is None else dlq_cls(conn)
        await checkpoints.update_checkpoint("Parity", event_id, "ParityNoted")
        assert await checkpoints.get_checkpoint("Parity") == event_id
        await dlq.add_failed_event(event_id, "Parity", "ParityNoted", {}, ValueError("bad"))
        [entry] = await dlq.get_failed_events()
        assert (entry.event_id, entry.error_message) == (event_id, "bad")


# -- group 2: deprecated dict-style access on repository results ------------------------------

DEPRECATED = "dict-style access to .* is deprecated"


async def test_dlq_entries_still_answer_dict_style_access_with_a_warning(
    repository_backend: str, tmp_path: Path
) -> None:
    async with open_repository("dlq", repository_backend, tmp_path) as repo:
        event_id = uuid4()
        await repo.add_failed_event(event_id, "Parity", "ParityNoted", {}, ValueError("bad"))
        [entry] = await repo.get_failed_events()
    with pytest.warns(DeprecationWarning, match=r"entry\.error_message"):
        assert entry["error_message"] == "bad"
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert "projection_name" in entry
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert "no_such_field" not in entry
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert entry.get("event_id") == event_id
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert entry.get("no_such_field", "fallback") == "fallback"
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        keys = list(entry.keys())
    assert keys[:4] == ["id", "event_id", "projection_name", "event_type"]
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert dict(entry.items())["status"] == "failed"
    with (
        pytest.warns(DeprecationWarning, match=DEPRECATED),
        pytest.raises(KeyError, match="no_such_field"),
    ):
        entry["no_such_field"]


async def test_outbox_entries_still_answer_dict_style_access_with_a_warning(
    repository_backend: str, tmp_path: Path
) -> None:
    event = ParityNoted(aggregate_id=uuid4(), note="n")
    async with open_repository("outbox", repository_backend, tmp_path) as repo:
        await repo.add_event(event)
        [entry] = await repo.get_pending_events()
    with pytest.warns(DeprecationWarning, match=r"entry\.event_type"):
        assert entry["event_type"] == "ParityNoted"
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert entry.get("aggregate_id") == event.aggregate_id
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert "tenant_id" in entry
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert dict(entry.items())["status"] == "pending"
    with pytest.warns(DeprecationWarning, match=DEPRECATED), pytest.raises(KeyError):
        entry["payload"]


# -- group 4: what a custom EventStore subclass inherits ---------------------------------------


class Delegating(EventStore):
    """A store written for 0.2.0: only the four methods that release made abstract, here
    forwarded to a real store."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner

    async def append_events(
        self, aggregate_id: UUID, aggregate_type: str, events: Sequence[DomainEvent],
        expected_version: int,
    ) -> Any:
        return await self.inner.append_events(aggregate_id, aggregate_type, events,
                                              expected_version)

    async def get_events(
        self, aggregate_id: UUID, aggregate_type: str | None = None, from_version: int = 0,
        from_timestamp: datetime | None = None, to_timestamp: datetime | None = None,
    ) -> EventStream:
        return await self.inner.get_events(aggregate_id, aggregate_type, from_version,
                                           from_timestamp, to_timestamp)

    async def get_events_by_type(
        self, aggregate_type: str, tenant_id: UUID | None = None, from_timestamp: Any = None
    ) -> list[DomainEvent]:
        return await self.inner.get_events_by_type(aggregate_type, tenant_id, from_timestamp)

    async def event_exists(self, event_id: UUID) -> bool:
        return await self.inner.event_exists(event_id)


class DelegatingWithReadAll(Delegating):
    def read_all(self, options: ReadOptions | None = None) -> Any:
        return self.inner.read_all(options)


async def _five_events(store: EventStore) -> tuple[UUID, list[DomainEvent]]:
    aggregate_id = uuid4()
    events: list[DomainEvent] = [
        ParityNoted(aggregate_id=aggregate_id, note=str(n), aggregate_version=n)
        for n in range(1, 6)
    ]
    await store.append_events(aggregate_id, "Parity", events, ExpectedVersion.NO_STREAM)
    other = uuid4()  # another stream of the same id's neighbours, never read below
    await store.append_events(other, "Parity", [ParityNoted(aggregate_id=other)], 0)
    return aggregate_id, events


async def test_a_custom_store_reads_streams_through_its_get_events(
    store_backend: str, tmp_path: Path
) -> None:
    async with open_store(store_backend, tmp_path) as inner:
        store = Delegating(inner)  # instantiable: get_global_position is not abstract
        aggregate_id, events = await _five_events(store)
        stream_id = f"{aggregate_id}:Parity"

        forward = await store.read_stream(stream_id)
        assert [s.event.event_id for s in forward.events] == [e.event_id for e in events]
        assert [s.stream_position for s in forward.events] == [1, 2, 3, 4, 5]
        assert {s.stream_id for s in forward.events} == {stream_id}

        after_two = [s async for s in store.read_stream(stream_id, ReadOptions(from_position=2))]
        assert [s.stream_position for s in after_two] == [3, 4, 5]
        newest = await store.read_stream(
            str(aggregate_id), ReadOptions(direction=ReadDirection.BACKWARD, limit=2)
        )
        assert [s.stream_position for s in newest.events] == [5, 4]
        assert [s.event.note for s in newest.events] == ["5", "4"]
        assert (await store.read_stream(f"{uuid4()}:Parity")).events == []

        with pytest.raises(ValueError, match="not-a-uuid"):
            store.read_stream("not-a-uuid:Parity")


async def test_global_position_comes_from_read_all_when_a_custom_store_has_it(
    store_backend: str, tmp_path: Path
) -> None:
    async with open_store(store_backend, tmp_path) as inner:
        store = DelegatingWithReadAll(inner)
        assert await store.get_global_position() == 0
        await _five_events(store)
        assert await store.get_global_position() == await inner.get_global_position() == 6


async def test_global_position_without_read_all_names_what_is_missing(tmp_path: Path) -> None:
    async with open_store("sqlite-file", tmp_path) as inner:
        with pytest.raises(NotImplementedError, match=r"Delegating.*get_global_position.*read_all"):
            await Delegating(inner).get_global_position()


def test_event_stream_without_events_is_empty() -> None:
    stream = EventStream(aggregate_id=uuid4(), aggregate_type="Parity", events=None)
    assert stream.events == []
    assert stream.is_empty
    assert stream.latest_event is None


# -- group 5: snapshot strategies --------------------------------------------------------------


class ParityState(BaseModel):
    notes: list[str] = []


class ParityAggregate(AggregateRoot[ParityState]):
    aggregate_type = "Parity"
    schema_version = 3

    def _get_initial_state(self) -> ParityState:
        return ParityState()

    def _apply(self, event: DomainEvent) -> None:
        state = self._state or self._get_initial_state()
        self._state = ParityState(notes=[*state.notes, event.note])

    def note(self, text: str) -> None:
        self.apply_event(
            ParityNoted(aggregate_id=self.aggregate_id, note=text,
                        aggregate_version=self.get_next_version())
        )


def _aggregate_at(version: int) -> ParityAggregate:
    aggregate = ParityAggregate(uuid4())
    for n in range(version):
        aggregate.note(str(n))
    aggregate.mark_events_as_committed()
    return aggregate


@pytest.mark.parametrize(
    ("version", "saved", "expected"),
    [
        (100, 100, True),  # the upstream examples: at and past multiples of the threshold
        (200, 1, True),
        (1000, 1000, True),
        (0, 0, False),
        (99, 99, False),
        (150, 1, False),
        (150, 49, False),
        (150, 51, True),  # A4 (tutorial wins): the save carried the version across 100
        (16, 16, False),  # threshold 100: not reached
    ],
)
def test_threshold_strategy_snapshots_when_a_save_crosses_a_multiple(
    version: int, saved: int, expected: bool
) -> None:
    from eventsource.snapshots.strategies import (
        BackgroundSnapshotStrategy,
        ThresholdSnapshotStrategy,
    )

    aggregate = ParityAggregate(uuid4())
    aggregate._version = version
    for strategy in (ThresholdSnapshotStrategy(100), BackgroundSnapshotStrategy(threshold=100)):
        assert strategy.should_snapshot(aggregate, events_since_snapshot=saved) is expected


def test_strategies_without_a_threshold_never_snapshot() -> None:
    from eventsource.snapshots.strategies import NoSnapshotStrategy, ThresholdSnapshotStrategy

    aggregate = ParityAggregate(uuid4())
    aggregate._version = 100
    assert ThresholdSnapshotStrategy(threshold=None).should_snapshot(aggregate, 100) is False
    assert NoSnapshotStrategy().should_snapshot(aggregate, 100) is False
    assert NoSnapshotStrategy().threshold is None


def test_strategies_refuse_a_threshold_below_one_and_unknown_modes() -> None:
    from eventsource.snapshots.strategies import ThresholdSnapshotStrategy, create_snapshot_strategy

    with pytest.raises(ValueError, match="threshold must be >= 1, got 0"):
        ThresholdSnapshotStrategy(0)
    with pytest.raises(ValueError, match="'eager'"):
        create_snapshot_strategy("eager", 10)  # type: ignore[arg-type]


async def test_strategies_write_snapshots_to_the_store(
    store_backend: str, tmp_path: Path
) -> None:
    from eventsource.snapshots.strategies import (
        BackgroundSnapshotStrategy,
        NoSnapshotStrategy,
        SnapshotStrategy,
        ThresholdSnapshotStrategy,
        create_snapshot_strategy,
    )

    async with open_snapshot_store(store_backend, tmp_path) as store:
        sync = create_snapshot_strategy("sync", 10)
        assert isinstance(sync, ThresholdSnapshotStrategy)
        assert isinstance(sync, SnapshotStrategy)
        first = _aggregate_at(10)
        taken = await sync.execute_snapshot(first, store, "Parity")
        assert taken is not None
        stored = await store.get_snapshot(first.aggregate_id, "Parity")
        assert stored is not None
        assert (stored.version, stored.schema_version) == (10, 3)
        assert stored.state == {"notes": [str(n) for n in range(10)]}

        background = create_snapshot_strategy("background", 10)
        assert isinstance(background, BackgroundSnapshotStrategy)
        second = _aggregate_at(20)
        assert await background.execute_snapshot(second, store, "Parity") is None
        assert await background.await_pending() == 1
        assert background.pending_count == 0
        assert (await store.get_snapshot(second.aggregate_id, "Parity")).version == 20  # type: ignore[union-attr]

        manual = create_snapshot_strategy("manual", 10)
        assert isinstance(manual, NoSnapshotStrategy)
        third = _aggregate_at(30)
        assert await manual.execute_snapshot(third, store, "Parity") is None
        assert await store.get_snapshot(third.aggregate_id, "Parity") is None


class _Failing(SnapshotStore):
    async def save_snapshot(self, snapshot: Snapshot) -> None:
        raise OSError("disk full")

    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        return None

    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return False


async def test_strategy_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from eventsource.snapshots.strategies import (
        BackgroundSnapshotStrategy,
        ThresholdSnapshotStrategy,
    )

    aggregate = _aggregate_at(10)
    assert await ThresholdSnapshotStrategy(10).execute_snapshot(aggregate, _Failing(), "P") is None
    background = BackgroundSnapshotStrategy(10)
    await background.execute_snapshot(aggregate, _Failing(), "P")
    assert await background.await_pending() == 1
    failures = [r for r in caplog.records if r.exc_info and "disk full" in str(r.exc_info[1])]
    assert len(failures) == 2


# -- group 6: the migration helpers and the SQLite snapshot indexes ----------------------------

SNAPSHOT_INDEXES = {
    "idx_snapshots_aggregate_lookup",
    "idx_snapshots_aggregate_type",
    "idx_snapshots_schema_version",
    "idx_snapshots_created_at",
}


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'snapshots'"
        ).fetchall()
    return {name for (name,) in rows}


async def test_the_sqlite_snapshot_schema_has_the_documented_indexes(tmp_path: Path) -> None:
    from eventsource.migrations import get_schema
    from eventsource.snapshots import SQLiteSnapshotStore

    fresh = tmp_path / "fresh.db"
    with sqlite3.connect(fresh) as conn:
        conn.executescript(get_schema("snapshots", "sqlite"))
        conn.executescript(get_schema("snapshots", "sqlite"))  # idempotent
        conn.execute(
            "INSERT INTO snapshots (aggregate_id, aggregate_type, version, state, created_at) "
            "VALUES ('a', 'T', 1, '{}', 'now')"
        )
        with pytest.raises(sqlite3.IntegrityError):  # still one snapshot per aggregate
            conn.execute(
                "INSERT INTO snapshots (aggregate_id, aggregate_type, version, state, created_at)"
                " VALUES ('a', 'T', 2, '{}', 'now')"
            )
    assert _indexes(fresh) >= SNAPSHOT_INDEXES

    # A table made beforehand from the documented columns gets them when the store opens it.
    older = tmp_path / "older.db"
    with sqlite3.connect(older) as conn:
        conn.execute(
            "CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, aggregate_id TEXT, "
            "aggregate_type TEXT, version INTEGER, schema_version INTEGER DEFAULT 1, state TEXT, "
            "created_at TEXT, UNIQUE(aggregate_id, aggregate_type))"
        )
    async with SQLiteSnapshotStore(str(older)) as store:
        aggregate = _aggregate_at(2)
        snapshot = Snapshot(aggregate.aggregate_id, "Parity", 2, {}, 1, datetime.now())
        await store.save_snapshot(snapshot)
        await store.save_snapshot(snapshot)  # upsert, on the documented UNIQUE constraint
        assert await store.delete_snapshots_by_type("Parity") == 1
    assert _indexes(older) >= SNAPSHOT_INDEXES


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_every_listed_schema_has_its_template(dialect: str) -> None:
    from eventsource.migrations import get_schema, get_template_path, list_schemas

    for name in list_schemas(dialect):  # type: ignore[arg-type]
        assert get_template_path(name, dialect).read_text() == get_schema(name, dialect)  # type: ignore[arg-type]


def test_schema_helpers_name_what_is_unknown() -> None:
    from eventsource.migrations import get_template_path, list_schemas

    with pytest.raises(ValueError, match=r"'events_partitioned' for sqlite; known: checkpoints"):
        get_template_path("events_partitioned", "sqlite")
    with pytest.raises(ValueError, match="'mysql'"):
        list_schemas("mysql")  # type: ignore[arg-type]

