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
from eventsource.bus.kafka import (
    KAFKA_AVAILABLE,
    KafkaEventBus,
    KafkaEventBusConfig,
    KafkaEventBusStats,
    KafkaNotAvailableError,
)
from eventsource.bus.memory import InMemoryEventBus
from eventsource.bus.nats import (
    NATS_AVAILABLE,
    NATSEventBus,
    NATSEventBusConfig,
    NATSEventBusStats,
    NATSNotAvailableError,
)
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
    "KAFKA_AVAILABLE",
    "NATS_AVAILABLE",
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
    "KafkaEventBus",
    "KafkaEventBusConfig",
    "KafkaEventBusStats",
    "KafkaNotAvailableError",
    "NATSEventBus",
    "NATSEventBusConfig",
    "NATSEventBusStats",
    "NATSNotAvailableError",
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
