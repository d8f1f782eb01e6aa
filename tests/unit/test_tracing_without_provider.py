"""Spans are skipped while no OpenTelemetry tracer provider is set, and recorded as soon as one
is (the check is made per span, not when the store is built)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A child process: the global tracer provider can be set only once per process.
_CHILD = textwrap.dedent(
    """
    import asyncio
    from uuid import uuid4

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from eventsource import DomainEvent, InMemoryEventStore
    from eventsource.observability.tracing import can_record


    class Noted(DomainEvent):
        event_type: str = "Noted"
        aggregate_type: str = "Note"


    async def main() -> None:
        store = InMemoryEventStore()  # built before any provider is set
        assert not can_record(store._tracer)
        first = uuid4()
        await store.append_events(first, "Note", [Noted(aggregate_id=first)], 0)
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        assert can_record(store._tracer)
        second = uuid4()
        await store.append_events(second, "Note", [Noted(aggregate_id=second)], 0)
        await store.get_events(second, "Note")
        spans = [(s.name, s.attributes.get("eventsource.aggregate.id"))
                 for s in exporter.get_finished_spans()]
        print(spans)
        assert [name for name, _ in spans] == [
            "in_memory_event_store.append_events", "in_memory_event_store.get_events"
        ]
        assert all(aggregate == str(second) for _, aggregate in spans)


    asyncio.run(main())
    """
)


def test_spans_start_when_a_tracer_provider_is_set() -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, child.stderr[-3000:]
