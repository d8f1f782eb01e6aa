"""The spans of every bus, each declared once: dispatch and handle here (`BusSpans`), publish
and consume on `BrokerEventBus`. `bus_span` puts a method in a span when the bus traces and
something records, and otherwise hands back the method's own awaitable untouched (no span, no
attributes built, no extra coroutine)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Concatenate, ParamSpec, TypeVar

from eventsource.bus._dispatch import run_handlers
from eventsource.bus.interface import Handler, handler_name, invoke_handler
from eventsource.events.base import DomainEvent
from eventsource.observability.attributes import (
    ATTR_AGGREGATE_ID,
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_HANDLER_COUNT,
    ATTR_HANDLER_NAME,
)
from eventsource.observability.tracing import TracingMixin

__all__ = ["BusSpans", "bus_span"]

P = ParamSpec("P")
T = TypeVar("T")
BusT = TypeVar("BusT", bound=TracingMixin)
Failures = list[tuple[Handler, Exception]]


def bus_span(
    name: str,
    attributes_of: Callable[Concatenate[Any, P], Mapping[str, object]],
    kind: str | None = None,
) -> Callable[
    [Callable[Concatenate[BusT, P], Awaitable[T]]], Callable[Concatenate[BusT, P], Awaitable[T]]
]:
    """Run the decorated method (one returning an awaitable) in span `name` of `kind` when its
    bus's spans are live; `attributes_of(bus, *args)` is called only then."""

    def decorate(
        method: Callable[Concatenate[BusT, P], Awaitable[T]],
    ) -> Callable[Concatenate[BusT, P], Awaitable[T]]:
        @functools.wraps(method)
        def run(bus: BusT, /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
            if not bus._tracing_live():
                return method(bus, *args, **kwargs)
            span = bus._create_span_context(name, attributes_of(bus, *args, **kwargs), kind=kind)
            return _within(span, method(bus, *args, **kwargs))

        return run

    return decorate


async def _within(span: AbstractContextManager[Any], work: Awaitable[T]) -> T:
    # `work` has not started yet: it runs inside the span, as its child spans do.
    with span:
        return await work


def _dispatch_attributes(handlers: list[Handler], event: DomainEvent) -> dict[str, object]:
    return {
        ATTR_EVENT_TYPE: event.event_type,
        ATTR_EVENT_ID: event.event_id,
        ATTR_AGGREGATE_ID: event.aggregate_id,
        ATTR_HANDLER_COUNT: len(handlers),
    }


def _handle_attributes(
    _bus: TracingMixin, handler: Handler, event: DomainEvent
) -> dict[str, object]:
    return {ATTR_HANDLER_NAME: handler_name(handler), ATTR_EVENT_TYPE: event.event_type}


class BusSpans(TracingMixin):
    """Running one event's handlers, in the dispatch span and a handle span per handler."""

    def _run_handlers(self, handlers: list[Handler], event: DomainEvent) -> Awaitable[Failures]:
        """Run `handlers` on `event` concurrently; the failures, none raised. Traced, in the
        dispatch span, each handler in a handle span of its own."""
        # Decided once per event: untraced, neither the event nor a handler costs a span check.
        if not self._tracing_live():
            return run_handlers(handlers, event, self._call_handler)
        attributes = _dispatch_attributes(handlers, event)
        span = self._create_span_context("eventsource.event_bus.dispatch", attributes)
        return _within(span, run_handlers(handlers, event, self._handle))

    @bus_span("eventsource.event_bus.handle", _handle_attributes)
    def _handle(self, handler: Handler, event: DomainEvent) -> Awaitable[None]:
        return self._call_handler(handler, event)

    # Run one handler (a bus that measures handlers overrides this). A static method: the
    # untraced path calls `invoke_handler` itself, no method in between.
    _call_handler = staticmethod(invoke_handler)
