"""Retry with exponential backoff (the policy of `eventsource._retry`, configured), and a circuit
breaker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from eventsource._checks import at_least, greater_than, within_unit
from eventsource._retry import Backoff, retry
from eventsource.types import JSON

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

logger = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
    OSError,
)


@dataclass(frozen=True)
class RetryConfig:
    """How often and how far apart to retry."""

    max_retries: int = 5
    initial_delay: float = 1.0
    max_delay: float = 60.0
    exponential_base: float = 2.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        at_least("max_retries", self.max_retries, 0)
        greater_than("initial_delay", self.initial_delay, 0)
        if self.max_delay <= 0 or self.max_delay < self.initial_delay:
            raise ValueError(
                f"max_delay must be > 0 and >= initial_delay ({self.initial_delay}), "
                f"got {self.max_delay}"
            )
        greater_than("exponential_base", self.exponential_base, 1)
        within_unit("jitter", self.jitter)

    @property
    def backoff(self) -> Backoff:
        """These settings as the package's backoff policy."""
        return Backoff(self.initial_delay, self.max_delay, self.exponential_base, self.jitter)


def calculate_backoff(attempt: int, config: RetryConfig) -> float:
    """`min(initial * base**attempt, max)` give or take `jitter` of itself; never negative."""
    return config.backoff.delay(attempt)


def is_retryable_exception(
    error: BaseException,
    retryable_exceptions: tuple[type[BaseException], ...] = TRANSIENT_EXCEPTIONS,
) -> bool:
    """True if `error` is one of the transient kinds."""
    return isinstance(error, retryable_exceptions)


class RetryError(Exception):
    """Every attempt failed."""

    def __init__(self, message: str, attempts: int, last_error: BaseException | None) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(message)


@dataclass
class RetryStats:
    """Counters of one retrying operation: calls, outcomes, attempts, time spent waiting."""

    attempts: int = 0
    successes: int = 0
    failures: int = 0
    total_delay: float = 0.0
    last_error: str | None = None

    @property
    def total_delay_seconds(self) -> float:
        """Seconds spent waiting between attempts, all calls together (0.2.0's name)."""
        return self.total_delay

    def to_dict(self) -> JSON:
        """The counters as plain JSON values."""
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "failures": self.failures,
            "total_delay_seconds": self.total_delay,
            "last_error": self.last_error,
        }


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    config: RetryConfig | None = None,
    retryable_exceptions: tuple[type[BaseException], ...] = TRANSIENT_EXCEPTIONS,
    operation_name: str = "operation",
) -> T:
    """Run `operation`, retrying transient failures; RetryError when attempts run out."""
    config = config or RetryConfig()
    attempts = config.max_retries + 1

    def log(attempt: int, error: BaseException, delay: float) -> None:
        logger.warning(
            "%s failed (attempt %d/%d): %s; retrying in %.2fs",
            operation_name,
            attempt + 1,
            attempts,
            error,
            delay,
        )

    try:
        return await retry(
            operation,
            attempts=attempts,
            backoff=config.backoff,
            retry_on=retryable_exceptions,
            on_retry=log,
        )
    except retryable_exceptions as last:
        raise RetryError(
            f"{operation_name} failed after {attempts} attempts: {last}", attempts, last
        ) from last


class RetryableOperation:
    """`retry_async` bound to a config, with stats and, optionally, a circuit breaker.

    Each attempt goes through `circuit_breaker` when one is given: an open breaker refuses the
    call with `CircuitBreakerOpenError`, which is not retried.
    """

    def __init__(
        self,
        config: RetryConfig | None = None,
        name: str = "operation",
        circuit_breaker: CircuitBreaker | None = None,
        retryable_exceptions: tuple[type[BaseException], ...] = TRANSIENT_EXCEPTIONS,
    ) -> None:
        self.config = config or RetryConfig()
        self.name = name
        self.circuit_breaker = circuit_breaker
        self.retryable_exceptions = retryable_exceptions
        self.stats = RetryStats()

    async def execute(
        self, operation: Callable[[], Awaitable[T]], operation_name: str | None = None
    ) -> T:
        """Run `operation` until it succeeds or attempts run out (RetryError, chained from the
        last failure); a failure that is not transient is raised at once."""
        name = operation_name or self.name
        attempts = self.config.max_retries + 1
        breaker = self.circuit_breaker
        for attempt in range(attempts):
            self.stats.attempts += 1
            try:
                result = await (breaker.execute(operation) if breaker else operation())
            except self.retryable_exceptions as error:
                self.stats.last_error = str(error)
                if attempt + 1 == attempts:
                    self.stats.failures += 1
                    raise RetryError(
                        f"{name} failed after {attempts} attempts: {error}", attempts, error
                    ) from error
                delay = self.config.backoff.delay(attempt)
                logger.warning("%s failed (attempt %d/%d): %s; retrying in %.2fs",
                               name, attempt + 1, attempts, error, delay)
                self.stats.total_delay += delay
                await asyncio.sleep(delay)
            except Exception as error:
                self.stats.failures += 1
                self.stats.last_error = str(error)
                raise
            else:
                self.stats.successes += 1
                return result
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    run = execute


