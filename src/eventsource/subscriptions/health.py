"""Health, readiness and liveness reports of subscriptions and their manager."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from eventsource.subscriptions.subscription import SubscriptionState
from eventsource.types import JSON

if TYPE_CHECKING:
    from eventsource.subscriptions.error_handling import SubscriptionErrorHandler
    from eventsource.subscriptions.flow_control import FlowController
    from eventsource.subscriptions.retry import CircuitBreaker, RetryableOperation
    from eventsource.subscriptions.subscription import Subscription

__all__ = [
    "HealthCheckConfig",
    "HealthCheckResult",
    "HealthIndicator",
    "HealthStatus",
    "LivenessStatus",
    "ManagerHealth",
    "ManagerHealthChecker",
    "ReadinessStatus",
    "SubscriptionHealth",
    "SubscriptionHealthChecker",
    "assess_subscription",
    "worst_status",
]


class HealthStatus(Enum):
    """The overall verdict of a health check."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


_RANK = {"healthy": 0, "degraded": 1, "unhealthy": 2, "critical": 3}


def worst_status(statuses: list[str]) -> str:
    """The worst of some status strings ("healthy" when there are none)."""
    return max(statuses, key=_RANK.__getitem__, default="healthy")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class HealthCheckConfig:
    """Thresholds of the health indicators."""

    max_error_rate_per_minute: float = 10.0
    max_errors_warning: int = 10
    max_errors_critical: int = 100
    max_lag_events_warning: int = 1000
    max_lag_events_critical: int = 10000
    backpressure_warning_duration_seconds: float = 60.0
    backpressure_critical_duration_seconds: float = 300.0
    circuit_open_is_unhealthy: bool = True
    max_dlq_events_warning: int = 10
    max_dlq_events_critical: int = 100


@dataclass(frozen=True)
class HealthIndicator:
    """One evaluated aspect of a subscription's health."""

    name: str
    status: str
    message: str = ""
    value: float | None = None


@dataclass(frozen=True)
class HealthCheckResult:
    """A subscription's indicators and their overall status."""

    name: str
    status: str
    indicators: list[HealthIndicator] = field(default_factory=list)
    timestamp: datetime = field(default_factory=_now)

    @property
    def overall_status(self) -> HealthStatus:
        """`status` as the enum (0.2.0's name)."""
        return HealthStatus(self.status)

    @property
    def subscription_name(self) -> str:
        return self.name

    def to_dict(self) -> JSON:
        return {
            "name": self.name,
            "status": self.status,
            "indicators": [vars(i) for i in self.indicators],
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass
class SubscriptionHealth:
    """One subscription's health. `lag_seconds` and `store_reachable` are extras."""

    name: str
    status: str
    state: str
    events_processed: int
    events_failed: int
    lag_events: int
    error_rate: float
    last_error: str | None
    uptime_seconds: float
    lag_seconds: float = 0.0
    store_reachable: bool = True

    def to_dict(self) -> JSON:
        return dict(vars(self))


@dataclass(eq=False)
class ManagerHealth(Mapping[str, Any]):
    """The manager's health: the worst of its subscriptions.

    Also a read-only mapping over `to_dict()`, because eventsource-py 0.2.0's `get_health()`
    returned a dict (`manager.get_health()["status"]`).
    """

    status: str
    running: bool
    subscription_count: int
    healthy_count: int
    degraded_count: int
    unhealthy_count: int
    total_events_processed: int
    total_events_failed: int
    total_lag_events: int
    uptime_seconds: float
    timestamp: datetime = field(default_factory=_now)
    subscriptions: list[SubscriptionHealth] = field(default_factory=list)

    @classmethod
    def from_subscriptions(
        cls, running: bool, uptime_seconds: float, subscriptions: list[SubscriptionHealth]
    ) -> ManagerHealth:
        statuses = [s.status for s in subscriptions]
        healthy = statuses.count("healthy")
        degraded = statuses.count("degraded")
        unhealthy = statuses.count("unhealthy") + statuses.count("critical")
        if unhealthy:
            status = "unhealthy"
        elif degraded:
            status = "degraded"
        else:
            status = "healthy" if healthy else "unknown"
        return cls(
            status=status,
            running=running,
            subscription_count=len(subscriptions),
            healthy_count=healthy,
            degraded_count=degraded,
            unhealthy_count=unhealthy,
            total_events_processed=sum(s.events_processed for s in subscriptions),
            total_events_failed=sum(s.events_failed for s in subscriptions),
            total_lag_events=sum(s.lag_events for s in subscriptions),
            uptime_seconds=uptime_seconds,
            subscriptions=subscriptions,
        )

    def to_dict(self) -> JSON:
        data = {k: v for k, v in vars(self).items() if k != "subscriptions"}
        data["timestamp"] = self.timestamp.isoformat()
        data["subscriptions"] = [s.to_dict() for s in self.subscriptions]
        return data

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


@dataclass
class ReadinessStatus:
    ready: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> JSON:
        return {**vars(self), "timestamp": self.timestamp.isoformat()}


@dataclass
class LivenessStatus:
    alive: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=_now)

    def to_dict(self) -> JSON:
        return {**vars(self), "timestamp": self.timestamp.isoformat()}


