"""Health, readiness and error statistics of a `SubscriptionManager`."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eventsource.subscriptions.health import (
    HealthCheckConfig,
    HealthCheckResult,
    LivenessStatus,
    ManagerHealth,
    ReadinessStatus,
    SubscriptionHealth,
    assess_subscription,
)
from eventsource.subscriptions.subscription import SubscriptionState
from eventsource.types import JSON

if TYPE_CHECKING:
    from eventsource.subscriptions.error_handling import SubscriptionErrorHandler
    from eventsource.subscriptions.subscription import Subscription

__all__ = ["ManagerMonitoring"]


class ManagerMonitoring(ABC):
    """The read-only reporting half of the manager (a base of `SubscriptionManager`).

    It owns only its `health_check_config`; what it reports on, the manager owns and hands
    over through the abstract members.
    """

    def __init__(self, health_check_config: HealthCheckConfig | None = None) -> None:
        self.health_check_config = health_check_config or HealthCheckConfig()

    @abstractmethod
    def _monitored(self) -> Mapping[str, tuple[Subscription, SubscriptionErrorHandler]]:
        """Each subscription by name, with its error handler."""

    @property
    @abstractmethod
    def is_running(self) -> bool:
        """Whether the manager runs."""

    @property
    @abstractmethod
    def uptime_seconds(self) -> float:
        """Seconds since the manager started (0 when it does not run)."""

    @property
    @abstractmethod
    def is_shutting_down(self) -> bool:
        """Whether a stop is under way."""

    @property
    def total_errors(self) -> int:
        return sum(h.stats.total_errors for _, h in self._monitored().values())

    @property
    def total_dlq_count(self) -> int:
        return sum(h.stats.dlq_count for _, h in self._monitored().values())

    def get_error_stats(self) -> JSON:
        return {
            "total_errors": self.total_errors,
            "total_dlq_count": self.total_dlq_count,
            "subscriptions": {
                name: h.stats.to_dict() for name, (_, h) in self._monitored().items()
            },
        }

    def _assess(self, name: str) -> tuple[SubscriptionHealth, HealthCheckResult]:
        subscription, errors = self._monitored()[name]
        return assess_subscription(
            subscription, errors, self.health_check_config, time.monotonic()
        )

    def get_health(self) -> ManagerHealth:
        healths = [self._assess(name)[0] for name in self._monitored()]
        return ManagerHealth.from_subscriptions(self.is_running, self.uptime_seconds, healths)

    async def health_check(self) -> ManagerHealth:
        return self.get_health()

    def get_subscription_health(self, name: str) -> SubscriptionHealth | None:
        return self._assess(name)[0] if name in self._monitored() else None

    def check_health(self, name: str) -> HealthCheckResult | None:
        return self._assess(name)[1] if name in self._monitored() else None

    def check_all_health(self) -> dict[str, HealthCheckResult]:
        return {name: self._assess(name)[1] for name in self._monitored()}

    @property
    def is_healthy(self) -> bool:
        return self.get_health().status != "unhealthy"

    async def readiness_check(self) -> ReadinessStatus:
        subscriptions = {name: sub for name, (sub, _) in self._monitored().items()}
        states = {name: sub.state.value for name, sub in subscriptions.items()}
        details: dict[str, Any] = {"running": self.is_running, "subscriptions": states}
        if self.is_shutting_down:
            return ReadinessStatus(False, "Manager is shutting down", details)
        if not self.is_running:
            return ReadinessStatus(False, "Manager is not running", details)
        for state, label in ((SubscriptionState.ERROR, "in error"),
                             (SubscriptionState.STARTING, "still starting")):
            names = [n for n, s in subscriptions.items() if s.state is state]
            if names:
                return ReadinessStatus(False, f"Subscriptions {label}: {', '.join(names)}",
                                       details)
        return ReadinessStatus(True, "Manager is ready", details)

    @abstractmethod
    async def liveness_check(self) -> LivenessStatus:
        """Whether the manager still answers (its lock can be taken)."""

    async def get_comprehensive_health(self) -> JSON:
        return {
            "health": (await self.health_check()).to_dict(),
            "readiness": (await self.readiness_check()).to_dict(),
            "liveness": (await self.liveness_check()).to_dict(),
            "errors": self.get_error_stats(),
        }
