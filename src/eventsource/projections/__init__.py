"""Projections: read models built from events."""

from eventsource.projections.base import (
    CheckpointTrackingProjection,
    DatabaseProjection,
    DeclarativeProjection,
    Projection,
)
from eventsource.projections.decorators import get_handled_event_type, handles, is_event_handler
from eventsource.projections.dlq_manager import ProjectionDLQManager
from eventsource.projections.retry import (
    ExponentialBackoffRetryPolicy,
    FilteredRetryPolicy,
    NoRetryPolicy,
    RetryPolicy,
)
from eventsource.protocols import EventHandler, EventSubscriber, SyncEventHandler

__all__ = [
    "CheckpointTrackingProjection",
    "DatabaseProjection",
    "DeclarativeProjection",
    "EventHandler",
    "EventSubscriber",
    "ExponentialBackoffRetryPolicy",
    "FilteredRetryPolicy",
    "NoRetryPolicy",
    "Projection",
    "ProjectionDLQManager",
    "RetryPolicy",
    "SyncEventHandler",
    "get_handled_event_type",
    "handles",
    "is_event_handler",
]
