"""Event stores: the contract and its backends (drivers load only with their backend)."""

from __future__ import annotations

from typing import Any

from eventsource.stores._rules import CorruptEventError
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
    "AppendResult",
    "CommittedPage",
    "CorruptEventError",
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventsource.stores' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
