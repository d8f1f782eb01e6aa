"""`NATSEventBusConfig`, `NATSEventBusStats` and subject naming: driver-free, constructible
without nats-py."""

from __future__ import annotations

import re
from dataclasses import dataclass

from eventsource._retry import Backoff
from eventsource.bus._broker import default_consumer_name
from eventsource.bus._stats import BrokerStats, DeliveryCounts

__all__ = ["NATSEventBusConfig", "NATSEventBusStats", "header_text", "subject_token"]

_NOT_IN_TOKEN = re.compile(r"[.*>\s/\\]+")  # subject separators, wildcards, path characters


def subject_token(text: str) -> str:
    """`text` as one subject token or JetStream name: separators and wildcards become `_`."""
    return _NOT_IN_TOKEN.sub("_", text) or "_"


def header_text(reason: str) -> str:
    """A reason fit for a message header: one line (headers end at a line break)."""
    return " ".join(reason.split())


@dataclass
class NATSEventBusConfig:
    """Settings of a `NATSEventBus`; `consumer_name=None` gets a unique one.

    Events go to the JetStream stream `stream_name` on subjects
    `<subject_prefix>.<aggregate_type>.<event_type>`; each consumer group is one durable pull
    consumer (`durable_name`). Times are in seconds.
    """

    servers: str | list[str] = "nats://localhost:4222"
    subject_prefix: str = "events"
    stream_name: str | None = None
    consumer_group: str = "default"
    consumer_name: str | None = None
    batch_size: int = 100
    fetch_timeout: float = 1.0
    ack_wait: float = 30.0
    max_ack_pending: int = 10_000
    max_retries: int = 3
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    enable_dlq: bool = True
    dlq_suffix: str = "_dlq"
    storage: str = "file"
    max_age: float = 0.0
    duplicate_window: float = 120.0
    publish_chunk_size: int = 1000
    publish_timeout: float = 5.0
    publish_attempts: int = 12
    connect_timeout: float = 2.0
    reconnect_time_wait: float = 0.5
    user: str | None = None
    password: str | None = None
    token: str | None = None
    enable_tracing: bool = True

    def __post_init__(self) -> None:
        if self.consumer_name is None:
            self.consumer_name = default_consumer_name()
        if self.stream_name is None:
            self.stream_name = subject_token(self.subject_prefix).upper()
        if subject_token(self.stream_name) != self.stream_name:
            raise ValueError(f"stream_name {self.stream_name!r} may not hold . * > / or spaces")
        if not self.subject_prefix or any(
            part != subject_token(part) for part in self.subjects_root
        ):
            raise ValueError(f"subject_prefix {self.subject_prefix!r} is not a valid subject")
        if self.storage not in {"file", "memory"}:
            raise ValueError(f"storage must be 'file' or 'memory', not {self.storage!r}")
        for name in ("batch_size", "max_ack_pending", "max_retries", "publish_chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("fetch_timeout", "ack_wait", "publish_timeout", "duplicate_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def subjects_root(self) -> list[str]:
        return self.subject_prefix.split(".")

    @property
    def subjects(self) -> str:
        """The stream's subjects: everything under the prefix."""
        return f"{self.subject_prefix}.>"

    def subject_for(self, aggregate_type: str, event_type: str) -> str:
        return f"{self.subject_prefix}.{subject_token(aggregate_type)}.{subject_token(event_type)}"

    @property
    def durable_name(self) -> str:
        """The group's durable consumer: the group's consumers share its messages."""
        return subject_token(self.consumer_group)

    @property
    def dlq_stream_name(self) -> str:
        return f"{self.stream_name}{subject_token(self.dlq_suffix).upper()}"

    @property
    def dlq_subject_prefix(self) -> str:
        return f"{self.subject_prefix}{subject_token(self.dlq_suffix)}"

    @property
    def dlq_subject(self) -> str:
        """Where this group's dead letters go (one subject per group)."""
        return f"{self.dlq_subject_prefix}.{self.durable_name}"

    def retry_delay(self, deliveries: int) -> float:
        """The pause before redelivery after `deliveries` failed attempts: doubling, capped."""
        return Backoff(self.retry_base_delay, self.retry_max_delay).after(deliveries)


@dataclass
class _Redelivered(DeliveryCounts):
    messages_redelivered: int = 0


@dataclass
class NATSEventBusStats(BrokerStats, _Redelivered):
    """Counters of one `NATSEventBus`; `get_stats_dict()` returns exactly these keys."""
