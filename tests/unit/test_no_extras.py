"""`import eventsource` needs only pydantic: checked in a child interpreter where every optional
driver is made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = {"sqlalchemy", "asyncpg", "aiosqlite", "redis", "aio_pika", "aiokafka", "nats",
               "opentelemetry", "pytest", "hypothesis"}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import eventsource
    from eventsource.exceptions import SQLiteNotAvailableError

    for name in sorted(eventsource._EXPORTS):
        getattr(eventsource, name)
    assert eventsource.SQLITE_AVAILABLE is False
    assert not hasattr(eventsource, "SQLiteEventStore")
    try:
        eventsource.RedisEventBus()
    except eventsource.RedisNotAvailableError as exc:
        assert isinstance(exc, ImportError) and "eventsource-py[redis]" in str(exc)
    else:
        raise AssertionError("RedisEventBus() built without redis")
    from eventsource.stores.sqlite import SQLiteEventStore
    try:
        SQLiteEventStore(":memory:")
    except SQLiteNotAvailableError as exc:
        assert "eventsource-py[sqlite]" in str(exc)
    else:
        raise AssertionError("SQLiteEventStore() built without aiosqlite")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert loaded == [], loaded
    print("ok")
    """
)


def test_core_imports_without_any_driver() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


WITHOUT_OPENTELEMETRY = textwrap.dedent(
    """
    import asyncio, importlib.abc, sys, uuid

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "opentelemetry":
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    from eventsource import AggregateRepository, InMemoryEventBus, InMemoryEventStore
    from eventsource.observability import (
        OTEL_AVAILABLE, TracingMixin, extract_trace_context, get_meter, get_tracer,
        inject_trace_context, metrics_live, traced, traces_live,
    )
    from eventsource.observability.tracing import NO_SPAN
    from eventsource.subscriptions import SubscriptionManager
    from eventsource.repositories import InMemoryCheckpointRepository

    assert OTEL_AVAILABLE is False and get_tracer("x") is None and get_meter() is None
    assert not traces_live() and not metrics_live()
    store = InMemoryEventStore()  # enable_tracing=True by default: a no-op here
    assert store.tracing_enabled is False
    assert store._append_span(uuid.uuid4(), "T", 1, 0) is NO_SPAN
    assert inject_trace_context({}) == {} and extract_trace_context({"traceparent": "x"}) is None
    SubscriptionManager(store, InMemoryEventBus(), InMemoryCheckpointRepository())

    class Service(TracingMixin):
        def __init__(self):
            self._init_tracing("svc", True)

        @traced("svc.op", arguments={"n": "svc.n"})
        async def op(self, n):
            return n + 1

    assert asyncio.run(Service().op(1)) == 2
    with Service()._create_span_context("svc.block") as given:
        assert given is None
    assert not [m for m in sys.modules if m.startswith("opentelemetry")]
    print("ok")
    """
)


def test_observability_is_a_no_op_without_opentelemetry() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENTELEMETRY],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