class CircuitState(Enum):
    """A circuit breaker's state: closed (calls pass), open (calls refused), half open (one trial
    call)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitBreakerConfig:
    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    half_open_max_calls: int = 1

    def __post_init__(self) -> None:
        at_least("failure_threshold", self.failure_threshold, 1)
        greater_than("recovery_timeout", self.recovery_timeout, 0)
        at_least("half_open_max_calls", self.half_open_max_calls, 1)


class CircuitBreakerOpenError(Exception):
    """The breaker is open; calls are refused until `recovery_time` seconds have passed."""

    def __init__(self, message: str, recovery_time: float) -> None:
        self.recovery_time = recovery_time
        super().__init__(message)


@dataclass
class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failures; lets a probe through after the
    recovery timeout; closes again on success."""

    config: CircuitBreakerConfig = field(default_factory=CircuitBreakerConfig)
    state: CircuitState = CircuitState.CLOSED
    failure_count: int = 0
    opened_at: float | None = None
    half_open_calls: int = 0

    @property
    def is_open(self) -> bool:
        return self._current_state() is CircuitState.OPEN

    @property
    def is_closed(self) -> bool:
        return self._current_state() is CircuitState.CLOSED

    @property
    def is_half_open(self) -> bool:
        """True once the recovery timeout has passed: the next call is a trial."""
        return self._current_state() is CircuitState.HALF_OPEN

    def _current_state(self) -> CircuitState:
        if (
            self.state is CircuitState.OPEN
            and self.opened_at is not None
            and time.monotonic() - self.opened_at >= self.config.recovery_timeout
        ):
            self.state = CircuitState.HALF_OPEN
            self.half_open_calls = 0
        return self.state

    def _succeeded(self) -> None:
        self.state = CircuitState.CLOSED
        self.failure_count = 0
        self.opened_at = None

    def _failed(self) -> None:
        self.failure_count += 1
        if (
            self.state is CircuitState.HALF_OPEN
            or self.failure_count >= self.config.failure_threshold
        ):
            self.state = CircuitState.OPEN
            self.opened_at = time.monotonic()

    async def record_success(self) -> None:
        """A call succeeded: close the breaker and forget the failures."""
        self._succeeded()

    async def record_failure(self, error: BaseException | None = None) -> None:
        """A call failed (`error`, if given, is only logged): open the breaker at the
        threshold, or at once when the failing call was the half-open trial."""
        self._failed()
        if error is not None and self.state is CircuitState.OPEN:
            logger.warning("Circuit breaker open after %d failures: %s", self.failure_count, error)

    def reset(self) -> None:
        """Back to closed with no failures counted, whatever the state."""
        self._succeeded()
        self.half_open_calls = 0

    def to_dict(self) -> JSON:
        """State, failure count and settings as plain JSON values."""
        state = self._current_state()
        return {
            "state": state.value,
            "failure_count": self.failure_count,
            "failure_threshold": self.config.failure_threshold,
            "recovery_timeout": self.config.recovery_timeout,
            "half_open_max_calls": self.config.half_open_max_calls,
            "time_until_retry": self._remaining() if state is CircuitState.OPEN else None,
        }

    def _remaining(self) -> float:
        assert self.opened_at is not None
        return max(0.0, self.config.recovery_timeout - (time.monotonic() - self.opened_at))

    async def execute(
        self, operation: Callable[[], Awaitable[T]], operation_name: str = "operation"
    ) -> T:
        """Run `operation` through the breaker: refused with `CircuitBreakerOpenError` while
        open (or while the half-open trial is under way), its outcome recorded otherwise."""
        state = self._current_state()
        if state is CircuitState.OPEN:
            remaining = self._remaining()
            raise CircuitBreakerOpenError(
                f"Circuit breaker is open: {operation_name} refused for {remaining:.1f}s more",
                remaining,
            )
        if state is CircuitState.HALF_OPEN:
            if self.half_open_calls >= self.config.half_open_max_calls:
                raise CircuitBreakerOpenError(
                    f"Circuit breaker is half-open and its trial call is running: "
                    f"{operation_name} refused", 0.0,
                )
            self.half_open_calls += 1
        try:
            result = await operation()
        except Exception:
            self._failed()
            raise
        self._succeeded()
        return result

    call = execute
