"""`eventsource._compat.opentelemetry`: reading OpenTelemetry's provider globals (the fast way)
answers exactly as the public getters do (the plain fallback), before and after a provider is
set. Each scenario runs in a child interpreter: OpenTelemetry sets its providers once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("opentelemetry.sdk")

CHILD = textwrap.dedent(
    """
    from opentelemetry import metrics, trace
    from eventsource._compat.opentelemetry import (
        metric_switch, providers_unset_check, trace_switch,
    )

    def answers():
        found = []
        for fast in (True, False):
            traces, meters = trace_switch(fast=fast), metric_switch(fast=fast)
            unset = providers_unset_check(traces, meters, fast=fast)
            found.append((unset(), traces.refresh(), meters.refresh(), traces.settled))
        fast_answer, plain_answer = found
        assert fast_answer == plain_answer, found
        return fast_answer

    before = answers()
    assert before == (True, False, False, False), before
    {setup}
    print(answers())
    """
)

SDK = """
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
metrics.set_meter_provider(MeterProvider())
"""
SDK_TRACES_ONLY = """
from opentelemetry.sdk.trace import TracerProvider
trace.set_tracer_provider(TracerProvider())
"""
NOOP = """
trace.set_tracer_provider(trace.NoOpTracerProvider())
metrics.set_meter_provider(metrics.NoOpMeterProvider())
"""


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("", (True, False, False, False)),
        (SDK, (False, True, True, True)),
        (SDK_TRACES_ONLY, (False, True, False, True)),
        (NOOP, (True, False, False, True)),  # a no-op provider records nothing either
    ],
    ids=["unset", "sdk", "sdk-traces-only", "noop"],
)
def test_the_fallback_answers_as_the_fast_path(setup: str, expected: tuple[bool, ...]) -> None:
    child = CHILD.replace("{setup}", setup)
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(expected)
