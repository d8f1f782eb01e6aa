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
from eventsource.bus.rabbitmq import (
    RABBITMQ_AVAILABLE,
    RabbitMQEventBus,
    RabbitMQEventBusConfig,
    RabbitMQEventBusStats,
    RabbitMQNotAvailableError,
)
from eventsource.bus.redis import (
    REDIS_AVAILABLE,
    RedisEventBus,
    RedisEventBusConfig,
    RedisEventBusStats,
    RedisNotAvailableError,
)

__all__ = [
    "RABBITMQ_AVAILABLE",
    "REDIS_AVAILABLE",
    "AsyncEventHandler",
    "EventBus",
    "EventHandler",
    "EventHandlerFunc",
    "EventSubscriber",
    "FlexibleEventHandler",
    "FlexibleEventSubscriber",
    "InMemoryEventBus",
    "RabbitMQEventBus",
    "RabbitMQEventBusConfig",
    "RabbitMQEventBusStats",
    "RabbitMQNotAvailableError",
    "RedisEventBus",
    "RedisEventBusConfig",
    "RedisEventBusStats",
    "RedisNotAvailableError",
    "SyncEventHandler",
]