def assess_subscription(
    sub: Subscription, errors: SubscriptionErrorHandler, config: HealthCheckConfig, now: float
) -> tuple[SubscriptionHealth, HealthCheckResult]:
    """Evaluate one subscription's indicators; its status is the worst of them."""
    indicators = [HealthIndicator("state", _STATE_STATUS[sub.state], sub.state.value)]

    def threshold(name: str, value: int, warning: int, critical: int) -> None:
        status = "critical" if value >= critical else "degraded" if value >= warning else "healthy"
        indicators.append(HealthIndicator(name, status, f"{name}={value}", float(value)))

    threshold("events_failed", sub.events_failed, config.max_errors_warning,
              config.max_errors_critical)
    threshold("lag_events", sub.lag, config.max_lag_events_warning,
              config.max_lag_events_critical)
    threshold("dlq_events", sub.events_dlq, config.max_dlq_events_warning,
              config.max_dlq_events_critical)

    def any_degrades(name: str, count: int, message: str) -> None:
        status = "degraded" if count else "healthy"
        indicators.append(HealthIndicator(name, status, f"{count} {message}", float(count)))

    # One unreadable stored row already needs a person: its event never reached the subscriber.
    any_degrades("corrupt_events", sub.events_corrupt, "stored row(s) could not be read")
    # So does one dead-lettered event: the read model lacks it until someone replays it.
    any_degrades("dead_letters", sub.dead_letters_since_start,
                 "event(s) dead-lettered since the subscription started")
    rate = errors.error_rate(now)
    indicators.append(HealthIndicator(
        "error_rate",
        "degraded" if rate > config.max_error_rate_per_minute else "healthy",
        f"{rate:.1f} errors/minute", rate,
    ))
    breaker = sub.circuit_breaker
    if breaker is not None and breaker.is_open:
        status = "unhealthy" if config.circuit_open_is_unhealthy else "degraded"
        indicators.append(HealthIndicator("circuit_breaker", status, "open"))
    if not sub.store_reachable:
        indicators.append(HealthIndicator("event_store", "unhealthy", str(sub.last_error)))
    status = worst_status([i.status for i in indicators])
    health = SubscriptionHealth(
        name=sub.name,
        status=status,
        state=sub.state.value,
        events_processed=sub.events_processed,
        events_failed=sub.events_failed,
        lag_events=sub.lag,
        error_rate=rate,
        last_error=str(sub.last_error) if sub.last_error is not None else None,
        uptime_seconds=sub.uptime_seconds,
        lag_seconds=sub.lag_seconds,
        store_reachable=sub.store_reachable,
    )
    return health, HealthCheckResult(sub.name, status, indicators)


_STATE_STATUS = {
    SubscriptionState.STARTING: "healthy",
    SubscriptionState.CATCHING_UP: "healthy",
    SubscriptionState.LIVE: "healthy",
    SubscriptionState.PAUSED: "degraded",
    SubscriptionState.STOPPED: "degraded",
    SubscriptionState.ERROR: "unhealthy",
}


class SubscriptionHealthChecker:
    """0.2.0's checker of one subscription: the indicators the manager evaluates
    (`assess_subscription`), plus backpressure when given a `flow_controller` and the state
    of a `circuit_breaker` given here (the subscription's own is always checked). Pass the
    manager's `get_error_handler(name)` for the error rate; without it the rate is 0.
    `retry_operation` is kept as an attribute for callers (0.2.0 took it and read nothing
    from it either).
    """

    def __init__(
        self,
        subscription: Subscription,
        config: HealthCheckConfig | None = None,
        error_handler: SubscriptionErrorHandler | None = None,
        flow_controller: FlowController | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        retry_operation: RetryableOperation | None = None,
    ) -> None:
        self.subscription = subscription
        self.config = config or HealthCheckConfig()
        self.error_handler = error_handler
        self.flow_controller = flow_controller
        self.circuit_breaker = circuit_breaker
        self.retry_operation = retry_operation

    def check(self) -> HealthCheckResult:
        """Evaluate the indicators now; the status is the worst of them."""
        from eventsource.subscriptions.error_handling import SubscriptionErrorHandler

        sub = self.subscription
        errors = self.error_handler or SubscriptionErrorHandler(sub.name)
        _, result = assess_subscription(sub, errors, self.config, time.monotonic())
        indicators = list(result.indicators)
        flow = self.flow_controller
        if flow is not None:
            indicators.append(HealthIndicator(
                "backpressure", "degraded" if flow.is_backpressured else "healthy",
                f"{flow.in_flight} in flight", float(flow.in_flight),
            ))
        breaker = self.circuit_breaker
        if breaker is not None and breaker is not sub.circuit_breaker:
            if breaker.is_open:
                status = "unhealthy" if self.config.circuit_open_is_unhealthy else "degraded"
            else:
                status = "degraded" if breaker.is_half_open else "healthy"
            indicators.append(HealthIndicator("circuit_breaker", status, breaker.state.value))
        status = worst_status([i.status for i in indicators])
        return HealthCheckResult(sub.name, status, indicators)


class ManagerHealthChecker:
    """0.2.0's checker of many subscriptions: each one's `SubscriptionHealthChecker` result
    (one given in `subscription_checkers` under its name, else a plain one) and the worst."""

    def __init__(
        self,
        subscriptions: list[Subscription],
        config: HealthCheckConfig | None = None,
        subscription_checkers: dict[str, SubscriptionHealthChecker] | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.config = config or HealthCheckConfig()
        self.subscription_checkers = dict(subscription_checkers or {})

    def check(self) -> JSON:
        """`status`, the counts per status and each subscription's result as a dict."""
        results = {
            sub.name: (
                self.subscription_checkers.get(sub.name)
                or SubscriptionHealthChecker(sub, self.config)
            ).check()
            for sub in self.subscriptions
        }
        statuses = [result.status for result in results.values()]
        return {
            "status": worst_status(statuses),
            "subscription_count": len(results),
            **{f"{name}_count": statuses.count(name) for name in _RANK},
            "subscriptions": {name: result.to_dict() for name, result in results.items()},
            "timestamp": _now().isoformat(),
        }
