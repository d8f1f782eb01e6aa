"""The only importer of OpenTelemetry tracing. Everything here is a no-op when it is absent.

Spans cost nothing unless something records them: with OpenTelemetry installed but no SDK
`TracerProvider` configured (the API alone hands out non-recording spans), instrumented code
skips span creation and attribute building entirely. `traces_live()` answers "is a recording
provider configured?" in a few tens of nanoseconds: OpenTelemetry lets the global provider be
set only once, so once one is seen the answer is final, and until then the check reads a single
module global (`eventsource._compat.opentelemetry`, with a plain fallback).

One mechanism declares spans: `traced(...)` on a method (sync or async; attributes built only
when a span is made), applied to a protocol's methods at once by `trace_methods(SPANS)`, and
`TracingMixin._create_span_context` for a block. Each makes the same test first (`_records`):
the instance traces and a provider records; otherwise the call runs straight through.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import CodeType, FunctionType, MethodType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from eventsource._compat.opentelemetry import ProviderSwitch, trace_switch
from eventsource._optional import optional
from eventsource.observability.attributes import ATTR_ERROR_TYPE

if TYPE_CHECKING:
    from opentelemetry import trace as otel_trace
else:
    otel_trace = optional("opentelemetry.trace")

__all__ = [
    "IDLE_SPAN",
    "NO_SPAN",
    "OTEL_AVAILABLE",
    "ProviderSwitch",
    "TracingMixin",
    "annotate_current_span",
    "extract_trace_context",
    "get_tracer",
    "inject_trace_context",
    "propagation_fields",
    "should_trace",
    "span",
    "spanned_method",
    "trace_methods",
    "traced",
    "traces_live",
]

OTEL_AVAILABLE: bool = otel_trace is not None

F = TypeVar("F", bound=Callable[..., Any])
AttributesOf = Callable[[Any, tuple[Any, ...], dict[str, Any]], Mapping[str, object]]
"""`attributes_of(instance, args, kwargs)`: a traced call's span attributes, built only when
the span is made."""

NO_SPAN: AbstractContextManager[None] = nullcontext(None)
"""The shared "no span" context manager (a `nullcontext` is stateless, so reusable)."""

IDLE_SPAN: AbstractContextManager[Any] = nullcontext(
    otel_trace.INVALID_SPAN if otel_trace is not None else None
)
"""Tracing is on but nothing records: OpenTelemetry's shared non-recording span, so code that
sets attributes on the span it is given keeps working, at no cost."""

TRACES = trace_switch()
"""The tracing switch: `TRACES.live or TRACES.refresh()` is the hot-path test."""


def traces_live() -> bool:
    """True when OpenTelemetry is installed and a recording `TracerProvider` is configured."""
    return TRACES.live or TRACES.refresh()


def should_trace(enable_tracing: bool) -> bool:
    """Tracing happens only if asked for and OpenTelemetry is importable."""
    return enable_tracing and OTEL_AVAILABLE


def get_tracer(name: str) -> Any:
    """An OpenTelemetry tracer, or None when OpenTelemetry is not installed.

    Before a provider is configured this is OpenTelemetry's proxy tracer, which starts
    recording once one is set: components built early trace too.
    """
    if otel_trace is None:
        return None
    return otel_trace.get_tracer(name)


def _attribute(value: object) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _kind(kind: str | None) -> Any:
    assert otel_trace is not None
    if kind is None:
        return otel_trace.SpanKind.INTERNAL
    return otel_trace.SpanKind[kind.upper()]


@contextmanager
def span(
    tracer: Any,
    name: str,
    attributes: Mapping[str, object] | None = None,
    *,
    kind: str | None = None,
    context: Any = None,
) -> Iterator[Any]:
    """A span named `name` on `tracer`, current inside the block; None when `tracer` is None,
    OpenTelemetry's non-recording span when nothing records spans.

    `kind` is "producer", "consumer", "client", "server" or None (internal); `context` is a
    parent context (from `extract_trace_context`) instead of the current one. `None` attribute
    values are left out; others become str/int/float/bool. An exception leaving the block is
    recorded, marks the span as an error and sets `eventsource.error.type`.
    """
    if tracer is None:
        yield None
        return
    if not (TRACES.live or TRACES.refresh()):
        yield otel_trace.INVALID_SPAN
        return
    attrs = {k: _attribute(v) for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(
        name, context=context, kind=_kind(kind), attributes=attrs
    ) as current:
        try:
            yield current
        except Exception as exc:
            current.set_attribute(ATTR_ERROR_TYPE, type(exc).__name__)
            raise


# -- the one mechanism: an instance's span, made only when it traces and something records --


def _records(owner: object) -> bool:
    """`owner` traces (it has a tracer and `enable_tracing`) and a provider records: the only
    test instrumented code makes before building a span or its attributes."""
    return (
        getattr(owner, "_tracer", None) is not None
        and getattr(owner, "_enable_tracing", False)
        and (TRACES.live or TRACES.refresh())
    )


class TracingMixin:
    """Gives a class `_tracer`, `_enable_tracing` and `_create_span_context`."""

    _tracer: Any = None
    _enable_tracing: bool = False

    def _init_tracing(self, tracer_name: str, enable_tracing: bool = True) -> None:
        self._enable_tracing = should_trace(enable_tracing)
        self._tracer = get_tracer(tracer_name) if self._enable_tracing else None
        _bind_untraced(self)

    @property
    def tracing_enabled(self) -> bool:
        """Tracing is on for this instance (it records once a `TracerProvider` is set)."""
        return self._enable_tracing and self._tracer is not None

    def _tracing_live(self) -> bool:
        """Spans are on for this instance and something records them: build attributes only
        when this is True."""
        return _records(self)

    def _create_span_context(
        self,
        name: str,
        attributes: Mapping[str, object] | None = None,
        *,
        kind: str | None = None,
        context: Any = None,
    ) -> AbstractContextManager[Any]:
        """A span named `name` around a block, current inside it; yields None when this
        instance does not trace, OpenTelemetry's non-recording span when it does but nothing
        records. (Methods: `traced`, which also builds attributes only when a span is made.)"""
        if not _records(self):
            return IDLE_SPAN if self.tracing_enabled else NO_SPAN
        return span(self._tracer, name, attributes, kind=kind, context=context)


_Reader = tuple[str, tuple[str, ...], str, int, object]


def _argument_readers(func: Callable[..., Any], arguments: Mapping[str, str]) -> list[_Reader]:
    """(parameter, attribute path, span attribute, positional index after self, default) per
    traced argument; `"event.event_id"` reads an attribute of the `event` argument."""
    params = list(inspect.signature(func).parameters.values())[1:]  # without self
    readers = []
    for path, attribute in arguments.items():
        name, *inner = path.split(".")
        found = [(i, p) for i, p in enumerate(params) if p.name == name]
        if not found:
            raise TypeError(f"{func.__qualname__} has no parameter {name!r} to trace")
        index, param = found[0]
        positional = param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD)
        default = None if param.default is param.empty else param.default
        readers.append((name, tuple(inner), attribute, index if positional else -1, default))
    return readers


def _attributes_builder(
    func: Callable[..., Any],
    static: Mapping[str, object],
    arguments: Mapping[str, str] | None,
    attributes_of: AttributesOf | None,
) -> AttributesOf:
    """The function building a call's span attributes: static ones, then the traced
    arguments, then whatever `attributes_of` adds."""
    readers = _argument_readers(func, arguments) if arguments else []

    def build(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, object]:
        found = dict(static)
        for param, inner, attribute, index, default in readers:
            if param in kwargs:
                value = kwargs[param]
            elif 0 <= index < len(args):
                value = args[index]
            else:
                value = default
            for part in inner:
                value = getattr(value, part, None)
            found[attribute] = value
        if attributes_of is not None:
            found.update(attributes_of(owner, args, kwargs))
        return found

    return build


def traced(
    name: str,
    attributes: Mapping[str, object] | None = None,
    *,
    arguments: Mapping[str, str] | None = None,
    attributes_of: AttributesOf | None = None,
    once: bool = False,
    when: Callable[[Any, tuple[Any, ...], dict[str, Any]], bool] | None = None,
) -> Callable[[F], F]:
    """Run a method (sync or async) in span `name` when its instance traces and something
    records; otherwise call straight through, building nothing.

    `attributes` are static; `arguments` maps parameter names to attribute names, read from
    each call (only when a span is made), e.g. `{"projection_name": ATTR_PROJECTION_NAME}`;
    a dotted name reads an attribute of the argument (`{"event.event_id": ATTR_EVENT_ID}`);
    `attributes_of(self, args, kwargs)` adds computed ones. With `once`, a call made inside a
    span of the same name (an override calling `super()`) adds no second span, and decorating
    an already traced function again changes nothing. `when(self, args, kwargs)`, asked only
    when a span could be made, may decline it for a call.

    An instance that does not trace at all (`TracingMixin._init_tracing` with tracing off)
    calls its traced methods undecorated: the wrapper costs it nothing.
    """
    static = dict(attributes or {})

    def decorate(func: F) -> F:
        if once and getattr(func, "__eventsource_span__", None) == name:
            return func
        build = _attributes_builder(func, static, arguments, attributes_of)

        def opened(owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            """The span to run the call in, or None (straight through)."""
            if not _records(owner):
                return None
            if once and getattr(otel_trace.get_current_span(), "name", None) == name:
                return None
            if when is not None and not when(owner, args, kwargs):
                return None
            return span(owner._tracer, name, build(owner, args, kwargs))

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                if (
                    getattr(self, "_tracer", None) is None
                    or not (TRACES.live or TRACES.refresh())
                    or (cm := opened(self, args, kwargs)) is None
                ):
                    return await func(self, *args, **kwargs)
                with cm:
                    return await func(self, *args, **kwargs)

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                if (
                    getattr(self, "_tracer", None) is None
                    or not (TRACES.live or TRACES.refresh())
                    or (cm := opened(self, args, kwargs)) is None
                ):
                    return func(self, *args, **kwargs)
                with cm:
                    return func(self, *args, **kwargs)

            wrapper = sync_wrapper
        wrapper.__eventsource_span__ = name
        return cast(F, wrapper)

    return decorate


def _wrapper_codes() -> frozenset[CodeType]:
    """The code objects of `traced`'s wrappers: a function with one of them is a wrapper
    made here (a user's decorator copying our attributes with `functools.wraps` is not)."""
    probe = traced("probe")

    async def coroutine(self: Any) -> None:
        """A probe."""

    def function(self: Any) -> None:
        """A probe."""

    return frozenset(probe(f).__code__ for f in (coroutine, function))


_WRAPPER_CODES = _wrapper_codes()
_TRACED_METHODS = "_eventsource_traced_methods"


def _traced_methods(cls: type) -> tuple[tuple[str, Callable[..., Any]], ...]:
    """(name, undecorated function) of each `traced` method `cls` resolves to; cached on
    the class itself."""
    found = cls.__dict__.get(_TRACED_METHODS)
    if found is None:
        found = []
        for name in dir(cls):
            attr = inspect.getattr_static(cls, name, None)
            if isinstance(attr, FunctionType) and attr.__code__ in _WRAPPER_CODES:
                raw = attr
                while isinstance(raw, FunctionType) and raw.__code__ in _WRAPPER_CODES:
                    raw = raw.__wrapped__  # type: ignore[attr-defined]
                found.append((name, raw))
        found = tuple(found)
        setattr(cls, _TRACED_METHODS, found)
    return found


def _bind_untraced(owner: object) -> None:
    """The zero-cost path of an instance that does not trace at all: its `traced` methods are
    bound undecorated on the instance, so calls skip the wrapper (one coroutine less per
    call); an instance that traces gets the class's wrappers back."""
    attributes = getattr(owner, "__dict__", None)
    methods = _traced_methods(type(owner))
    if attributes is None or not methods:
        return
    if getattr(owner, "_tracer", None) is None:
        for name, raw in methods:
            attributes[name] = MethodType(raw, owner)
    else:
        for name, _ in methods:
            attributes.pop(name, None)


def spanned_method(func: F, name: str, attributes_of: AttributesOf) -> F:
    """`func` (a method) run in span `name` when its instance traces and something records;
    `attributes_of(self, args, kwargs)` is called only then. The same as
    `traced(name, attributes_of=attributes_of, once=True)(func)`."""
    return traced(name, attributes_of=attributes_of, once=True)(func)


C = TypeVar("C", bound=type)


def trace_methods(spans: Mapping[str, Callable[[Any], Any]]) -> Callable[[C], C]:
    """A class decorator wrapping each method the class itself defines that `spans` names in
    its `traced(...)` decorator: a protocol's spans declared once, for every implementation
    (or applied from a base's `__init_subclass__`)."""

    def decorate(cls: C) -> C:
        for method, decorator in spans.items():
            func = cls.__dict__.get(method)
            if func is not None and not getattr(func, "__isabstractmethod__", False):
                setattr(cls, method, decorator(func))
        return cls

    return decorate


def annotate_current_span(attributes: Mapping[str, object]) -> None:
    """Set attributes on the current span, if something records it."""
    if otel_trace is None or not (TRACES.live or TRACES.refresh()):
        return
    current = otel_trace.get_current_span()
    if current.is_recording():
        current.set_attributes(
            {k: _attribute(v) for k, v in attributes.items() if v is not None}
        )


# -- trace context in message headers -------------------------------------------------------


def _propagator() -> Any:
    from opentelemetry import propagate  # imported on first use: it loads entry points

    return propagate.get_global_textmap()


def propagation_fields() -> tuple[str, ...]:
    """The header names the configured propagator writes (W3C: traceparent, tracestate,
    baggage); empty when nothing records spans."""
    if not (TRACES.live or TRACES.refresh()):
        return ()
    return tuple(sorted(_propagator().fields))


def inject_trace_context(carrier: dict[str, str]) -> dict[str, str]:
    """Write the current trace context (W3C `traceparent`, ...) into `carrier` and return it;
    untouched when nothing records spans or no span is current."""
    if TRACES.live or TRACES.refresh():
        _propagator().inject(carrier)
    return carrier


def extract_trace_context(headers: Mapping[Any, Any] | None) -> Any:
    """The parent context carried by message headers (values may be bytes), for `span(...,
    context=...)`; None when there is none or nothing records spans."""
    if not headers or not (TRACES.live or TRACES.refresh()):
        return None
    propagator = _propagator()
    raw: Any = headers  # str keys, or bytes keys (Redis)
    carrier: dict[str, str] = {}
    for field in propagator.fields:
        value = raw.get(field)
        if value is None:
            value = raw.get(field.encode())
        if isinstance(value, bytes | bytearray):
            carrier[field] = bytes(value).decode(errors="replace")
        elif value is not None:
            carrier[field] = str(value)
    if not carrier:
        return None
    return propagator.extract(carrier)
