"""Checkpoint, dead-letter and outbox repositories: protocols, in-memory versions, and the
SQLite and PostgreSQL ones (loaded on first use, so importing this needs no driver); and the
`OutboxRelay` that publishes an outbox.

`checkpoint`, `dlq` and `outbox` are the public import paths; their code lives in the private
`_checkpoint`, `_dlq` and `_outbox`, which the SQL backends import, so the public modules can
also offer those backends (typed, loaded on first use) without an import cycle."""

from typing import TYPE_CHECKING

from eventsource._optional import lazy_attributes
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


if TYPE_CHECKING:
    from eventsource.repositories.outbox_relay import OutboxRelay, RelayPassResult, RelayStats
    from eventsource.repositories.postgresql import (
        PostgreSQLCheckpointRepository,
        PostgreSQLDLQRepository,
        PostgreSQLOutboxRepository,
    )
    from eventsource.repositories.sqlite import (
        SQLiteCheckpointRepository,
        SQLiteDLQRepository,
        SQLiteOutboxRepository,
    )
else:
    __getattr__ = lazy_attributes(__name__, _LAZY)
