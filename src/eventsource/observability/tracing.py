"""The only importer of OpenTelemetry. Everything here is a no-op when it is absent."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eventsource._optional import optional

if TYPE_CHECKING:
    from opentelemetry import trace as otel_trace
else:
    otel_trace = optional("opentelemetry.trace")

OTEL_AVAILABLE: bool = otel_trace is not None

F = TypeVar("F", bound=Callable[..., Any])


def should_trace(enable_tracing: bool) -> bool:
    """Tracing happens only if asked for and OpenTelemetry is importable."""
    return enable_tracing and OTEL_AVAILABLE


def get_tracer(name: str) -> Any:
    """An OpenTelemetry tracer, or None when OpenTelemetry is not installed."""
    if otel_trace is None:
        return None
    return otel_trace.get_tracer(name)


def can_record(tracer: Any) -> bool:
    """False when every span of `tracer` would be a no-op: OpenTelemetry's proxy tracer while
    no tracer provider is set (an application that never configured tracing), or a no-op
    tracer. Checked per span, so setting a provider later takes effect at once."""
    if otel_trace is None:
        return False
    if isinstance(tracer, otel_trace.ProxyTracer):
        return not isinstance(otel_trace.get_tracer_provider(), otel_trace.ProxyTracerProvider)
    return not isinstance(tracer, otel_trace.NoOpTracer)


def _attribute(value: object) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


@contextmanager
def span(tracer: Any, name: str, attributes: dict[str, object] | None = None) -> Iterator[Any]:
    """A span named `name` on `tracer`, or nothing when `tracer` is None."""
    if tracer is None or not can_record(tracer):
        yield None
        return
    attrs = {k: _attribute(v) for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(name, attributes=attrs) as current:
        yield current


class TracingMixin:
    """Gives a class `_tracer`, `_enable_tracing` and `_create_span_context`."""

    _tracer: Any = None
    _enable_tracing: bool = False

    def _init_tracing(self, tracer_name: str, enable_tracing: bool = True) -> None:
        self._enable_tracing = should_trace(enable_tracing)
        self._tracer = get_tracer(tracer_name) if self._enable_tracing else None

    @property
    def tracing_enabled(self) -> bool:
        return self._enable_tracing and self._tracer is not None

    def _create_span_context(
        self, name: str, attributes: dict[str, object] | None = None
    ) -> Any:
        if not self.tracing_enabled:
            return nullcontext(None)
        return span(self._tracer, name, attributes)


def traced(name: str, attributes: dict[str, object] | None = None) -> Callable[[F], F]:
    """Run a method in span `name` when its instance traces; otherwise call straight through."""

    def decorate(func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                tracer = getattr(self, "_tracer", None)
                if not getattr(self, "_enable_tracing", False) or tracer is None:
                    return await func(self, *args, **kwargs)
                with span(tracer, name, attributes):
                    return await func(self, *args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            tracer = getattr(self, "_tracer", None)
            if not getattr(self, "_enable_tracing", False) or tracer is None:
                return func(self, *args, **kwargs)
            with span(tracer, name, attributes):
                return func(self, *args, **kwargs)

        return cast(F, wrapper)

    return decorate
