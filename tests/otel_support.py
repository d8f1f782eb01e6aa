"""The OpenTelemetry SDK set up once per test session, read per test (the `telemetry` fixture).

OpenTelemetry lets a process set its global tracer and meter providers only once, so the first
test that asks for `telemetry` installs both, for the rest of the session:

* spans go to an `InMemorySpanExporter` while a test holds the fixture ("armed"); otherwise the
  sampler drops them, so later tests neither pay for exporting nor fill memory;
* metrics go to an `InMemoryMetricReader`; its sums are cumulative, so a test reads the change
  since it armed the fixture;
* between such tests the library's own provider switches are turned off, so the rest of the
  suite runs as in a process without a provider: no span or metric is even built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from pydantic import BaseModel

from eventsource import (
    DeclarativeAggregate,
    DeclarativeProjection,
    DomainEvent,
    handles,
    register_event,
)
from eventsource.observability.metrics import METRICS
from eventsource.observability.tracing import TRACES

PointKey = tuple[str, frozenset[tuple[str, Any]]]


class _ArmedSampler(Sampler):
    """Records every span while armed, none otherwise."""

    def __init__(self) -> None:
        self.armed = False

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None
                      ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self.armed else Decision.DROP
        return SamplingResult(decision, attributes if self.armed else None)

    def get_description(self) -> str:
        return "ArmedSampler"


class Telemetry:
    """Finished spans and metric changes of the current test."""

    def __init__(self) -> None:
        self.sampler = _ArmedSampler()
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider(sampler=self.sampler)
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self._baseline: dict[PointKey, Any] = {}

    def arm(self) -> None:
        self.exporter.clear()
        self._baseline = self._points()
        self.sampler.armed = True
        for switch in (TRACES, METRICS):  # look for the providers again, for real
            switch.settled = False
            assert switch.refresh(), "the session's SDK provider is not seen as recording"

    def disarm(self) -> None:
        for switch in (TRACES, METRICS):  # as if no provider were set
            switch.live = False
            switch.settled = True
        self.sampler.armed = False
        self.exporter.clear()

    # -- spans ------------------------------------------------------------------------------

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, in the order they ended; only those named `name` if given."""
        found = list(self.exporter.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def names(self) -> list[str]:
        return [s.name for s in self.spans()]

    def one(self, name: str) -> ReadableSpan:
        found = self.spans(name)
        assert len(found) == 1, f"expected one {name!r} span, got {len(found)}: {self.names()}"
        return found[0]

    def parent_of(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        for candidate in self.spans():
            context = candidate.get_span_context()
            if context is not None and context.span_id == span.parent.span_id:
                return candidate
        return None

    def children(self, span: ReadableSpan, name: str | None = None) -> list[ReadableSpan]:
        context = span.get_span_context()
        assert context is not None
        return [
            s for s in self.spans(name)
            if s.parent is not None and s.parent.span_id == context.span_id
        ]

    def assert_child(self, child: ReadableSpan, parent: ReadableSpan) -> None:
        found = self.parent_of(child)
        assert found is parent, (
            f"{child.name} should be a child of {parent.name}, "
            f"its parent is {found.name if found else None}"
        )

    # -- metrics ----------------------------------------------------------------------------

    def _points(self) -> dict[PointKey, Any]:
        data = self.reader.get_metrics_data()
        points: dict[PointKey, Any] = {}
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset(dict(point.attributes or {}).items()))
                        points[key] = point
        return points

    def metric_points(self, name: str) -> list[tuple[Mapping[str, Any], Any]]:
        """Current data points of metric `name`: (attributes, point)."""
        return [(dict(attrs), p) for (n, attrs), p in self._points().items() if n == name]

    def counter_delta(self, name: str, attributes: Mapping[str, Any]) -> float:
        """How much a counter grew (for these attributes) since the test armed the fixture."""
        key = (name, frozenset(attributes.items()))
        now = self._points().get(key)
        before = self._baseline.get(key)
        return (now.value if now else 0) - (before.value if before else 0)

    def histogram_delta(self, name: str, attributes: Mapping[str, Any]) -> tuple[int, float]:
        """(count, sum) a histogram gained (for these attributes) since the test armed."""
        key = (name, frozenset(attributes.items()))
        now = self._points().get(key)
        before = self._baseline.get(key)
        return (
            (now.count if now else 0) - (before.count if before else 0),
            (now.sum if now else 0.0) - (before.sum if before else 0.0),
        )

    def gauge(self, name: str, attributes: Mapping[str, Any]) -> float | None:
        point = self._points().get((name, frozenset(attributes.items())))
        return None if point is None else point.value


def install() -> Telemetry:
    """Set the session's global providers (once); the `telemetry` fixture arms it per test."""
    telemetry = Telemetry()
    trace.set_tracer_provider(telemetry.tracer_provider)
    metrics.set_meter_provider(telemetry.meter_provider)
    assert trace.get_tracer_provider() is telemetry.tracer_provider, "set elsewhere first"
    return telemetry


def attributes_of(span: ReadableSpan, *names: str) -> dict[str, Any]:
    found = dict(span.attributes or {})
    return {name: found.get(name) for name in names}


def trace_ids(spans: Sequence[ReadableSpan]) -> set[int]:
    return {s.context.trace_id for s in spans if s.context is not None}


# -- a small domain for the flow tests: a tally aggregate and a projection of it ---------------


@register_event
class TallyIncremented(DomainEvent):
    event_type: str = "OtelTallyIncremented"
    aggregate_type: str = "OtelTally"
    by: int = 1


class TallyState(BaseModel):
    total: int = 0


class Tally(DeclarativeAggregate[TallyState]):
    aggregate_type = "OtelTally"

    def _get_initial_state(self) -> TallyState:
        return TallyState()

    @handles(TallyIncremented)
    def _on_incremented(self, event: TallyIncremented) -> None:
        state = self._state or self._get_initial_state()
        self._state = TallyState(total=state.total + event.by)

    def increment(self, by: int = 1) -> None:
        self.apply_event(
            TallyIncremented(
                aggregate_id=self.aggregate_id, by=by, aggregate_version=self.get_next_version()
            )
        )


class TallyTotals(DeclarativeProjection):
    """Totals per tally; traces when asked (projections do not by default)."""

    def __init__(self, enable_tracing: bool = True) -> None:
        super().__init__(enable_tracing=enable_tracing)
        self.totals: dict[Any, int] = {}

    @handles(TallyIncremented)
    async def _on_incremented(self, event: TallyIncremented) -> None:
        self.totals[event.aggregate_id] = self.totals.get(event.aggregate_id, 0) + event.by
