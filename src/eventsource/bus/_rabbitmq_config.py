"""`RabbitMQEventBusConfig`, its stats and result types: driver-free, constructible without
aio-pika."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Any, Literal

from eventsource._retry import Backoff
from eventsource.bus._broker import default_consumer_name
from eventsource.bus._stats import BrokerStats, BrokerTimes
from eventsource.exceptions import EventBusError

__all__ = [
    "BatchPublishError",
    "DLQMessage",
    "HealthCheckResult",
    "QueueInfo",
    "RabbitMQEventBusConfig",
    "RabbitMQEventBusStats",
    "ShutdownError",
]

EXCHANGE_TYPES = frozenset({"topic", "direct", "fanout", "headers"})


@dataclass
class RabbitMQEventBusConfig:
    """Settings of a `RabbitMQEventBus`; `consumer_name=None` gets a unique one."""

    rabbitmq_url: str = "amqp://guest:guest@localhost:5672/"
    exchange_name: str = "events"
    exchange_type: str = "topic"
    consumer_group: str = "default"
    consumer_name: str | None = None
    prefetch_count: int = 10
    max_retries: int = 3
    enable_dlq: bool = True
    dlq_exchange_suffix: str = "_dlq"
    dlq_message_ttl: int | None = None
    dlq_max_length: int | None = None
    durable: bool = True
    auto_delete: bool = False
    reconnect_delay: float = 1.0
    max_reconnect_delay: float = 60.0
    heartbeat: int = 60
    enable_tracing: bool = True
    ssl_options: dict[str, Any] | None = None
    ssl_context: ssl.SSLContext | None = None
    verify_ssl: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    retry_jitter: float = 0.1
    shutdown_timeout: float = 30.0
    routing_key_pattern: str | None = None
    batch_size: int = 100
    max_concurrent_publishes: int = 10

    def __post_init__(self) -> None:
        kind = self.exchange_type.lower() if isinstance(self.exchange_type, str) else None
        if kind is None or kind not in EXCHANGE_TYPES:
            raise ValueError(
                f"exchange_type must be one of {sorted(EXCHANGE_TYPES)} (any case), "
                f"not {self.exchange_type!r}"
            )
        self.exchange_type = kind  # AMQP names exchange types in lower case
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.consumer_name is None:
            self.consumer_name = default_consumer_name()

    @property
    def queue_name(self) -> str:
        return f"{self.exchange_name}.{self.consumer_group}"

    @property
    def dlq_exchange_name(self) -> str:
        return self.exchange_name + self.dlq_exchange_suffix

    @property
    def dlq_queue_name(self) -> str:
        return self.queue_name + ".dlq"

    @property
    def retry_queue_name(self) -> str:
        """Where failed messages wait out their back-off before returning to `queue_name`."""
        return self.queue_name + ".retry"

    def get_effective_routing_key(self) -> str:
        """The key binding the group's queue: the pattern, else what the exchange type needs."""
        if self.routing_key_pattern is not None:
            return self.routing_key_pattern
        if self.exchange_type == "topic":
            return "#"
        if self.exchange_type == "direct":
            return self.queue_name
        return ""

    def retry_delay(self, failures: int) -> float:
        """Seconds before the next attempt after `failures` failures: exponential, capped,
        with +/- `retry_jitter` spread so failed messages do not return in lockstep."""
        backoff = Backoff(self.retry_base_delay, self.retry_max_delay, jitter=self.retry_jitter)
        return backoff.after(failures)

    def build_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for `amqps://`: the given one, else one from the files, else None."""
        if self.ssl_context is not None:
            return self.ssl_context
        if self.ca_file is None and self.cert_file is None and self.verify_ssl:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        if not self.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass
class _RabbitMQCounts(BrokerStats):
    publish_confirms: int = 0
    publish_returns: int = 0
    batch_publishes: int = 0
    batch_events_published: int = 0
    batch_partial_failures: int = 0


@dataclass
class RabbitMQEventBusStats(BrokerTimes, _RabbitMQCounts):
    """Counters of one `RabbitMQEventBus`."""


@dataclass
class QueueInfo:
    """A queue as the broker reports it."""

    name: str
    message_count: int
    consumer_count: int
    state: Literal["running", "idle", "unknown", "error"] = "unknown"
    error: str | None = None


@dataclass
class HealthCheckResult:
    """The bus's view of its connection, channel, queue and dead-letter queue."""

    healthy: bool
    connection_status: str
    channel_status: str
    queue_status: str
    dlq_status: str | None = None
    error: str | None = None
    details: dict[str, Any] | None = None


@dataclass
class DLQMessage:
    """A dead letter: the original message plus why and after how many failures."""

    message_id: str | None
    routing_key: str | None
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    event_type: str | None = None
    dlq_reason: str | None = None
    dlq_error_type: str | None = None
    dlq_retry_count: int = 0
    dlq_timestamp: str | None = None
    original_routing_key: str | None = None


class ShutdownError(EventBusError):
    """The bus was shut down: it publishes and consumes no more (create a new one)."""

    def __init__(self, message: str = "Event bus has been shut down") -> None:
        super().__init__(message)


class BatchPublishError(EventBusError):
    """Some events of a `publish_batch()` were not published. `results` holds the counts
    (`total`, `published`, `failed`, `chunks`), `errors` why each failed chunk failed."""

    def __init__(
        self,
        message: str,
        results: dict[str, int] | None = None,
        errors: list[Exception] | None = None,
    ) -> None:
        super().__init__(message)
        self.results = results or {"total": 0, "published": 0, "failed": 0, "chunks": 0}
        self.errors = errors or []
