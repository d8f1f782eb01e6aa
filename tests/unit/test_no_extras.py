"""`import eventsource` needs only pydantic, and without a driver every use of it names the
extra to install: checked in a child interpreter where every driver is made unimportable
(aiosqlite too, a dependency of the package: as in a broken install)."""

from __future__ import annotations

import importlib.metadata
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
    from eventsource.exceptions import MissingExtraError
    from eventsource.repositories import sqlite as sqlite_repositories
    from eventsource.snapshots import PostgreSQLSnapshotStore, SQLiteSnapshotStore
    from eventsource.stores.sqlite import SQLiteEventStore

    for name in sorted(eventsource._EXPORTS):
        getattr(eventsource, name)
    assert eventsource.SQLITE_AVAILABLE is False

    def fails(extra, attempt):
        try:
            attempt()
        except MissingExtraError as exc:  # an ImportError that says what to install
            assert isinstance(exc, ImportError) and exc.extra == extra, (extra, exc)
            assert f"pip install 'eventsource-py[{extra}]'" in str(exc), str(exc)
        else:
            raise AssertionError(f"{attempt} worked without the {extra} extra")

    def importing(name):  # the statement a user writes
        return lambda: exec(f"from eventsource import {name}", {})

    for name in sorted(eventsource._SQLITE_EXPORTS):
        fails("sqlite", importing(name))
    fails("sqlite", lambda: SQLiteEventStore(":memory:"))
    fails("sqlite", lambda: SQLiteSnapshotStore(":memory:"))
    fails("sqlite", lambda: sqlite_repositories.SQLiteCheckpointRepository(None))
    for bus, extra in [("Redis", "redis"), ("RabbitMQ", "rabbitmq"), ("Kafka", "kafka"),
                       ("NATS", "nats")]:
        fails(extra, getattr(eventsource, f"{bus}EventBus"))
    for name in ["PostgreSQLEventStore", "PostgreSQLCheckpointRepository",
                 "PostgreSQLDLQRepository", "PostgreSQLOutboxRepository"]:
        fails("postgresql", lambda: getattr(eventsource, name)(object()))
    fails("postgresql", lambda: PostgreSQLSnapshotStore(object()))
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert loaded == [], loaded
    print("ok")
    """
)


def test_sqlite_comes_with_the_package_and_its_extra_still_installs() -> None:
    """SQLite is the embedded default, so aiosqlite is a dependency of the package itself;
    the `sqlite` extra stays for installs that name it."""
    core = [r for r in importlib.metadata.requires("eventsource-py") or [] if ";" not in r]
    assert [r for r in core if r.split(">")[0].split("=")[0].strip() == "aiosqlite"], core
    extras = importlib.metadata.metadata("eventsource-py").get_all("Provides-Extra") or []
    assert "sqlite" in extras


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
