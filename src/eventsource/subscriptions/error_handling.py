"""Classifying, counting and reporting the errors subscribers raise."""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING
from uuid import UUID

from eventsource._checks import at_least
from eventsource.subscriptions.classification import (
    _SEVERITY_RANK,
    ErrorCategory,
    ErrorClassification,
    ErrorClassifier,
    ErrorSeverity,
    get_default_classifier,
)
from eventsource.types import JSON

if TYPE_CHECKING:
    from eventsource.events import DomainEvent
    from eventsource.repositories.dlq import DLQRepository
    from eventsource.stores.records import StoredEvent

__all__ = [
    "ErrorCallback",
    "ErrorCategory",
    "ErrorClassification",
    "ErrorClassifier",
    "ErrorHandlerRegistry",
    "ErrorHandlingConfig",
    "ErrorHandlingStrategy",
    "ErrorInfo",
    "ErrorSeverity",
    "ErrorStats",
    "SubscriptionErrorHandler",
    "SyncErrorCallback",
    "get_default_classifier",
]

logger = logging.getLogger(__name__)


class ErrorHandlingStrategy(Enum):
    """What a subscription does with an event its handler failed on: stop, skip, retry, or
    dead-letter it."""

    STOP = "stop"
    CONTINUE = "continue"
    RETRY_THEN_CONTINUE = "retry_then_continue"
    RETRY_THEN_DLQ = "retry_then_dlq"
    DLQ_ONLY = "dlq_only"


@dataclass
class ErrorInfo:
    """One failure of a subscriber on one event."""

    event_id: UUID | None
    event_type: str
    position: int
    error_type: str
    error_message: str
    error_stacktrace: str | None
    classification: ErrorClassification
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    subscription_name: str = ""
    retry_count: int = 0
    sent_to_dlq: bool = False
    dlq_id: int | str | None = None

    @classmethod
    def from_exception(
        cls, error: BaseException, classification: ErrorClassification, *,
        event_id: UUID | None, event_type: str, position: int, subscription_name: str,
        retry_count: int = 0,
    ) -> ErrorInfo:
        return cls(
            event_id=event_id,
            event_type=event_type,
            position=position,
            error_type=type(error).__name__,
            error_message=str(error),
            error_stacktrace="".join(traceback.format_exception(error)),
            classification=classification,
            subscription_name=subscription_name,
            retry_count=retry_count,
        )

    def to_dict(self) -> JSON:
        return {
            "event_id": str(self.event_id) if self.event_id is not None else None,
            "event_type": self.event_type,
            "position": self.position,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "error_stacktrace": self.error_stacktrace,
            "category": self.classification.category.value,
            "severity": self.classification.severity.value,
            "retryable": self.classification.retryable,
            "timestamp": self.timestamp.isoformat(),
            "subscription_name": self.subscription_name,
            "retry_count": self.retry_count,
            "sent_to_dlq": self.sent_to_dlq,
            "dlq_id": self.dlq_id,
        }


@dataclass(frozen=True)
class ErrorHandlingConfig:
    """What the manager does with subscriber errors."""

    strategy: ErrorHandlingStrategy = ErrorHandlingStrategy.RETRY_THEN_CONTINUE
    max_recent_errors: int = 100
    max_errors_before_stop: int | None = None
    error_rate_threshold: float | None = None
    dlq_enabled: bool = True
    notify_on_severity: ErrorSeverity = ErrorSeverity.HIGH

    def __post_init__(self) -> None:
        if isinstance(self.strategy, str):
            object.__setattr__(self, "strategy", ErrorHandlingStrategy(self.strategy))
        at_least("max_recent_errors", self.max_recent_errors, 0)

    @property
    def retries(self) -> bool:
        return self.strategy in _RETRYING

    @property
    def skips_failures(self) -> bool:
        """False when the first failure stops the subscription."""
        return self.strategy is not ErrorHandlingStrategy.STOP


_RETRYING = (ErrorHandlingStrategy.RETRY_THEN_CONTINUE, ErrorHandlingStrategy.RETRY_THEN_DLQ)


