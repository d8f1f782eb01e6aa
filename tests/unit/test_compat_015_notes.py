"""The claims of docs/compatibility.md's "Notes for eventsource-py 0.15 users" that code can check.

Each name the section's table gives as this package's counterpart imports from the module the
table names; the 0.15 modules it says are absent are absent; and the behaviours it describes as
different here (SQLite tables, duplicate event ids, `event_type`, the sync facade under a running
loop) behave as written, on an SQLite file.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from uuid import uuid4

import pytest

from eventsource import DomainEvent, SQLiteEventStore, StoreNotConnectedError, register_event
from eventsource.stores.records import ExpectedVersion, stream_id_of
from eventsource.sync import SyncEventStore

PAGE = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"

# (module, name) for every counterpart the table names.
COUNTERPARTS = [
    ("eventsource", name) for name in (
        "PostgreSQLEventStore", "InMemoryEventStore", "SQLiteEventStore", "ExpectedVersion",
        "OptimisticLockError", "SubscriptionManager", "StoreNotConnectedError", "register_event",
        "tenant_scope", "AggregateRoot", "DeclarativeAggregate", "DatabaseProjection",
    )
] + [
    ("eventsource.stores.records", "stream_id_of"),
    ("eventsource.stores.records", "ExpectedVersion"),
    ("eventsource.stores.records", "ReadOptions"),
    ("eventsource.stores.records", "CommittedPage"),
    ("eventsource.stores.postgresql", "PostgreSQLEventStore"),
    ("eventsource.stores.in_memory", "InMemoryEventStore"),
    ("eventsource.stores.sqlite", "SQLiteEventStore"),
    ("eventsource.subscriptions", "SubscriptionManager"),
    ("eventsource.sync", "SyncEventStore"),
    ("eventsource.sync", "SyncAggregateRepository"),
    ("eventsource.sync", "SyncSnapshotStore"),
    ("eventsource.sync", "SyncSubscriptionRunner"),
    ("eventsource.sync", "PortalThreadError"),
    ("eventsource.testing", "AggregateScenario"),
    ("eventsource.testing", "build_stream"),
    ("eventsource.testing", "event_factory"),
    ("eventsource.testing.contract", "EventStoreContract"),
    ("eventsource.testing.contract", "StoreFactory"),
    ("eventsource.dcb", "Query"),
    ("eventsource.dcb", "AppendCondition"),
    ("eventsource.dcb", "decide"),
    ("eventsource.transfer", "copy_events"),
    ("eventsource.transfer", "export_jsonl"),
    ("eventsource.scaling", "LeaderLease"),
]
STORE_METHODS = (
    "append_events", "get_events", "get_events_by_type", "event_exists", "get_stream_version",
    "read_stream", "read_all", "read_committed", "get_global_position", "head_cursor",
    "initialize", "close",
)
SYNC_METHODS = (
    "append_events", "read_stream", "read_all", "get_stream_version", "event_exists",
    "read_committed",
)
ABSENT_015_MODULES = (
    "eventsource.domain", "eventsource.ports", "eventsource.application", "eventsource.adapters",
)


@register_event
class NotesPlaced(DomainEvent):
    event_type: str = "NotesPlaced"
    aggregate_type: str = "Order"
    total: int


def test_the_section_is_on_the_page() -> None:
    assert "## Notes for eventsource-py 0.15 users" in PAGE.read_text()


@pytest.mark.parametrize(("module", "name"), COUNTERPARTS)
def test_counterpart_imports_from_the_module_named(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


@pytest.mark.parametrize("method", STORE_METHODS)
def test_sqlite_store_has_the_method_the_table_maps_to(method: str) -> None:
    assert callable(getattr(SQLiteEventStore, method))


@pytest.mark.parametrize("method", SYNC_METHODS)
def test_sync_facade_has_the_async_method_names(method: str) -> None:
    assert callable(getattr(SyncEventStore, method))


@pytest.mark.parametrize("module", ABSENT_015_MODULES)
def test_015_module_is_absent(module: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(module)


def test_expected_version_constants_are_the_integers_given() -> None:
    assert (ExpectedVersion.NO_STREAM, ExpectedVersion.ANY, ExpectedVersion.STREAM_EXISTS) == (
        0, -1, -2,
    )


def test_event_type_is_not_derived_from_the_class_name() -> None:
    class Undeclared(DomainEvent):
        aggregate_type: str = "Order"

    with pytest.raises(ValueError, match="event_type"):  # pydantic's ValidationError
        Undeclared.model_validate({"aggregate_id": uuid4()})


async def test_async_with_connects_but_initialize_creates_the_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "orders.db")
    order = uuid4()
    async with SQLiteEventStore(path) as store:
        with pytest.raises(StoreNotConnectedError, match="initialize"):
            await store.append_events(
                order, "Order", [NotesPlaced(aggregate_id=order, total=1)], 0
            )
        await store.initialize()
        await store.append_events(order, "Order", [NotesPlaced(aggregate_id=order, total=1)], 0)
        assert await store.get_stream_version(order, "Order") == 1


async def test_duplicate_event_id_is_skipped_not_refused(tmp_path: Path) -> None:
    order = uuid4()
    placed = NotesPlaced(aggregate_id=order, total=1)
    async with SQLiteEventStore(str(tmp_path / "orders.db")) as store:
        await store.initialize()
        await store.append_events(order, "Order", [placed], ExpectedVersion.NO_STREAM)
        await store.append_events(order, "Order", [placed], ExpectedVersion.ANY)
        stream = await store.read_stream(stream_id_of(order, "Order"))
        assert [stored.event_id for stored in stream.events] == [placed.event_id]


async def test_sync_facade_works_from_a_thread_with_a_running_loop(tmp_path: Path) -> None:
    # 0.15's adapter raises RuntimeError here; the facade runs the call on its own loop thread.
    order = uuid4()
    with SyncEventStore.sqlite(tmp_path / "orders.db") as store:
        store.append_events(order, "Order", [NotesPlaced(aggregate_id=order, total=3)], 0)
        asyncio.get_running_loop()  # this test body runs on a running loop
        assert store.get_stream_version(order, "Order") == 1
