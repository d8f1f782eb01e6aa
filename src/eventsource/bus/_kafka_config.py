"""`KafkaEventBusConfig` and `KafkaEventBusStats`: driver-free, constructible and
validated without aiokafka."""

from __future__ import annotations

import logging
import ssl
from dataclasses import asdict, dataclass
from typing import Any

from eventsource._retry import Backoff
from eventsource.bus._broker import default_consumer_name
from eventsource.bus._stats import BrokerStats, BrokerTimes

__all__ = ["KafkaEventBusConfig", "KafkaEventBusStats"]

# The config is public API of eventsource.bus.kafka: its warnings go out under that name.
logger = logging.getLogger("eventsource.bus.kafka")

SECURITY_PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
SECRETS = ("sasl_password", "ssl_keyfile")
REDACTED = "***"
SASL_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})
ACKS = frozenset({"all", "0", "1", 0, 1, -1})
COMPRESSIONS = frozenset({None, "gzip", "snappy", "lz4", "zstd"})
OFFSET_RESETS = frozenset({"earliest", "latest"})


@dataclass
class KafkaEventBusConfig:
    """Settings of a `KafkaEventBus`; `consumer_name=None` gets a unique one. `ValueError` on
    an unknown security protocol, incomplete SASL settings or a lone certificate/key file; a
    logged warning for settings that send data or credentials unprotected."""

    bootstrap_servers: str = "localhost:9092"
    topic_prefix: str = "events"
    consumer_group: str = "default"
    consumer_name: str | None = None
    acks: str | int = "all"
    compression_type: str | None = "gzip"
    batch_size: int = 16384  # bytes per partition batch
    linger_ms: int = 5
    auto_offset_reset: str = "earliest"
    session_timeout_ms: int = 30000
    heartbeat_interval_ms: int = 10000
    max_poll_interval_ms: int = 300000
    max_retries: int = 3
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    retry_jitter: float = 0.1
    enable_dlq: bool = True
    dlq_topic_suffix: str = ".dlq"
    dlq_consumer_group: str | None = None
    dlq_max_replay_attempts: int = 3
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    enable_tracing: bool = True
    enable_metrics: bool = True
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.consumer_name is None:
            self.consumer_name = default_consumer_name()
        self._check_security()
        if self.acks not in ACKS:
            raise ValueError(f"acks must be one of 'all', 0, 1, -1, not {self.acks!r}")
        if self.compression_type not in COMPRESSIONS:
            raise ValueError(f"unknown compression_type {self.compression_type!r}")
        if self.auto_offset_reset not in OFFSET_RESETS:
            raise ValueError("auto_offset_reset must be 'earliest' or 'latest'")
        if self.max_retries < 1:
            raise ValueError("max_retries must be at least 1")
        if self.batch_size < 1 or self.linger_ms < 0:
            raise ValueError("batch_size must be positive and linger_ms not negative")
        if not 0 <= self.retry_jitter <= 1:
            raise ValueError("retry_jitter must be between 0 and 1")
        if self.retry_base_delay < 0 or self.retry_max_delay < self.retry_base_delay:
            raise ValueError("need 0 <= retry_base_delay <= retry_max_delay")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be below session_timeout_ms")
        for warning in self._security_warnings():
            logger.warning(warning)

    def _security_warnings(self) -> list[str]:
        warnings = []
        if self.security_protocol == "PLAINTEXT":
            warnings.append("Kafka security_protocol PLAINTEXT: unencrypted, unauthenticated")
        if self.security_protocol == "SASL_PLAINTEXT":
            warnings.append(
                "Kafka security_protocol SASL_PLAINTEXT: the SASL credentials travel unencrypted"
            )
        if self.uses_ssl and not self.ssl_check_hostname:
            warnings.append(
                "Kafka ssl_check_hostname=False: any certificate the CA signed is accepted for "
                "any broker (open to impersonation)"
            )
        return warnings

    def _check_security(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"security_protocol must be one of {sorted(SECURITY_PROTOCOLS)}, "
                f"not {self.security_protocol!r}"
            )
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ValueError(
                    f"{self.security_protocol} needs sasl_mechanism in {sorted(SASL_MECHANISMS)}"
                )
            if not self.sasl_username or not self.sasl_password:
                raise ValueError(f"{self.security_protocol} needs sasl_username and sasl_password")
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together")

    @property
    def topic_name(self) -> str:
        return f"{self.topic_prefix}.stream"

    @property
    def dlq_topic_name(self) -> str:
        return self.topic_name + self.dlq_topic_suffix

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in {"SSL", "SASL_SSL"}

    @property
    def client_id(self) -> str:
        return f"eventsource-{self.consumer_name}"

    def get_producer_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's `AIOKafkaProducer`, security included."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "acks": self.acks if self.acks == "all" else int(self.acks),
            "compression_type": self.compression_type,
            "max_batch_size": self.batch_size,
            "linger_ms": self.linger_ms,
            **self._security_options(),
        }

    def get_consumer_config(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's `AIOKafkaConsumer` in `consumer_group`. Offsets
        are committed by the bus after handling, never automatically (at least once)."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "group_id": self.consumer_group,
            "client_id": self.client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": self.auto_offset_reset,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_poll_interval_ms": self.max_poll_interval_ms,
            **self._security_options(),
        }

    def _security_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        context = self.create_ssl_context()
        if context is not None:
            options["ssl_context"] = context  # aiokafka takes TLS settings only as a context
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def create_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for SSL and SASL_SSL (None otherwise): the broker's certificate
        checked against `ssl_cafile` (else the system's CAs), `ssl_certfile`/`ssl_keyfile`
        presented for mutual TLS. `ssl_check_hostname=False` skips the host-name check only;
        the certificate is still verified. The files are read now (`FileNotFoundError`,
        `ssl.SSLError` when unreadable)."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile is not None:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        context.check_hostname = self.ssl_check_hostname
        return context

    def get_sanitized_config(self) -> dict[str, Any]:
        """Every setting, with `sasl_password` and `ssl_keyfile` shown as "***" when set: safe
        to log."""
        settings = asdict(self)
        for name in SECRETS:
            if settings[name] is not None:
                settings[name] = REDACTED
        return settings

    def retry_delay(self, attempt: int) -> float:
        """The pause after failed attempt `attempt` (1-based): doubling, capped, +-jitter."""
        backoff = Backoff(self.retry_base_delay, self.retry_max_delay, jitter=self.retry_jitter)
        return backoff.after(attempt)


@dataclass
class _KafkaCounts(BrokerStats):
    rebalance_count: int = 0


@dataclass
class KafkaEventBusStats(BrokerTimes, _KafkaCounts):
    """Counters of one `KafkaEventBus`; `get_stats_dict()` returns exactly these 12 keys."""
