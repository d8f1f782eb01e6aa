"""Retry policies for projections: how often a failing event is retried, and how far apart."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from eventsource.subscriptions.retry import TRANSIENT_EXCEPTIONS, RetryConfig

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "TRANSIENT_EXCEPTIONS",
    "ExponentialBackoffRetryPolicy",
    "FilteredRetryPolicy",
    "NoRetryPolicy",
    "RetryConfig",
    "RetryPolicy",
]


@runtime_checkable
class RetryPolicy(Protocol):
    """Decides whether attempt `attempt` (0-based) of a failing event is retried."""

    @property
    def max_retries(self) -> int: ...

    def get_backoff(self, attempt: int) -> float: ...

    def should_retry(self, attempt: int, error: BaseException) -> bool: ...


class ExponentialBackoffRetryPolicy:
    """Retry up to `max_retries` times, waiting 2, 4, 8 … seconds by default."""

    def __init__(self, config: RetryConfig | None = None) -> None:
        self._config = config or RetryConfig(
            max_retries=3, initial_delay=2.0, max_delay=60.0, exponential_base=2.0, jitter=0.0
        )

    @property
    def config(self) -> RetryConfig:
        return self._config

    @property
    def max_retries(self) -> int:
        return self._config.max_retries

    def get_backoff(self, attempt: int) -> float:
        return self._config.backoff.delay(attempt)

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        return attempt < self._config.max_retries


class NoRetryPolicy:
    """Never retry."""

    @property
    def max_retries(self) -> int:
        return 0

    def get_backoff(self, attempt: int) -> float:
        return 0.0

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        return False


class FilteredRetryPolicy:
    """Retry only errors of the given types, and only while the base policy agrees."""

    def __init__(
        self,
        base_policy: RetryPolicy,
        retryable_exceptions: tuple[type[BaseException], ...] = TRANSIENT_EXCEPTIONS,
    ) -> None:
        self.base_policy = base_policy
        self.retryable_exceptions = retryable_exceptions

    @property
    def max_retries(self) -> int:
        return self.base_policy.max_retries

    def get_backoff(self, attempt: int) -> float:
        return self.base_policy.get_backoff(attempt)

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        return isinstance(error, self.retryable_exceptions) and self.base_policy.should_retry(
            attempt, error
        )


DEFAULT_RETRY_POLICY: RetryPolicy = ExponentialBackoffRetryPolicy()
