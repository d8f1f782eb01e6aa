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
from eventsource.bus.redis import (
    REDIS_AVAILABLE,
    RedisEventBus,
    RedisEventBusConfig,
    RedisEventBusStats,
    RedisNotAvailableError,
)

__all__ = [
    "REDIS_AVAILABLE",
    "AsyncEventHandler",
    "EventBus",
    "EventHandler",
    "EventHandlerFunc",
    "EventSubscriber",
    "FlexibleEventHandler",
    "FlexibleEventSubscriber",
    "InMemoryEventBus",
    "RedisEventBus",
    "RedisEventBusConfig",
    "RedisEventBusStats",
    "RedisNotAvailableError",
    "SyncEventHandler",
]
