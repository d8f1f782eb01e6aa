"""`traced` and `trace_methods`: one mechanism for sync and async methods, declared once for a
protocol, with nothing in the way of an instance that does not trace."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("opentelemetry.sdk")

from eventsource.observability.tracing import (
    TracingMixin,
    trace_methods,
    traced,
)
from otel_support import Telemetry

SPANS = {
    "read": traced("svc.read", arguments={"key": "svc.key"}, once=True),
    "size": traced("svc.size", when=lambda svc, args, kwargs: bool(args and args[0])),
}


@trace_methods(SPANS)
class Service(TracingMixin):
    def __init__(self, enable_tracing: bool) -> None:
        self._init_tracing("tests.traced", enable_tracing)

    async def read(self, key: str) -> str:
        await asyncio.sleep(0)
        return key.upper()

    def size(self, text: str) -> int:
        return len(text)


class Cached(Service):
    """Overrides a traced method and calls super(): one span, not two."""

    @traced("svc.read", arguments={"key": "svc.key"}, once=True)
    async def read(self, key: str) -> str:
        return await super().read(key)


async def test_spans_are_declared_once_for_every_implementation(telemetry: Telemetry) -> None:
    for service in (Service(True), Cached(True)):
        assert await service.read("a") == "A"
        assert service.size("abc") == 3
        assert service.size("") == 0  # `when` declines the span
    assert telemetry.names() == ["svc.read", "svc.size", "svc.read", "svc.size"]
    assert [dict(s.attributes or {}) for s in telemetry.spans("svc.read")] == [
        {"svc.key": "a"}, {"svc.key": "a"},
    ]


async def test_an_instance_that_does_not_trace_calls_straight_through(
    telemetry: Telemetry,
) -> None:
    quiet = Cached(enable_tracing=False)
    assert await quiet.read("b") == "B"
    assert quiet.size("xy") == 2
    assert telemetry.names() == []
    quiet._init_tracing("tests.traced", True)  # switched on later: the spans come back
    assert await quiet.read("c") == "C"
    assert telemetry.names() == ["svc.read"]
