"""Checkpoint, dead-letter and outbox repositories (protocols and in-memory versions)."""

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

__all__ = [
    "CheckpointData",
    "CheckpointRepository",
    "CheckpointRepositoryProtocol",
    "DLQEntry",
    "DLQRepository",
    "DLQStats",
    "InMemoryCheckpointRepository",
    "InMemoryDLQRepository",
    "LagMetrics",
    "ProjectionFailureCount",
]
