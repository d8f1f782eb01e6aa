"""Event stores: the contract and its backends (drivers load only with their backend)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsource._optional import lazy_attributes
from eventsource.exceptions import CorruptEventError
from eventsource.stores import interface
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.interface import *  # noqa: F403 - re-exported whole

__all__ = [  # noqa: PLE0604
    *interface.__all__,
    "CorruptEventError",
    "DEFAULT_STRING_ID_FIELDS",
    "DEFAULT_UUID_FIELDS",
    "SQLITE_AVAILABLE",
    "DefaultTypeConverter",
    "InMemoryEventStore",
    "PostgreSQLEventStore",
    "SQLiteEventStore",
    "TypeConverter",
]

_LAZY = {
    "SQLiteEventStore": "eventsource.stores.sqlite",
    "SQLITE_AVAILABLE": "eventsource.stores.sqlite",
    "PostgreSQLEventStore": "eventsource.stores.postgresql",
    "TypeConverter": "eventsource.stores.type_converter",
    "DefaultTypeConverter": "eventsource.stores.type_converter",
    "DEFAULT_UUID_FIELDS": "eventsource.stores.type_converter",
    "DEFAULT_STRING_ID_FIELDS": "eventsource.stores.type_converter",
}


if TYPE_CHECKING:
    from eventsource.stores.postgresql import PostgreSQLEventStore
    from eventsource.stores.sqlite import SQLITE_AVAILABLE, SQLiteEventStore
    from eventsource.stores.type_converter import (
        DEFAULT_STRING_ID_FIELDS,
        DEFAULT_UUID_FIELDS,
        DefaultTypeConverter,
        TypeConverter,
    )
else:
    __getattr__ = lazy_attributes(__name__, _LAZY)