@dataclass
class ErrorStats:
    total_errors: int = 0
    transient_errors: int = 0
    permanent_errors: int = 0
    retried_errors: int = 0
    dlq_count: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    errors_by_category: dict[str, int] = field(default_factory=dict)
    first_error_at: datetime | None = None
    last_error_at: datetime | None = None
    error_rate_per_minute: float = 0.0

    def record_error(self, info: ErrorInfo) -> None:
        """Count one failure: by category (an error that is not transient counts as
        permanent), by type, retried and dead-lettered, and its time."""
        self.total_errors += 1
        category = info.classification.category
        if category is ErrorCategory.TRANSIENT:
            self.transient_errors += 1
        else:
            self.permanent_errors += 1
        if info.retry_count:
            self.retried_errors += 1
        if info.sent_to_dlq:
            self.dlq_count += 1
        self.errors_by_type[info.error_type] = self.errors_by_type.get(info.error_type, 0) + 1
        self.errors_by_category[category.value] = self.errors_by_category.get(category.value, 0) + 1
        self.first_error_at = self.first_error_at or info.timestamp
        self.last_error_at = info.timestamp

    def to_dict(self) -> JSON:
        return {
            "total_errors": self.total_errors,
            "transient_errors": self.transient_errors,
            "permanent_errors": self.permanent_errors,
            "retried_errors": self.retried_errors,
            "dlq_count": self.dlq_count,
            "errors_by_type": dict(self.errors_by_type),
            "errors_by_category": dict(self.errors_by_category),
            "first_error_at": self.first_error_at.isoformat() if self.first_error_at else None,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "error_rate_per_minute": self.error_rate_per_minute,
        }


ErrorCallback = Callable[[ErrorInfo], Awaitable[None]]
SyncErrorCallback = Callable[[ErrorInfo], None]
AnyErrorCallback = Callable[[ErrorInfo], Awaitable[None] | None]


class ErrorHandlerRegistry:
    """Callbacks for all errors, one category or one severity; shared by every subscription."""

    def __init__(self) -> None:
        self.all: list[AnyErrorCallback] = []
        self.by_category: dict[ErrorCategory, list[AnyErrorCallback]] = {}
        self.by_severity: dict[ErrorSeverity, list[AnyErrorCallback]] = {}

    def register(self, callback: AnyErrorCallback) -> None:
        """Call `callback` (async or plain) for every error."""
        self.all.append(callback)

    register_sync = register

    def register_for_category(self, category: ErrorCategory, callback: AnyErrorCallback) -> None:
        self.by_category.setdefault(category, []).append(callback)

    def register_for_severity(self, severity: ErrorSeverity, callback: AnyErrorCallback) -> None:
        self.by_severity.setdefault(severity, []).append(callback)

    def clear(self) -> None:
        """Forget every callback."""
        self.all.clear()
        self.by_category.clear()
        self.by_severity.clear()

    def callbacks_for(self, info: ErrorInfo) -> list[AnyErrorCallback]:
        c = info.classification
        return [
            *self.all,
            *self.by_category.get(c.category, ()),
            *self.by_severity.get(c.severity, ()),
        ]

    async def notify(self, info: ErrorInfo) -> None:
        """Run every matching callback; their own failures are logged, never raised."""
        for callback in self.callbacks_for(info):
            try:
                result = callback(info)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("Error callback %r failed", callback)


_WINDOW_SECONDS = 60.0


