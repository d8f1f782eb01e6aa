"""Health, readiness, liveness and error statistics of a `SubscriptionManager`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eventsource.subscriptions.error_handling import SubscriptionErrorHandler
from eventsource.subscriptions.health import (
    HealthCheckConfig,
    HealthCheckResult,
    LivenessStatus,
    ManagerHealth,
    ReadinessStatus,
    SubscriptionHealth,
    assess_subscription,
)
from eventsource.subscriptions.subscription import Subscription, SubscriptionState

__all__ = ["ManagerMonitoring"]

_LIVENESS_TIMEOUT = 5.0


class ManagerMonitoring:
    """The read-only reporting half of the manager (mixed into `SubscriptionManager`)."""

    health_check_config: HealthCheckConfig
    _subscriptions: dict[str, Subscription]
    _errors: dict[str, SubscriptionErrorHandler]
    _running: bool
    _lock: asyncio.Lock

    @property
    def uptime_seconds(self) -> float:
        raise NotImplementedError

    @property
    def is_shutting_down(self) -> bool:
        raise NotImplementedError

    def get_error_handler(self, name: str) -> SubscriptionErrorHandler | None:
        return self._errors.get(name)

    @property
    def total_errors(self) -> int:
        return sum(h.stats.total_errors for h in self._errors.values())

    @property
    def total_dlq_count(self) -> int:
        return sum(h.stats.dlq_count for h in self._errors.values())

    def get_error_stats(self) -> dict[str, Any]:
        return {
            "total_errors": self.total_errors,
            "total_dlq_count": self.total_dlq_count,
            "subscriptions": {name: h.stats.to_dict() for name, h in self._errors.items()},
        }

    def _assess(self, name: str) -> tuple[SubscriptionHealth, HealthCheckResult]:
        return assess_subscription(
            self._subscriptions[name], self._errors[name], self.health_check_config,
            time.monotonic(),
        )

    def get_health(self) -> ManagerHealth:
        healths = [self._assess(name)[0] for name in self._subscriptions]
        return ManagerHealth.from_subscriptions(self._running, self.uptime_seconds, healths)

    async def health_check(self) -> ManagerHealth:
        return self.get_health()

    def get_subscription_health(self, name: str) -> SubscriptionHealth | None:
        return self._assess(name)[0] if name in self._subscriptions else None

    def check_health(self, name: str) -> HealthCheckResult | None:
        return self._assess(name)[1] if name in self._subscriptions else None

    def check_all_health(self) -> dict[str, HealthCheckResult]:
        return {name: self._assess(name)[1] for name in self._subscriptions}

    @property
    def is_healthy(self) -> bool:
        return self.get_health().status != "unhealthy"

    async def readiness_check(self) -> ReadinessStatus:
        states = {name: sub.state.value for name, sub in self._subscriptions.items()}
        details: dict[str, Any] = {"running": self._running, "subscriptions": states}
        if self.is_shutting_down:
            return ReadinessStatus(False, "Manager is shutting down", details)
        if not self._running:
            return ReadinessStatus(False, "Manager is not running", details)
        for state, label in ((SubscriptionState.ERROR, "in error"),
                             (SubscriptionState.STARTING, "still starting")):
            names = [n for n, s in self._subscriptions.items() if s.state is state]
            if names:
                return ReadinessStatus(False, f"Subscriptions {label}: {', '.join(names)}",
                                       details)
        return ReadinessStatus(True, "Manager is ready", details)

    async def liveness_check(self) -> LivenessStatus:
        details: dict[str, Any] = {"running": self._running}
        try:
            async with asyncio.timeout(_LIVENESS_TIMEOUT):
                await self._lock.acquire()
        except TimeoutError:
            return LivenessStatus(False, "Manager lock not acquired within "
                                  f"{_LIVENESS_TIMEOUT}s", details)
        self._lock.release()
        return LivenessStatus(True, "Manager is alive and responsive", details)

    async def get_comprehensive_health(self) -> dict[str, Any]:
        return {
            "health": (await self.health_check()).to_dict(),
            "readiness": (await self.readiness_check()).to_dict(),
            "liveness": (await self.liveness_check()).to_dict(),
            "errors": self.get_error_stats(),
        }
