"""How a subscription reads: where it starts, page size, checkpoints, timeouts, retries."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from eventsource._checks import at_least, greater_than, within_unit
from eventsource.events.base import DomainEvent
from eventsource.subscriptions.retry import CircuitBreakerConfig, RetryConfig

__all__ = [
    "CheckpointStrategy",
    "CorruptEventPolicy",
    "StartPosition",
    "SubscriptionConfig",
    "create_catch_up_config",
    "create_live_only_config",
]

StartPosition = Literal["beginning", "end", "checkpoint"] | int
_NAMED_STARTS = ("beginning", "end", "checkpoint")


class CheckpointStrategy(Enum):
    """When a subscription saves its checkpoint: after every event, after every page, or every few
    seconds."""

    EVERY_EVENT = "every_event"
    EVERY_BATCH = "every_batch"
    PERIODIC = "periodic"


class CorruptEventPolicy(Enum):
    """What a subscription does with a stored row the store cannot turn into an event.

    DEAD_LETTER keeps the row (raw payload and error) in the manager's DLQ and reads on past it,
    its health degraded; without a DLQ to keep it in, it halts instead. HALT stops the
    subscription at the row (state ERROR), its checkpoint just before it.
    """

    DEAD_LETTER = "dead_letter"
    HALT = "halt"


@dataclass(frozen=True)
class SubscriptionConfig:
    """One subscription's settings; invalid values raise `ValueError` at construction."""

    start_from: StartPosition = "checkpoint"
    batch_size: int = 100
    max_in_flight: int = 1000
    backpressure_threshold: float = 0.8
    checkpoint_strategy: CheckpointStrategy = CheckpointStrategy.EVERY_BATCH
    checkpoint_interval_seconds: float = 5.0
    processing_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    event_types: tuple[type[DomainEvent], ...] | None = None
    aggregate_types: tuple[str, ...] | None = None
    continue_on_error: bool = True
    max_retries: int = 5
    initial_retry_delay: float = 1.0
    max_retry_delay: float = 60.0
    retry_exponential_base: float = 2.0
    retry_jitter: float = 0.1
    circuit_breaker_enabled: bool = True
    circuit_breaker_failure_threshold: int = 5
    circuit_breaker_recovery_timeout: float = 30.0
    on_corrupt_event: CorruptEventPolicy = CorruptEventPolicy.DEAD_LETTER

    def __post_init__(self) -> None:
        if isinstance(self.checkpoint_strategy, str):
            # Tutorials pass the enum's value ("every_batch"); frozen, so set it through object.
            object.__setattr__(
                self, "checkpoint_strategy", CheckpointStrategy(self.checkpoint_strategy)
            )
        if not isinstance(self.on_corrupt_event, CorruptEventPolicy):
            values = tuple(policy.value for policy in CorruptEventPolicy)
            if self.on_corrupt_event not in values:
                raise ValueError(
                    f"on_corrupt_event must be one of {values}, got {self.on_corrupt_event!r}"
                )
            object.__setattr__(
                self, "on_corrupt_event", CorruptEventPolicy(self.on_corrupt_event)
            )
        if self.event_types is not None and not isinstance(self.event_types, tuple):
            object.__setattr__(self, "event_types", tuple(self.event_types))
        if self.aggregate_types is not None and not isinstance(self.aggregate_types, tuple):
            object.__setattr__(self, "aggregate_types", tuple(self.aggregate_types))
        self._check_start()
        self._check_limits()
        # The helpers build (and so validate) the retry and breaker settings.
        self.get_retry_config()
        self.get_circuit_breaker_config()

    def _check_start(self) -> None:
        start = self.start_from
        if isinstance(start, bool) or not isinstance(start, int | str):
            raise ValueError(  # noqa: TRY004 - invalid config values raise ValueError, as documented
                f"start_from must be {_NAMED_STARTS} or an int, got {start!r}"
            )
        if isinstance(start, str) and start not in _NAMED_STARTS:
            raise ValueError(f"start_from must be one of {_NAMED_STARTS} or an int, got {start!r}")
        if isinstance(start, int) and start < 0:
            raise ValueError(f"start_from must be >= 0, got {start}")

    def _check_limits(self) -> None:
        at_least("batch_size", self.batch_size, 1)
        at_least("max_in_flight", self.max_in_flight, 1)
        for name in (
            "checkpoint_interval_seconds",
            "processing_timeout",
            "shutdown_timeout",
            "circuit_breaker_recovery_timeout",
        ):
            greater_than(name, getattr(self, name), 0)
        for name in ("backpressure_threshold", "retry_jitter"):
            within_unit(name, getattr(self, name))

    def get_retry_config(self) -> RetryConfig:
        """The retry settings as a `RetryConfig`."""
        return RetryConfig(
            max_retries=self.max_retries,
            initial_delay=self.initial_retry_delay,
            max_delay=self.max_retry_delay,
            exponential_base=self.retry_exponential_base,
            jitter=self.retry_jitter,
        )

    def get_circuit_breaker_config(self) -> CircuitBreakerConfig:
        """The circuit-breaker settings as a `CircuitBreakerConfig`."""
        return CircuitBreakerConfig(
            failure_threshold=self.circuit_breaker_failure_threshold,
            recovery_timeout=self.circuit_breaker_recovery_timeout,
        )


def create_catch_up_config(
    batch_size: int = 1000, checkpoint_every_batch: bool = True
) -> SubscriptionConfig:
    """A config for catching up in large pages, from the checkpoint (a restart resumes where
    the last run stopped; a subscription without a checkpoint starts at the beginning)."""
    return SubscriptionConfig(
        start_from="checkpoint",
        batch_size=batch_size,
        checkpoint_strategy=(
            CheckpointStrategy.EVERY_BATCH
            if checkpoint_every_batch
            else CheckpointStrategy.PERIODIC
        ),
    )


def create_live_only_config() -> SubscriptionConfig:
    """A config that ignores history, follows only new events and checkpoints each one."""
    return SubscriptionConfig(
        start_from="end", batch_size=100, checkpoint_strategy=CheckpointStrategy.EVERY_EVENT
    )
