"""Projections: read models built from events."""

from eventsource.projections.base import (
    CheckpointTrackingProjection,
    DatabaseProjection,
    DeclarativeProjection,
    Projection,
)
from eventsource.projections.coordinator import (
    EventHandlerBase,
    ProjectionCoordinator,
    ProjectionRegistry,
    SubscriberRegistry,
    SyncProjection,
)
from eventsource.projections.decorators import get_handled_event_type, handles, is_event_handler
from eventsource.projections.dlq_manager import ProjectionDLQManager
from eventsource.projections.retry import (
    ExponentialBackoffRetryPolicy,
    FilteredRetryPolicy,
    NoRetryPolicy,
    RetryPolicy,
)
from eventsource.protocols import (
    AsyncEventHandler,
    EventHandler,
    EventSubscriber,
    SyncEventHandler,
)

__all__ = [
    "AsyncEventHandler",
    "CheckpointTrackingProjection",
    "DatabaseProjection",
    "DeclarativeProjection",
    "EventHandler",
    "EventHandlerBase",
    "EventSubscriber",
    "ExponentialBackoffRetryPolicy",
    "FilteredRetryPolicy",
    "NoRetryPolicy",
    "Projection",
    "ProjectionCoordinator",
    "ProjectionDLQManager",
    "ProjectionRegistry",
    "RetryPolicy",
    "SubscriberRegistry",
    "SyncEventHandler",
    "SyncProjection",
    "get_handled_event_type",
    "handles",
    "is_event_handler",
]
