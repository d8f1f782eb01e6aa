"""Per-subscription OpenTelemetry instruments you record into (0.2.0's `SubscriptionMetrics`).

`get_metrics(name)` gives one `SubscriptionMetrics` per name. It records, with the attribute
`subscription`:

* `subscription.events.processed` -- counter; `event.type`, `status`.
* `subscription.events.failed` -- counter; `event.type`, `error.type`.
* `subscription.processing.duration` -- histogram, milliseconds.
* `subscription.lag` and `subscription.state` -- observable gauges of the last values recorded.

Without OpenTelemetry (or with `enable_metrics=False`) the instruments are no-ops and only the
snapshot counts. The manager itself does not record into these (its handling path stays free of
per-event instrument calls); it reports `eventsource.subscription.lag`, see
`eventsource.observability.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from eventsource.observability.metrics import get_meter
from eventsource.types import JSON

__all__ = [
    "OTEL_METRICS_AVAILABLE",
    "STATE_MAPPING",
    "MetricSnapshot",
    "NoOpCounter",
    "NoOpGauge",
    "NoOpHistogram",
    "ProcessingTimer",
    "StateValue",
    "SubscriptionMetrics",
    "clear_metrics_registry",
    "get_metrics",
]

METER_NAME = "eventsource.subscriptions"
OTEL_METRICS_AVAILABLE: bool = get_meter(METER_NAME) is not None
"""Whether OpenTelemetry is installed (instruments then record once a provider is set)."""


class StateValue(IntEnum):
    """The number the `subscription.state` gauge reports for each state."""

    UNKNOWN = 0
    STARTING = 1
    CATCHING_UP = 2
    LIVE = 3
    PAUSED = 4
    STOPPED = 5
    ERROR = 6


STATE_MAPPING: dict[str, int] = {
    state.name.lower(): state.value for state in StateValue if state is not StateValue.UNKNOWN
}
"""State names (`"live"`, `"catching_up"`, ...) to their gauge values."""


class NoOpCounter:
    """Takes `add()` calls and records nothing."""

    def add(self, amount: float, attributes: dict[str, Any] | None = None) -> None:
        del amount, attributes


class NoOpHistogram:
    """Takes `record()` calls and records nothing."""

    def record(self, value: float, attributes: dict[str, Any] | None = None) -> None:
        del value, attributes


class NoOpGauge:
    """Stands for an observable gauge that nothing observes."""


@dataclass
class MetricSnapshot:
    """What a `SubscriptionMetrics` has recorded so far."""

    events_processed: int = 0
    events_failed: int = 0
    total_processing_time_ms: float = 0.0
    current_lag: int = 0
    current_state: int = StateValue.UNKNOWN
    current_state_name: str = "unknown"

    def to_dict(self) -> JSON:
        return asdict(self)


class ProcessingTimer:
    """Milliseconds since `time_processing()` began, frozen when its block ends."""

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._end: float | None = None

    def stop(self) -> None:
        if self._end is None:
            self._end = time.perf_counter()

    @property
    def duration_ms(self) -> float:
        end = self._end if self._end is not None else time.perf_counter()
        return (end - self._start) * 1000


class SubscriptionMetrics:
    """The instruments of one subscription (see the module) and a running snapshot."""

    def __init__(self, subscription_name: str, enable_metrics: bool = True) -> None:
        self.subscription_name = subscription_name
        self.enable_metrics = enable_metrics
        self._snapshot = MetricSnapshot()
        meter = get_meter(METER_NAME) if enable_metrics else None
        self._processed: Any = NoOpCounter()
        self._failed: Any = NoOpCounter()
        self._duration: Any = NoOpHistogram()
        if meter is not None:
            self._processed = meter.create_counter(
                "subscription.events.processed", unit="events",
                description="Events processed by the subscription")
            self._failed = meter.create_counter(
                "subscription.events.failed", unit="events",
                description="Events the subscription failed on")
            self._duration = meter.create_histogram(
                "subscription.processing.duration", unit="ms",
                description="Time to handle one event")
            meter.create_observable_gauge(
                "subscription.lag", callbacks=[self._observe_lag], unit="events",
                description="Events the subscription is behind")
            meter.create_observable_gauge(
                "subscription.state", callbacks=[self._observe_state], unit="1",
                description="The subscription's state (see StateValue)")

    @property
    def metrics_enabled(self) -> bool:
        """Whether instruments are live (enabled and OpenTelemetry installed)."""
        return self.enable_metrics and OTEL_METRICS_AVAILABLE

    def _observe_lag(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation

        yield Observation(self._snapshot.current_lag, {"subscription": self.subscription_name})

    def _observe_state(self, options: Any) -> Iterator[Any]:
        from opentelemetry.metrics import Observation

        snapshot = self._snapshot
        yield Observation(snapshot.current_state, {
            "subscription": self.subscription_name, "state_name": snapshot.current_state_name,
        })

    def record_event_processed(
        self, event_type: str, duration_ms: float, status: str = "success"
    ) -> None:
        attributes = {"subscription": self.subscription_name, "event.type": event_type,
                      "status": status}
        self._processed.add(1, attributes)
        self._duration.record(duration_ms, attributes)
        self._snapshot.events_processed += 1
        self._snapshot.total_processing_time_ms += duration_ms

    def record_event_failed(
        self, event_type: str, error_type: str, duration_ms: float | None = None
    ) -> None:
        """Count a failure; `duration_ms`, when given, goes to the histogram as `failed`."""
        self._failed.add(1, {"subscription": self.subscription_name, "event.type": event_type,
                             "error.type": error_type})
        if duration_ms is not None:
            self._duration.record(duration_ms, {
                "subscription": self.subscription_name, "event.type": event_type,
                "status": "failed",
            })
            self._snapshot.total_processing_time_ms += duration_ms
        self._snapshot.events_failed += 1

    def record_lag(self, lag_events: int) -> None:
        """The lag the gauge reports from now on (negative values count as 0)."""
        self._snapshot.current_lag = max(0, lag_events)

    def record_state(self, state: str) -> None:
        """The state the gauge reports from now on, by name (any case; unknown names: 0)."""
        name = str(getattr(state, "value", state)).lower()
        self._snapshot.current_state_name = name
        self._snapshot.current_state = STATE_MAPPING.get(name, StateValue.UNKNOWN)

    @contextmanager
    def time_processing(self) -> Iterator[ProcessingTimer]:
        """Time a block: `with metrics.time_processing() as timer: ...`, then
        `timer.duration_ms`."""
        timer = ProcessingTimer()
        try:
            yield timer
        finally:
            timer.stop()

    def get_snapshot(self) -> MetricSnapshot:
        return MetricSnapshot(**asdict(self._snapshot))

    @property
    def current_lag(self) -> int:
        return self._snapshot.current_lag

    @property
    def current_state(self) -> str:
        return self._snapshot.current_state_name


_registry: dict[str, SubscriptionMetrics] = {}


def get_metrics(subscription_name: str, enable_metrics: bool = True) -> SubscriptionMetrics:
    """The `SubscriptionMetrics` of `subscription_name`, made on first call (later calls
    return the same object, whatever `enable_metrics` they pass)."""
    found = _registry.get(subscription_name)
    if found is None:
        found = _registry[subscription_name] = SubscriptionMetrics(
            subscription_name, enable_metrics
        )
    return found


def clear_metrics_registry() -> None:
    """Forget every `SubscriptionMetrics` `get_metrics` made."""
    _registry.clear()