class SubscriptionErrorHandler:
    """One subscription's error bookkeeping: classification, counts, recent errors, callbacks and,
    given a `dlq_repo`, dead-lettering.

    The manager makes one per subscription (`manager.get_error_handler(name)`) and passes its
    shared registry as `callbacks`; `on_error` and friends register on this handler only.
    """

    def __init__(
        self,
        subscription_name: str,
        config: ErrorHandlingConfig | None = None,
        dlq_repo: DLQRepository | None = None,
        classifier: ErrorClassifier | None = None,
        *,
        callbacks: ErrorHandlerRegistry | None = None,
    ) -> None:
        self.subscription_name = subscription_name
        self.config = config or ErrorHandlingConfig()
        self.dlq_repo = dlq_repo
        self.classifier = classifier or get_default_classifier()
        self.own_callbacks = ErrorHandlerRegistry()
        self.callbacks = callbacks
        self.stats = ErrorStats()
        self.recent_errors: deque[ErrorInfo] = deque(maxlen=max(1, self.config.max_recent_errors))
        self._times: deque[float] = deque()

    def on_error(self, callback: AnyErrorCallback) -> None:
        """Call `callback` (async or plain) for each error this handler records."""
        self.own_callbacks.register(callback)

    on_error_sync = on_error

    def on_category(self, category: ErrorCategory, callback: AnyErrorCallback) -> None:
        self.own_callbacks.register_for_category(category, callback)

    def on_severity(self, severity: ErrorSeverity, callback: AnyErrorCallback) -> None:
        self.own_callbacks.register_for_severity(severity, callback)

    def classify(self, error: BaseException) -> ErrorClassification:
        return self.classifier.classify(error)

    def should_retry(self, error: BaseException) -> bool:
        """Whether the classifier calls `error` retryable."""
        return self.classifier.is_retryable(error)

    def should_continue(self) -> bool:
        """False once `max_errors_before_stop` errors have been recorded."""
        limit = self.config.max_errors_before_stop
        return limit is None or self.stats.total_errors < limit

    @property
    def total_errors(self) -> int:
        return self.stats.total_errors

    @property
    def dlq_count(self) -> int:
        return self.stats.dlq_count

    def error_rate(self, now: float) -> float:
        """Errors in the last minute."""
        while self._times and now - self._times[0] > _WINDOW_SECONDS:
            self._times.popleft()
        return float(len(self._times))

    async def handle_error(
        self,
        error: BaseException,
        stored_event: StoredEvent | None = None,
        event: DomainEvent | None = None,
        retry_count: int = 0,
    ) -> ErrorInfo:
        """Classify `error` raised on `stored_event` (or `event`), dead-letter the event when the
        strategy says so, then record, log and report it; returns what was recorded.

        Dead-lettering needs `dlq_repo`, `config.dlq_enabled` and an event: `DLQ_ONLY` always,
        `RETRY_THEN_DLQ` when the error is not retryable or `retry_count` retries were spent,
        `RETRY_THEN_CONTINUE` when it is not retryable. A failing DLQ write is logged.
        """
        domain = stored_event.event if stored_event is not None else event
        info = ErrorInfo.from_exception(
            error, self.classify(error),
            event_id=domain.event_id if domain is not None else None,
            event_type=domain.event_type if domain is not None else "Unknown",
            position=stored_event.global_position if stored_event is not None else -1,
            subscription_name=self.subscription_name, retry_count=retry_count,
        )
        if domain is not None and self.dlq_repo is not None and self._dead_letters(info):
            try:
                await self.dlq_repo.add_failed_event(
                    event_id=domain.event_id, projection_name=self.subscription_name,
                    event_type=domain.event_type, event_data=domain.model_dump(mode="json"),
                    error=error if isinstance(error, Exception) else Exception(str(error)),
                    retry_count=retry_count,
                )
                info.sent_to_dlq = True
            except Exception:
                logger.exception("Subscription %s: dead-lettering %s failed",
                                 self.subscription_name, domain.event_id)
        await self.record(info, time.monotonic())
        return info

    def _dead_letters(self, info: ErrorInfo) -> bool:
        strategy = self.config.strategy
        retryable = info.classification.retryable
        return self.config.dlq_enabled and (
            strategy is ErrorHandlingStrategy.DLQ_ONLY
            or (strategy is ErrorHandlingStrategy.RETRY_THEN_DLQ
                and (not retryable or info.retry_count > 0))
            or (strategy is ErrorHandlingStrategy.RETRY_THEN_CONTINUE and not retryable)
        )

    async def record(self, info: ErrorInfo, now: float) -> None:
        """Count `info`, log it and notify the callbacks (this handler's, then the shared
        ones); a failing callback is logged, never raised."""
        self.stats.record_error(info)
        self._times.append(now)
        self.stats.error_rate_per_minute = self.error_rate(now)
        self.recent_errors.append(info)
        notify = _SEVERITY_RANK[info.classification.severity] >= _SEVERITY_RANK[
            self.config.notify_on_severity
        ]
        logger.log(
            logging.ERROR if notify else logging.WARNING,
            "Subscription %s failed on %s %s at position %d: %s: %s",
            self.subscription_name, info.event_type, info.event_id, info.position,
            info.error_type, info.error_message,
        )
        await self.own_callbacks.notify(info)
        if self.callbacks is not None:
            await self.callbacks.notify(info)

    def should_stop(self, now: float) -> bool:
        """True when the configured error budget is spent."""
        if not self.should_continue():
            return True
        threshold = self.config.error_rate_threshold
        return threshold is not None and self.error_rate(now) > threshold

    def get_health_status(self) -> JSON:
        """`healthy` (False when the error rate is over its threshold), `warnings` (near the
        error budget, dead letters), `errors`, `stats` and `recent_error_count`."""
        warnings: list[str] = []
        errors: list[str] = []
        rate = self.error_rate(time.monotonic())
        threshold = self.config.error_rate_threshold
        if threshold is not None and rate > threshold:
            errors.append(f"Error rate {rate:.2f}/min exceeds threshold {threshold}/min")
        limit = self.config.max_errors_before_stop
        if limit is not None and self.stats.total_errors >= limit * 0.8:
            warnings.append(f"Approaching error limit: {self.stats.total_errors}/{limit}")
        if self.stats.dlq_count:
            warnings.append(f"{self.stats.dlq_count} events sent to the dead-letter queue")
        return {
            "healthy": not errors,
            "warnings": warnings,
            "errors": errors,
            "stats": self.stats.to_dict(),
            "recent_error_count": len(self.recent_errors),
        }

    async def clear_stats(self) -> None:
        """Forget the counts and the recent errors."""
        self.stats = ErrorStats()
        self.recent_errors.clear()
        self._times.clear()
