"""Checkpoint, dead-letter and outbox repositories (protocols and in-memory versions)."""

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
)

__all__ = [
    "CheckpointData",
    "CheckpointRepository",
    "CheckpointRepositoryProtocol",
    "DLQEntry",
    "DLQRepository",
    "DLQStats",
    "EventSourceJSONEncoder",
    "InMemoryCheckpointRepository",
    "InMemoryDLQRepository",
    "InMemoryOutboxRepository",
    "LagMetrics",
    "OutboxEntry",
    "OutboxRepository",
    "OutboxRepositoryProtocol",
    "OutboxStats",
    "ProjectionFailureCount",
    "json_dumps",
    "json_loads",
]
