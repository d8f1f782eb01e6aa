"""`RedisEventBusConfig` and `RedisEventBusStats`: driver-free, constructible without redis."""

from __future__ import annotations

from dataclasses import dataclass

from eventsource.bus._broker import default_consumer_name
from eventsource.bus._stats import BrokerStats, DeliveryCounts

__all__ = ["RedisEventBusConfig", "RedisEventBusStats"]


@dataclass
class RedisEventBusConfig:
    """Settings of a `RedisEventBus`; `consumer_name=None` gets a unique one."""

    redis_url: str = "redis://localhost:6379"
    stream_prefix: str = "events"
    consumer_group: str = "default"
    consumer_name: str | None = None
    batch_size: int = 100
    block_ms: int = 5000
    max_retries: int = 3
    pending_idle_ms: int = 60000
    enable_dlq: bool = True
    dlq_stream_suffix: str = "_dlq"
    socket_timeout: float = 5.0
    socket_connect_timeout: float = 5.0
    enable_tracing: bool = True
    retry_key_prefix: str = "retry"
    retry_key_expiry_seconds: int = 86400
    single_connection_client: bool = False

    def __post_init__(self) -> None:
        if self.consumer_name is None:
            self.consumer_name = default_consumer_name()

    @property
    def stream_name(self) -> str:
        return f"{self.stream_prefix}:stream"

    @property
    def dlq_stream_name(self) -> str:
        return self.stream_name + self.dlq_stream_suffix

    def get_retry_key(self, message_id: str) -> str:
        """The key counting the failures of one message in this group (deleted once the message
        is settled). Under the stream prefix, so it is cleaned up with the stream; the group is
        part of it because each group retries the message on its own."""
        return f"{self.stream_prefix}:{self.retry_key_prefix}:{self.consumer_group}:{message_id}"


@dataclass
class _Recovered(DeliveryCounts):
    messages_recovered: int = 0


@dataclass
class RedisEventBusStats(BrokerStats, _Recovered):
    """Counters of one `RedisEventBus`; `get_stats_dict()` returns exactly these keys."""
