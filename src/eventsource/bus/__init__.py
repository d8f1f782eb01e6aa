"""Event buses: in-process now; brokers (Redis, RabbitMQ, Kafka, NATS) in their own modules."""

from eventsource.bus.interface import (
    AsyncEventHandler,
    EventBus,
    EventHandler,
    EventHandlerFunc,
    EventSubscriber,
    FlexibleEventHandler,
    FlexibleEventSubscriber,
    SyncEventHandler,
)
from eventsource.bus.memory import InMemoryEventBus

__all__ = [
    "AsyncEventHandler",
    "EventBus",
    "EventHandler",
    "EventHandlerFunc",
    "EventSubscriber",
    "FlexibleEventHandler",
    "FlexibleEventSubscriber",
    "InMemoryEventBus",
    "SyncEventHandler",
]
