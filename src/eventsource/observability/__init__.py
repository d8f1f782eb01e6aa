"""Tracing: spans when OpenTelemetry is installed and tracing is on, otherwise nothing."""

from __future__ import annotations

from eventsource.observability.tracing import (
    OTEL_AVAILABLE,
    TracingMixin,
    get_tracer,
    should_trace,
    span,
    traced,
)

__all__ = ["OTEL_AVAILABLE", "TracingMixin", "get_tracer", "should_trace", "span", "traced"]
