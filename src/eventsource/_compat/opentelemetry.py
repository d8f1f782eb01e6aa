"""The one place that reads OpenTelemetry internals: where the API keeps its global providers.

Hot paths ask "does anything record?" on every call. The public getters answer that, but
`get_tracer_provider()` builds a proxy and may load entry points, so the fast answer reads the
module global OpenTelemetry sets once (`opentelemetry.trace._TRACER_PROVIDER`,
`opentelemetry.metrics._internal._METER_PROVIDER`). Each read is feature-detected: if a release
renames the global, or the environment names a provider to load, the plain fallback asks the
public getter instead, at most once a second. `tests/unit/test_compat_opentelemetry.py` checks
that both ways give the same answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from eventsource._optional import optional

if TYPE_CHECKING:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
    from opentelemetry.metrics import _internal as otel_metrics_internal
else:
    otel_trace = optional("opentelemetry.trace")
    otel_metrics = optional("opentelemetry.metrics")
    otel_metrics_internal = optional("opentelemetry.metrics._internal")

__all__ = ["ProviderSwitch", "metric_switch", "providers_unset_check", "trace_switch"]

_RECHECK_SECONDS = 1.0
_TRACER_SLOT = "_TRACER_PROVIDER"
_METER_SLOT = "_METER_PROVIDER"
_TRACER_ENV = "OTEL_PYTHON_TRACER_PROVIDER"
_METER_ENV = "OTEL_PYTHON_METER_PROVIDER"


def _slot(module: ModuleType | None, name: str, env_var: str, fast: bool) -> str | None:
    """`name` if the private global can be read instead of the public getter, else None."""
    if not fast or module is None or env_var in os.environ or not hasattr(module, name):
        return None
    return name


class ProviderSwitch:
    """Whether a recording global provider (traces or metrics) is configured.

    `live` is read on hot paths; `refresh()` is called only while it is False. A provider is
    final once set (OpenTelemetry refuses a second one), so a seen provider settles the answer.
    `fast=False` forces the plain fallback (the public getter, at most once a second).
    """

    __slots__ = ("_getter", "_module", "_next_check", "_noop", "_slot", "live", "settled")

    def __init__(
        self,
        module: ModuleType | None,
        slot: str,
        getter: Callable[[], object] | None,
        noop_types: tuple[type, ...],
        env_var: str,
        *,
        fast: bool = True,
    ) -> None:
        self.live = False
        self.settled = module is None or getter is None
        self._module = module
        self._slot = _slot(module, slot, env_var, fast)
        self._getter = getter
        self._noop = noop_types
        self._next_check = 0.0

    def refresh(self) -> bool:
        """Look again (cheaply) whether a provider was configured; True if one records."""
        if self.settled:
            return self.live
        if self._slot is not None:
            if getattr(self._module, self._slot) is None:
                return False
        else:
            now = time.monotonic()
            if now < self._next_check:
                return False
            self._next_check = now + _RECHECK_SECONDS
        assert self._getter is not None
        provider = self._getter()
        if self._slot is not None and getattr(self._module, self._slot) is None:
            return False  # only the proxy so far (the environment named nothing loadable)
        if self._slot is None and type(provider).__name__.startswith(("Proxy", "_Proxy")):
            return False
        self.live = not isinstance(provider, self._noop)
        self.settled = True
        return self.live


def trace_switch(*, fast: bool = True) -> ProviderSwitch:
    """The switch of the global `TracerProvider` (settled off without OpenTelemetry)."""
    if otel_trace is None:
        return ProviderSwitch(None, "", None, (), "")
    return ProviderSwitch(
        otel_trace,
        _TRACER_SLOT,
        otel_trace.get_tracer_provider,
        (otel_trace.NoOpTracerProvider, otel_trace.ProxyTracerProvider),
        _TRACER_ENV,
        fast=fast,
    )


def metric_switch(*, fast: bool = True) -> ProviderSwitch:
    """The switch of the global `MeterProvider` (settled off without OpenTelemetry)."""
    if otel_metrics is None or otel_metrics_internal is None:
        return ProviderSwitch(None, "", None, (), "")
    return ProviderSwitch(
        otel_metrics_internal,
        _METER_SLOT,
        otel_metrics.get_meter_provider,
        (otel_metrics.NoOpMeterProvider,),
        _METER_ENV,
        fast=fast,
    )


def providers_unset_check(
    traces: ProviderSwitch, metrics: ProviderSwitch, *, fast: bool = True
) -> Callable[[], bool]:
    """A function telling, as cheaply as possible, that neither a tracer nor a meter provider
    has been set: the "instrumented but nothing records" case, on every hot-path call."""
    trace_slot = _slot(otel_trace, _TRACER_SLOT, _TRACER_ENV, fast)
    meter_slot = _slot(otel_metrics_internal, _METER_SLOT, _METER_ENV, fast)
    if trace_slot is None or meter_slot is None:

        def providers_unset_slowly() -> bool:
            """True when neither traces nor metrics can record (asked of each signal)."""
            return not (traces.refresh() or metrics.refresh())

        return providers_unset_slowly
    trace_module: Any = otel_trace
    metrics_module: Any = otel_metrics_internal

    def providers_unset() -> bool:
        """True when neither traces nor metrics can record: at once while no provider has
        been set, else as the switches say (a no-op provider records nothing either)."""
        if trace_module._TRACER_PROVIDER is None and metrics_module._METER_PROVIDER is None:
            return True
        return not (traces.refresh() or metrics.refresh())

    return providers_unset
