"""Event stores: the contract and its backends (drivers load only with their backend)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource._optional import lazy_attributes
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.interface import (
    AppendResult,
    CommittedPage,
    EventPublisher,
    EventStore,
    EventStream,
    ExpectedVersion,
    ReadDirection,
    ReadOptions,
    ReadResult,
    StoredEvent,
)

__all__ = [
    "DEFAULT_STRING_ID_FIELDS",
    "DEFAULT_UUID_FIELDS",
    "SQLITE_AVAILABLE",
    "AppendResult",
    "CommittedPage",
    "DefaultTypeConverter",
    "EventPublisher",
    "EventStore",
    "EventStream",
    "ExpectedVersion",
    "InMemoryEventStore",
    "PostgreSQLEventStore",
    "ReadDirection",
    "ReadOptions",
    "ReadResult",
    "SQLiteEventStore",
    "StoredEvent",
    "TypeConverter",
]

_LAZY = {
    "SQLiteEventStore": "eventsource.stores.sqlite",
    "SQLITE_AVAILABLE": "eventsource.stores.sqlite",
    "PostgreSQLEventStore": "eventsource.stores.postgresql",
    "TypeConverter": "eventsource.stores._codec",
    "DefaultTypeConverter": "eventsource.stores._codec",
    "DEFAULT_UUID_FIELDS": "eventsource.stores._codec",
    "DEFAULT_STRING_ID_FIELDS": "eventsource.stores._codec",
}


if TYPE_CHECKING:
    from eventsource.stores._codec import (
        DEFAULT_STRING_ID_FIELDS,
        DEFAULT_UUID_FIELDS,
        DefaultTypeConverter,
        TypeConverter,
    )
    from eventsource.stores.postgresql import PostgreSQLEventStore
    from eventsource.stores.sqlite import SQLITE_AVAILABLE, SQLiteEventStore
else:
    __getattr__ = lazy_attributes(__name__, _LAZY)
