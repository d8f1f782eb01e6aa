"""Subscriptions: catch up from the store, then follow live events (manager in progress)."""

from eventsource.subscriptions.retry import (
    TRANSIENT_EXCEPTIONS,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
    RetryableOperation,
    RetryConfig,
    RetryError,
    RetryStats,
    calculate_backoff,
    is_retryable_exception,
    retry_async,
)

__all__ = [
    "TRANSIENT_EXCEPTIONS",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerOpenError",
    "CircuitState",
    "RetryConfig",
    "RetryError",
    "RetryStats",
    "RetryableOperation",
    "calculate_backoff",
    "is_retryable_exception",
    "retry_async",
]
