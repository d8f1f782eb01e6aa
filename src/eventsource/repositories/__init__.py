"""Checkpoint, dead-letter and outbox repositories: protocols, in-memory versions, and the
SQLite and PostgreSQL ones (loaded on first use, so importing this needs no driver); and the
`OutboxRelay` that publishes an outbox."""

from typing import Any

from eventsource.repositories._json import EventSourceJSONEncoder, json_dumps, json_loads
from eventsource.repositories.checkpoint import (
    CheckpointData,
    CheckpointRepository,
    CheckpointRepositoryProtocol,
    InMemoryCheckpointRepository,
    LagMetrics,
)
from eventsource.repositories.dlq import (
    DLQEntry,
    DLQRepository,
    DLQRepositoryProtocol,
    DLQStats,
    InMemoryDLQRepository,
    ProjectionFailureCount,
)
from eventsource.repositories.outbox import (
    InMemoryOutboxRepository,
    OutboxEntry,
    OutboxRepository,
    OutboxRepositoryProtocol,
    OutboxStats,
    RelayLock,
    RelayOutbox,
)

__all__ = [
    "CheckpointData",
    "CheckpointRepository",
    "CheckpointRepositoryProtocol",
    "DLQEntry",
    "DLQRepository",
    "DLQRepositoryProtocol",
    "DLQStats",
    "EventSourceJSONEncoder",
    "InMemoryCheckpointRepository",
    "InMemoryDLQRepository",
    "InMemoryOutboxRepository",
    "LagMetrics",
    "OutboxEntry",
    "OutboxRelay",
    "OutboxRepository",
    "OutboxRepositoryProtocol",
    "OutboxStats",
    "PostgreSQLCheckpointRepository",
    "PostgreSQLDLQRepository",
    "PostgreSQLOutboxRepository",
    "ProjectionFailureCount",
    "RelayLock",
    "RelayOutbox",
    "RelayPassResult",
    "RelayStats",
    "SQLiteCheckpointRepository",
    "SQLiteDLQRepository",
    "SQLiteOutboxRepository",
    "json_dumps",
    "json_loads",
]

_LAZY = {
    "OutboxRelay": "eventsource.repositories.outbox_relay",
    "RelayPassResult": "eventsource.repositories.outbox_relay",
    "RelayStats": "eventsource.repositories.outbox_relay",
    "SQLiteCheckpointRepository": "eventsource.repositories.sqlite",
    "SQLiteDLQRepository": "eventsource.repositories.sqlite",
    "SQLiteOutboxRepository": "eventsource.repositories.sqlite",
    "PostgreSQLCheckpointRepository": "eventsource.repositories.postgresql",
    "PostgreSQLDLQRepository": "eventsource.repositories.postgresql",
    "PostgreSQLOutboxRepository": "eventsource.repositories.postgresql",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'eventsource.repositories' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
