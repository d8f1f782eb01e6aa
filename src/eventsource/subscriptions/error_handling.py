"""Classifying, counting and reporting the errors subscribers raise."""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from uuid import UUID

from eventsource._checks import at_least
from eventsource.types import JSON

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


class ErrorCategory(Enum):
    """What kind of failure an error is, as the error classifier sees it."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"
    INFRASTRUCTURE = "infrastructure"
    APPLICATION = "application"
    UNKNOWN = "unknown"


class ErrorSeverity(Enum):
    """How serious a failure is, from LOW to CRITICAL."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


_SEVERITY_RANK = {s: rank for rank, s in enumerate(ErrorSeverity)}


class ErrorHandlingStrategy(Enum):
    """What a subscription does with an event its handler failed on: stop, skip, retry, or
    dead-letter it."""

    STOP = "stop"
    CONTINUE = "continue"
    RETRY_THEN_CONTINUE = "retry_then_continue"
    RETRY_THEN_DLQ = "retry_then_dlq"
    DLQ_ONLY = "dlq_only"


@dataclass(frozen=True)
class ErrorClassification:
    category: ErrorCategory
    severity: ErrorSeverity
    retryable: bool
    description: str = ""


_UNKNOWN = ErrorClassification(ErrorCategory.UNKNOWN, ErrorSeverity.MEDIUM, False, "Unknown error")


class ErrorClassifier:
    """Maps exceptions to classifications by walking their MRO; first registered match wins."""

    def __init__(self) -> None:
        self._rules: dict[type[BaseException], ErrorClassification] = {}
        self._cache: dict[type[BaseException], ErrorClassification] = {}

    def register(self, exc_type: type[BaseException], classification: ErrorClassification) -> None:
        self._rules[exc_type] = classification
        self._cache.clear()

    def classify(self, error: BaseException) -> ErrorClassification:
        kind = type(error)
        found = self._cache.get(kind)
        if found is None:
            found = next((self._rules[k] for k in kind.__mro__ if k in self._rules), _UNKNOWN)
            self._cache[kind] = found
        return found


def _default_rules() -> ErrorClassifier:
    classifier = ErrorClassifier()
    transient = ErrorClassification(
        ErrorCategory.TRANSIENT, ErrorSeverity.MEDIUM, True, "Transient infrastructure error"
    )
    rules: list[tuple[tuple[type[BaseException], ...], ErrorClassification]] = [
        ((ConnectionError, TimeoutError, asyncio.TimeoutError, OSError), transient),
        ((ValueError, KeyError),
         ErrorClassification(ErrorCategory.APPLICATION, ErrorSeverity.MEDIUM, False)),
        ((TypeError, AttributeError),
         ErrorClassification(ErrorCategory.APPLICATION, ErrorSeverity.HIGH, False)),
        ((MemoryError, SystemError),
         ErrorClassification(ErrorCategory.INFRASTRUCTURE, ErrorSeverity.CRITICAL, False)),
    ]
    for kinds, classification in rules:
        for kind in kinds:
            classifier.register(kind, classification)
    return classifier


_DEFAULT_CLASSIFIER = _default_rules()


def get_default_classifier() -> ErrorClassifier:
    """The classifier with the default rules."""
    return _DEFAULT_CLASSIFIER


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
    """One subscription's error bookkeeping: classification, counts, recent errors, callbacks."""

    def __init__(
        self,
        subscription_name: str,
        config: ErrorHandlingConfig,
        callbacks: ErrorHandlerRegistry,
        classifier: ErrorClassifier | None = None,
    ) -> None:
        self.subscription_name = subscription_name
        self.config = config
        self.callbacks = callbacks
        self.classifier = classifier or get_default_classifier()
        self.stats = ErrorStats()
        self.recent_errors: deque[ErrorInfo] = deque(maxlen=max(1, config.max_recent_errors))
        self._times: deque[float] = deque()

    def classify(self, error: BaseException) -> ErrorClassification:
        return self.classifier.classify(error)

    def error_rate(self, now: float) -> float:
        """Errors in the last minute."""
        while self._times and now - self._times[0] > _WINDOW_SECONDS:
            self._times.popleft()
        return float(len(self._times))

    async def record(self, info: ErrorInfo, now: float) -> None:
        """Count `info`, log it and notify the callbacks."""
        stats = self.stats
        stats.total_errors += 1
        category = info.classification.category
        if category is ErrorCategory.TRANSIENT:
            stats.transient_errors += 1
        elif category is ErrorCategory.PERMANENT:
            stats.permanent_errors += 1
        if info.retry_count:
            stats.retried_errors += 1
        if info.sent_to_dlq:
            stats.dlq_count += 1
        stats.errors_by_type[info.error_type] = stats.errors_by_type.get(info.error_type, 0) + 1
        stats.errors_by_category[category.value] = (
            stats.errors_by_category.get(category.value, 0) + 1
        )
        stats.first_error_at = stats.first_error_at or info.timestamp
        stats.last_error_at = info.timestamp
        self._times.append(now)
        stats.error_rate_per_minute = self.error_rate(now)
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
        await self.callbacks.notify(info)

    def should_stop(self, now: float) -> bool:
        """True when the configured error budget is spent."""
        limit = self.config.max_errors_before_stop
        if limit is not None and self.stats.total_errors >= limit:
            return True
        threshold = self.config.error_rate_threshold
        return threshold is not None and self.error_rate(now) > threshold
