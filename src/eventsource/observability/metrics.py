"""OpenTelemetry metrics: append latency and volume, subscription lag. No-op without OpenTelemetry
or without an SDK `MeterProvider` (the API alone records nothing, so nothing is measured).

* `eventsource.append.duration` -- histogram, seconds; attribute `db.system` (`in_memory`,
  `sqlite`, `postgresql`, ...), plus `eventsource.error.type` when the append failed.
* `eventsource.events.appended` -- counter of the events in successful appends; `db.system`.
* `eventsource.subscription.lag` -- observable gauge, committed events a subscription has not
  processed yet; `eventsource.subscription.name`.

Components measure only when their `enable_tracing` is true (it switches all of a component's
OpenTelemetry instrumentation) and a `MeterProvider` is configured.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from eventsource._compat.opentelemetry import metric_switch, providers_unset_check
from eventsource._optional import optional
from eventsource.observability.attributes import (
    ATTR_DB_SYSTEM,
    ATTR_ERROR_TYPE,
    ATTR_SUBSCRIPTION_NAME,
)
from eventsource.observability.tracing import TRACES

if TYPE_CHECKING:
    from opentelemetry import metrics as otel_metrics
else:
    otel_metrics = optional("opentelemetry.metrics")

__all__ = [
    "APPEND_DURATION",
    "EVENTS_APPENDED",
    "METER_NAME",
    "METRICS",
    "SUBSCRIPTION_LAG",
    "AppendObservation",
    "LagSource",
    "get_meter",
    "metrics_live",
    "observe_gauge",
    "observe_subscription_lag",
    "providers_unset",
    "record_append",
]

METER_NAME = "eventsource"
APPEND_DURATION = "eventsource.append.duration"
EVENTS_APPENDED = "eventsource.events.appended"
SUBSCRIPTION_LAG = "eventsource.subscription.lag"


METRICS = metric_switch()
"""The metrics switch: `METRICS.live or METRICS.refresh()` is the hot-path test."""

providers_unset: Callable[[], bool] = providers_unset_check(TRACES, METRICS)
"""True when no tracer or meter provider has been set (then nothing can record). False
means "look closer": `TRACES` / `METRICS` say which signal, if any, records."""


def metrics_live() -> bool:
    """True when OpenTelemetry is installed and a recording `MeterProvider` is configured."""
    return METRICS.live or METRICS.refresh()


def get_meter(name: str = METER_NAME) -> Any:
    """An OpenTelemetry meter, or None when OpenTelemetry is not installed."""
    if otel_metrics is None:
        return None
    return otel_metrics.get_meter(name)


class _AppendInstruments:
    """Created on first use, once a provider records (never on the API's proxy)."""

    __slots__ = ("counter", "histogram")

    def __init__(self, meter: Any) -> None:
        self.histogram = meter.create_histogram(
            APPEND_DURATION, unit="s", description="Duration of event-store appends"
        )
        self.counter = meter.create_counter(
            EVENTS_APPENDED, unit="{event}", description="Events in successful appends"
        )


_append_instruments: list[_AppendInstruments] = []


def record_append(db_system: str, seconds: float, count: int, error_type: str | None) -> None:
    """Record one append: its duration, and its events when it succeeded."""
    if not _append_instruments:
        _append_instruments.append(_AppendInstruments(get_meter()))
    instruments = _append_instruments[0]
    if error_type is None:
        attributes = {ATTR_DB_SYSTEM: db_system}
        instruments.histogram.record(seconds, attributes)
        instruments.counter.add(count, attributes)
    else:
        instruments.histogram.record(
            seconds, {ATTR_DB_SYSTEM: db_system, ATTR_ERROR_TYPE: error_type}
        )


class AppendObservation:
    """Wraps one append: its span (when `span` is given) and its metrics (when `measure`)."""

    __slots__ = ("_count", "_db_system", "_span", "_start")

    def __init__(
        self,
        span: AbstractContextManager[Any] | None,
        db_system: str,
        count: int,
        measure: bool,
    ) -> None:
        self._span = span
        self._db_system = db_system
        self._count = count
        self._start = 0.0 if measure else -1.0

    def __enter__(self) -> AppendObservation:
        if self._span is not None:
            self._span.__enter__()
        if self._start >= 0.0:
            self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._start >= 0.0:
            record_append(
                self._db_system,
                time.perf_counter() - self._start,
                self._count,
                None if exc_type is None else exc_type.__name__,
            )
        if self._span is not None:
            return self._span.__exit__(exc_type, exc, tb)
        return None


class _Lagging(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def lag(self) -> int: ...


class LagSource(Protocol):
    """Anything listing subscriptions that know their name and lag (a `SubscriptionManager`)."""

    @property
    def subscriptions(self) -> Iterable[_Lagging]: ...


_lag_sources: weakref.WeakSet[Any] = weakref.WeakSet()
_lag_gauge: list[Any] = []


def _observe_lag(_options: Any) -> Iterator[Any]:
    assert otel_metrics is not None
    for source in list(_lag_sources):
        for subscription in source.subscriptions:
            yield otel_metrics.Observation(
                subscription.lag, {ATTR_SUBSCRIPTION_NAME: subscription.name}
            )


def observe_subscription_lag(source: LagSource) -> None:
    """Report the lag of `source`'s subscriptions through the `eventsource.subscription.lag`
    gauge for as long as `source` lives. One gauge serves every source (a second instrument of
    the same name would be refused)."""
    if otel_metrics is None:
        return
    _lag_sources.add(source)
    if not _lag_gauge:
        # Created through the API's proxy when no provider is set yet: it starts reporting
        # once one is.
        _lag_gauge.append(
            get_meter().create_observable_gauge(
                SUBSCRIPTION_LAG,
                callbacks=[_observe_lag],
                unit="{event}",
                description="Committed events a subscription has not processed yet",
            )
        )


GaugeReading = Iterable[tuple[float, Mapping[str, Any]]]

_gauge_owners: dict[str, weakref.WeakKeyDictionary[Any, Callable[[Any], GaugeReading]]] = {}


def observe_gauge(
    name: str,
    owner: object,
    read: Callable[[Any], GaugeReading],
    *,
    unit: str,
    description: str,
    meter_name: str = METER_NAME,
) -> None:
    """Report `read(owner)` -- (value, attributes) pairs -- through the observable gauge `name`
    for as long as `owner` lives. One gauge per name serves every owner (a second instrument of
    the same name would be refused); made through the API's proxy when no provider is set yet,
    it reports once one is."""
    if otel_metrics is None:
        return
    owners = _gauge_owners.get(name)
    if owners is None:
        owners = _gauge_owners[name] = weakref.WeakKeyDictionary()
        observed = owners

        def observe(_options: Any) -> Iterator[Any]:
            assert otel_metrics is not None
            for member, reader in list(observed.items()):
                for value, attributes in reader(member):
                    yield otel_metrics.Observation(value, attributes)

        get_meter(meter_name).create_observable_gauge(
            name, callbacks=[observe], unit=unit, description=description
        )
    owners[owner] = read
