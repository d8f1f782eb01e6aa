"""OpenTelemetry spans and metrics of the in-memory components (API.md §12, §3-§8, §10, §11).

The SDK is real (session-wide providers, in-memory exporter and metric reader; see
tests/otel_support.py). What "zero cost when nothing records" means is checked in child
interpreters, where no provider is set.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any
from uuid import UUID, uuid4

import pytest

from extras import import_extra

import_extra("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from eventsource import (  # noqa: E402
    AggregateRepository,
    InMemoryCheckpointRepository,
    InMemoryDLQRepository,
    InMemoryEventBus,
    InMemoryEventStore,
    InMemoryOutboxRepository,
    OptimisticLockError,
)
from eventsource.bus._codec import event_headers  # noqa: E402
from eventsource.bus._kafka_records import encode as kafka_encode  # noqa: E402
from eventsource.bus._kafka_records import header_list, header_map  # noqa: E402
from eventsource.bus._nats_messages import encode as nats_encode  # noqa: E402
from eventsource.bus._redis_entries import unpack_read  # noqa: E402
from eventsource.observability import (  # noqa: E402
    ATTR_AGGREGATE_ID,
    ATTR_AGGREGATE_TYPE,
    ATTR_DB_OPERATION,
    ATTR_DB_SYSTEM,
    ATTR_ERROR_TYPE,
    ATTR_EVENT_COUNT,
    ATTR_EVENT_ID,
    ATTR_EVENT_TYPE,
    ATTR_EXPECTED_VERSION,
    ATTR_FROM_VERSION,
    ATTR_HANDLER_NAME,
    ATTR_PROJECTION_NAME,
    ATTR_RETRY_COUNT,
    ATTR_SUBSCRIPTION_NAME,
    ATTR_VERSION,
    TracingMixin,
    traced,
)
from eventsource.observability.metrics import (  # noqa: E402
    APPEND_DURATION,
    EVENTS_APPENDED,
    SUBSCRIPTION_LAG,
)
from eventsource.observability.tracing import (  # noqa: E402
    extract_trace_context,
    inject_trace_context,
    span,
)
from eventsource.snapshots import InMemorySnapshotStore, Snapshot, SnapshotStore  # noqa: E402
from eventsource.stores.interface import EventStore  # noqa: E402
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager  # noqa: E402
from eventsource.testing.contract.bus import eventually  # noqa: E402
from otel_support import (  # noqa: E402
    Tally,
    TallyIncremented,
    TallyTotals,
    Telemetry,
    attributes_of,
)

MEMORY = {ATTR_DB_SYSTEM: "in_memory"}
REPOSITORY_LOAD = ("snapshot.used", "snapshot.version", "events.replayed")


def _repository(
    store: EventStore | None = None, **kwargs: Any
) -> AggregateRepository[Tally]:
    return AggregateRepository(store or InMemoryEventStore(), Tally, "OtelTally", **kwargs)


async def _saved_tally(repo: AggregateRepository[Tally], increments: int) -> Tally:
    tally = repo.create_new(uuid4())
    for _ in range(increments):
        tally.increment()
    await repo.save(tally)
    return tally


# -- a save -> append -> publish -> project flow ---------------------------------------------


async def test_save_append_and_projection_spans_nest(telemetry: Telemetry) -> None:
    bus = InMemoryEventBus()
    totals = TallyTotals()  # tracing on (projections default to off)
    bus.subscribe_all(totals)
    repo = _repository(event_publisher=bus)
    tally = await _saved_tally(repo, 2)

    save = telemetry.one("eventsource.repository.save")
    assert save.parent is None
    assert attributes_of(
        save, ATTR_AGGREGATE_ID, ATTR_AGGREGATE_TYPE, ATTR_EVENT_COUNT, ATTR_EXPECTED_VERSION,
        ATTR_VERSION,
    ) == {
        ATTR_AGGREGATE_ID: str(tally.aggregate_id),
        ATTR_AGGREGATE_TYPE: "OtelTally",
        ATTR_EVENT_COUNT: 2,
        ATTR_EXPECTED_VERSION: 0,
        ATTR_VERSION: 2,
    }
    append = telemetry.one("in_memory_event_store.append_events")
    telemetry.assert_child(append, save)
    assert attributes_of(
        append, ATTR_AGGREGATE_ID, ATTR_EVENT_COUNT, ATTR_EXPECTED_VERSION, ATTR_DB_SYSTEM,
        ATTR_DB_OPERATION,
    ) == {
        ATTR_AGGREGATE_ID: str(tally.aggregate_id),
        ATTR_EVENT_COUNT: 2,
        ATTR_EXPECTED_VERSION: 0,
        ATTR_DB_SYSTEM: "in_memory",
        ATTR_DB_OPERATION: "INSERT",
    }

    dispatches = telemetry.spans("eventsource.event_bus.dispatch")
    assert len(dispatches) == 2
    for dispatch in dispatches:
        telemetry.assert_child(dispatch, save)
    # One trace from the save down to the projection's checkpoint.
    assert len({s.context.trace_id for s in telemetry.spans() if s.context}) == 1
    [handle] = telemetry.children(dispatches[0], "eventsource.event_bus.handle")
    [projection] = telemetry.children(handle, "eventsource.projection.handle")
    event = await _first_event(repo, tally.aggregate_id)
    assert attributes_of(projection, ATTR_PROJECTION_NAME, ATTR_EVENT_ID, ATTR_EVENT_TYPE) == {
        ATTR_PROJECTION_NAME: "TallyTotals",
        ATTR_EVENT_ID: str(event.event_id),
        ATTR_EVENT_TYPE: "OtelTallyIncremented",
    }
    [handler] = telemetry.children(projection, "eventsource.projection.handler")
    assert handler.attributes is not None
    assert handler.attributes[ATTR_HANDLER_NAME] == "_on_incremented"
    [checkpoint] = telemetry.children(projection, "eventsource.checkpoint.update_checkpoint")
    assert checkpoint.attributes is not None
    assert checkpoint.attributes[ATTR_PROJECTION_NAME] == "TallyTotals"
    assert totals.totals == {tally.aggregate_id: 2}


async def _first_event(repo: AggregateRepository[Tally], aggregate_id: UUID) -> Any:
    stream = await repo.event_store.get_events(aggregate_id, "OtelTally")
    return stream.events[0]


async def test_load_exists_and_snapshot_spans(telemetry: Telemetry) -> None:
    snapshots = InMemorySnapshotStore()
    repo = _repository(snapshot_store=snapshots, snapshot_mode="manual")
    tally = await _saved_tally(repo, 3)
    await repo.create_snapshot(tally)
    tally.increment()
    await repo.save(tally)
    telemetry.exporter.clear()

    loaded = await repo.load(tally.aggregate_id)
    assert loaded.version == 4
    load = telemetry.one("eventsource.repository.load")
    assert attributes_of(
        load, ATTR_AGGREGATE_ID, ATTR_AGGREGATE_TYPE, ATTR_VERSION, *REPOSITORY_LOAD
    ) == {
        ATTR_AGGREGATE_ID: str(tally.aggregate_id),
        ATTR_AGGREGATE_TYPE: "OtelTally",
        ATTR_VERSION: 4,
        "snapshot.used": True,  # upstream's names (issue 20, group 8)
        "snapshot.version": 3,
        "events.replayed": 1,
    }
    get = telemetry.one("eventsource.snapshot.get")
    telemetry.assert_child(get, load)
    assert attributes_of(get, ATTR_AGGREGATE_ID, ATTR_AGGREGATE_TYPE, ATTR_DB_SYSTEM) == {
        ATTR_AGGREGATE_ID: str(tally.aggregate_id),
        ATTR_AGGREGATE_TYPE: "OtelTally",
        ATTR_DB_SYSTEM: "in_memory",
    }
    read = telemetry.one("in_memory_event_store.get_events")
    telemetry.assert_child(read, load)
    assert read.attributes is not None
    assert read.attributes[ATTR_FROM_VERSION] == 3  # the tail after the snapshot
    assert read.attributes[ATTR_DB_OPERATION] == "SELECT"

    telemetry.exporter.clear()
    await repo.create_snapshot(loaded)
    create = telemetry.one("eventsource.repository.create_snapshot")
    save = telemetry.one("eventsource.snapshot.save")
    telemetry.assert_child(save, create)
    assert attributes_of(save, ATTR_AGGREGATE_ID, ATTR_VERSION) == {
        ATTR_AGGREGATE_ID: str(tally.aggregate_id),
        ATTR_VERSION: 4,
    }

    telemetry.exporter.clear()
    assert await repo.exists(tally.aggregate_id)
    assert not await repo.exists(uuid4())
    [found, missing] = telemetry.spans("eventsource.repository.exists")
    assert found.attributes == {
        ATTR_AGGREGATE_ID: str(tally.aggregate_id),
        ATTR_AGGREGATE_TYPE: "OtelTally",
        "exists": True,
    }
    assert missing.attributes is not None
    assert missing.attributes["exists"] is False


async def test_load_without_a_snapshot_says_so(telemetry: Telemetry) -> None:
    repo = _repository(snapshot_store=InMemorySnapshotStore(), snapshot_mode="manual")
    tally = await _saved_tally(repo, 3)
    telemetry.exporter.clear()
    await _repository(repo.event_store).load(tally.aggregate_id)  # no snapshot store at all
    await repo.load(tally.aggregate_id)  # a store without a snapshot of it
    for load in telemetry.spans("eventsource.repository.load"):
        assert attributes_of(load, *REPOSITORY_LOAD) == {
            "snapshot.used": False,
            "snapshot.version": None,
            "events.replayed": 3,
        }


async def test_projections_do_not_trace_by_default(telemetry: Telemetry) -> None:
    bus = InMemoryEventBus()
    totals = TallyTotals(enable_tracing=False)
    bus.subscribe_all(totals)
    await _saved_tally(_repository(event_publisher=bus), 1)
    names = telemetry.names()
    assert "eventsource.event_bus.handle" in names
    assert not [n for n in names if n.startswith(("eventsource.projection", "eventsource.checkp"))]
    assert totals.tracing_enabled is False


async def test_enable_tracing_false_records_no_span_and_no_metric(telemetry: Telemetry) -> None:
    store = InMemoryEventStore(enable_tracing=False)
    bus = InMemoryEventBus(enable_tracing=False)
    bus.subscribe_all(TallyTotals(enable_tracing=False))
    repo = _repository(store, event_publisher=bus, enable_tracing=False)
    tally = await _saved_tally(repo, 3)
    await repo.load(tally.aggregate_id)
    assert telemetry.names() == []
    assert telemetry.counter_delta(EVENTS_APPENDED, MEMORY) == 0
    assert telemetry.histogram_delta(APPEND_DURATION, MEMORY) == (0, 0.0)


async def test_a_failed_append_is_an_error_span_with_its_type(telemetry: Telemetry) -> None:
    store = InMemoryEventStore()
    aggregate_id = uuid4()
    event = TallyIncremented(aggregate_id=aggregate_id, aggregate_version=1)
    with pytest.raises(OptimisticLockError):
        await store.append_events(aggregate_id, "OtelTally", [event], 5)
    failed = telemetry.one("in_memory_event_store.append_events")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes[ATTR_ERROR_TYPE] == "OptimisticLockError"
    assert [e.name for e in failed.events] == ["exception"]
    failure = {**MEMORY, ATTR_ERROR_TYPE: "OptimisticLockError"}
    assert telemetry.histogram_delta(APPEND_DURATION, failure)[0] == 1
    assert telemetry.counter_delta(EVENTS_APPENDED, MEMORY) == 0


async def test_append_metrics_count_calls_events_and_time(telemetry: Telemetry) -> None:
    store = InMemoryEventStore()
    for size in (1, 2, 5):
        aggregate_id = uuid4()
        events = [
            TallyIncremented(aggregate_id=aggregate_id, aggregate_version=v + 1)
            for v in range(size)
        ]
        await store.append_events(aggregate_id, "OtelTally", events, 0)
    count, seconds = telemetry.histogram_delta(APPEND_DURATION, MEMORY)
    assert count == 3
    assert seconds > 0.0
    assert telemetry.counter_delta(EVENTS_APPENDED, MEMORY) == 8


# -- snapshot stores: spans come from the SnapshotStore base -----------------------------------


class DictSnapshotStore(TracingMixin, SnapshotStore):
    """A third-party store that writes no tracing code: the base class traces it."""

    def __init__(self) -> None:
        self._init_tracing(__name__)
        self.rows: dict[tuple[UUID, str], Snapshot] = {}

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        self.rows[(snapshot.aggregate_id, snapshot.aggregate_type)] = snapshot

    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        return self.rows.get((aggregate_id, aggregate_type))

    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        return self.rows.pop((aggregate_id, aggregate_type), None) is not None


class AuditedSnapshotStore(InMemorySnapshotStore):
    """Overrides a traced method and calls super(): still one span."""

    saved = 0

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        self.saved += 1
        await super().save_snapshot(snapshot)


def _snapshot(aggregate_id: UUID) -> Snapshot:
    from datetime import UTC, datetime

    return Snapshot(aggregate_id, "OtelTally", 7, {"total": 7}, 1, datetime.now(UTC))


async def test_every_snapshot_store_gets_the_four_spans(telemetry: Telemetry) -> None:
    store = DictSnapshotStore()
    aggregate_id = uuid4()
    await store.save_snapshot(_snapshot(aggregate_id))
    assert await store.get_snapshot(aggregate_id, "OtelTally") is not None
    assert await store.snapshot_exists(aggregate_id, "OtelTally")  # the base's default
    assert await store.delete_snapshot(aggregate_id=aggregate_id, aggregate_type="OtelTally")
    assert telemetry.names() == [
        "eventsource.snapshot.save",
        "eventsource.snapshot.get",
        "eventsource.snapshot.get",
        "eventsource.snapshot.exists",
        "eventsource.snapshot.delete",
    ]
    exists = telemetry.one("eventsource.snapshot.exists")
    inner_get = telemetry.spans("eventsource.snapshot.get")[1]
    telemetry.assert_child(inner_get, exists)
    delete = telemetry.one("eventsource.snapshot.delete")
    assert attributes_of(delete, ATTR_AGGREGATE_ID, ATTR_AGGREGATE_TYPE, ATTR_DB_SYSTEM) == {
        ATTR_AGGREGATE_ID: str(aggregate_id),
        ATTR_AGGREGATE_TYPE: "OtelTally",
        ATTR_DB_SYSTEM: None,  # not an eventsource.snapshots module, no db_system attribute
    }

    telemetry.exporter.clear()
    audited = AuditedSnapshotStore()
    await audited.save_snapshot(_snapshot(aggregate_id))
    assert audited.saved == 1
    assert telemetry.names() == ["eventsource.snapshot.save"]

    telemetry.exporter.clear()
    silent = InMemorySnapshotStore(enable_tracing=False)
    await silent.save_snapshot(_snapshot(aggregate_id))
    await silent.snapshot_exists(aggregate_id, "OtelTally")
    assert telemetry.names() == []


# -- checkpoints, dead letters, outbox ---------------------------------------------------------


async def test_checkpoint_dlq_and_outbox_spans(telemetry: Telemetry) -> None:
    event = TallyIncremented(aggregate_id=uuid4(), aggregate_version=1)
    checkpoints = InMemoryCheckpointRepository()
    await checkpoints.update_checkpoint("Totals", event.event_id, event.event_type)
    await checkpoints.get_checkpoint(projection_name="Totals")
    await checkpoints.reset_checkpoint("Totals")
    assert telemetry.names() == [
        "eventsource.checkpoint.update_checkpoint",
        "eventsource.checkpoint.get_checkpoint",
        "eventsource.checkpoint.reset_checkpoint",
    ]
    update = telemetry.spans()[0]
    assert attributes_of(update, ATTR_PROJECTION_NAME, ATTR_EVENT_ID, ATTR_EVENT_TYPE) == {
        ATTR_PROJECTION_NAME: "Totals",
        ATTR_EVENT_ID: str(event.event_id),
        ATTR_EVENT_TYPE: "OtelTallyIncremented",
    }
    assert telemetry.spans()[1].attributes == {ATTR_PROJECTION_NAME: "Totals"}

    telemetry.exporter.clear()
    dlq = InMemoryDLQRepository()
    await dlq.add_failed_event(
        event.event_id, "Totals", event.event_type, {}, ValueError("boom"), retry_count=3
    )
    [entry] = await dlq.get_failed_events()
    await dlq.mark_retrying(entry.id)
    await dlq.mark_resolved(entry.id, "ops")
    assert telemetry.names() == [
        "eventsource.dlq.add",
        "eventsource.dlq.get",
        "eventsource.dlq.retry",
        "eventsource.dlq.resolve",
    ]
    add = telemetry.one("eventsource.dlq.add")
    assert attributes_of(add, ATTR_EVENT_ID, ATTR_PROJECTION_NAME, ATTR_RETRY_COUNT) == {
        ATTR_EVENT_ID: str(event.event_id),
        ATTR_PROJECTION_NAME: "Totals",
        ATTR_RETRY_COUNT: 3,
    }

    telemetry.exporter.clear()
    outbox = InMemoryOutboxRepository()
    outbox_id = await outbox.add_event(event)
    await outbox.get_pending_events(limit=10)
    await outbox.mark_published(outbox_id)
    assert telemetry.names() == [
        "eventsource.outbox.add",
        "eventsource.outbox.get_pending",
        "eventsource.outbox.mark_published",
    ]
    assert attributes_of(telemetry.spans()[0], ATTR_EVENT_ID, ATTR_EVENT_TYPE) == {
        ATTR_EVENT_ID: str(event.event_id),
        ATTR_EVENT_TYPE: "OtelTallyIncremented",
    }


async def test_a_projection_that_retries_records_the_retry_count(telemetry: Telemetry) -> None:
    from eventsource.projections.retry import ExponentialBackoffRetryPolicy
    from eventsource.subscriptions.retry import RetryConfig

    class Flaky(TallyTotals):
        def __init__(self) -> None:
            super().__init__()
            self._retry_policy = ExponentialBackoffRetryPolicy(
                RetryConfig(max_retries=2, initial_delay=0.001, max_delay=0.001, jitter=0.0)
            )
            self.failures = 2

        async def _on_incremented(self, event: TallyIncremented) -> None:
            if self.failures:
                self.failures -= 1
                raise ConnectionError("flaky read model")
            await super()._on_incremented(event)

    flaky = Flaky()
    await flaky.handle(TallyIncremented(aggregate_id=uuid4(), aggregate_version=1))
    handle = telemetry.one("eventsource.projection.handle")
    assert handle.attributes is not None
    assert handle.attributes[ATTR_RETRY_COUNT] == 2
    handlers = telemetry.children(handle, "eventsource.projection.handler")
    assert [h.status.status_code for h in handlers] == [
        StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET,
    ]
    assert handlers[0].attributes is not None
    assert handlers[0].attributes[ATTR_ERROR_TYPE] == "ConnectionError"


# -- the decorator of API.md §12 -----------------------------------------------------------------


class Service(TracingMixin):
    def __init__(self, enable_tracing: bool = True) -> None:
        self._init_tracing("tests.service", enable_tracing)

    @traced("service.sync", {"static": "yes"}, arguments={"amount": "service.amount"})
    def charge(self, amount: int, note: str = "") -> int:
        return amount * 2

    @traced(
        "service.async",
        arguments={"event.event_type": ATTR_EVENT_TYPE, "note": "service.note"},
    )
    async def record(self, event: TallyIncremented, note: str = "none") -> str:
        await asyncio.sleep(0)
        return note


async def test_traced_spans_with_static_and_argument_attributes(telemetry: Telemetry) -> None:
    service = Service()
    assert service.charge(21) == 42
    assert service.charge(amount=5) == 10
    event = TallyIncremented(aggregate_id=uuid4(), aggregate_version=1)
    assert await service.record(event) == "none"
    assert await service.record(event=event, note="hi") == "hi"
    spans = telemetry.spans()
    assert [(s.name, dict(s.attributes or {})) for s in spans] == [
        ("service.sync", {"static": "yes", "service.amount": 21}),
        ("service.sync", {"static": "yes", "service.amount": 5}),
        ("service.async", {ATTR_EVENT_TYPE: "OtelTallyIncremented", "service.note": "none"}),
        ("service.async", {ATTR_EVENT_TYPE: "OtelTallyIncremented", "service.note": "hi"}),
    ]
    telemetry.exporter.clear()
    quiet = Service(enable_tracing=False)
    assert quiet.charge(1) == 2
    assert await quiet.record(event) == "none"
    assert telemetry.names() == []


def test_traced_names_a_parameter_that_does_not_exist() -> None:
    with pytest.raises(TypeError, match="has no parameter 'amount'"):

        @traced("broken", arguments={"amount": "x"})
        def charge(self: object, total: int) -> int:
            return total


# -- subscriptions ---------------------------------------------------------------------------


async def test_projection_handle_nests_in_the_subscription_batch(telemetry: Telemetry) -> None:
    store = InMemoryEventStore()
    repo = _repository(store)
    tally = await _saved_tally(repo, 3)
    totals = TallyTotals()
    manager = SubscriptionManager(store, None, InMemoryCheckpointRepository())
    await manager.subscribe(totals, SubscriptionConfig(start_from="beginning"), name="totals")
    async with manager:
        await _until(lambda: totals.totals.get(tally.aggregate_id) == 3)
    # The first page after start() is one event (start() waits for it), then the other two.
    batches = telemetry.spans("eventsource.subscription.batch")
    assert [b.attributes[ATTR_SUBSCRIPTION_NAME] for b in batches  # type: ignore[index]
            ] == ["totals", "totals"]
    assert [b.attributes[ATTR_EVENT_COUNT] for b in batches] == [1, 2]  # type: ignore[index]
    handles = telemetry.spans("eventsource.projection.handle")
    assert len(handles) == 3
    for handle, batch in zip(handles, (batches[0], batches[1], batches[1]), strict=True):
        telemetry.assert_child(handle, batch)


async def _until(check: Any, timeout: float = 10.0) -> None:
    await eventually(check, "the subscription to catch up", timeout)


async def test_subscription_lag_gauge_reports_unprocessed_events(telemetry: Telemetry) -> None:
    store = InMemoryEventStore()
    await _saved_tally(_repository(store), 5)
    release = asyncio.Event()

    class Stuck:
        def subscribed_to(self) -> list[type]:
            return [TallyIncremented]

        async def handle(self, event: object) -> None:
            await release.wait()

    manager = SubscriptionManager(store, None, InMemoryCheckpointRepository())
    name = f"stuck-{uuid4().hex[:6]}"
    subscription = await manager.subscribe(Stuck(), SubscriptionConfig(start_from="beginning"),
                                           name=name)
    async with manager:
        await _until(lambda: subscription.lag == 5)
        assert telemetry.gauge(SUBSCRIPTION_LAG, {ATTR_SUBSCRIPTION_NAME: name}) == 5
        release.set()
        await _until(lambda: subscription.events_processed == 5)
        assert telemetry.gauge(SUBSCRIPTION_LAG, {ATTR_SUBSCRIPTION_NAME: name}) == 0


# -- trace context in message headers (the driver-free half; brokers: tests/contract) ----------


async def test_trace_context_travels_in_every_codec(telemetry: Telemetry) -> None:
    tracer = trace.get_tracer("tests")
    event = TallyIncremented(aggregate_id=uuid4(), aggregate_version=1)
    with span(tracer, "publisher", kind="producer") as publisher:
        carrier = inject_trace_context({})
    assert set(carrier) >= {"traceparent"}
    context = publisher.get_span_context()

    headers = event_headers(event, carrier)
    _, _, kafka_headers = kafka_encode(event, carrier)
    _, nats_headers = nats_encode(event, carrier)
    over_the_wire = header_map(header_list(kafka_headers))  # Kafka headers are bytes
    [(_, redis_fields)] = unpack_read(
        [b"1-0", 1, b"T", b"id", b"{}", [b"traceparent", carrier["traceparent"].encode()]]
    )
    for received in (headers, over_the_wire, nats_headers, redis_fields):
        with span(tracer, "consumer", kind="consumer",
                  context=extract_trace_context(received)):
            pass
    consumers = telemetry.spans("consumer")
    assert len(consumers) == 4
    for consumer in consumers:
        assert consumer.kind is SpanKind.CONSUMER
        assert consumer.context is not None
        assert consumer.parent is not None
        assert consumer.context.trace_id == context.trace_id
        assert consumer.parent.span_id == context.span_id
    assert extract_trace_context({"event_id": "x"}) is None
    assert extract_trace_context(None) is None
    assert inject_trace_context({}) == {}  # no current span, nothing to carry


# -- zero cost when nothing records: in child interpreters without providers --------------------

NO_PROVIDER = textwrap.dedent(
    """
    import asyncio, uuid
    from eventsource import AggregateRepository, InMemoryEventBus, InMemoryEventStore
    from eventsource.observability.metrics import metrics_live, providers_unset
    from eventsource.observability.tracing import (
        NO_SPAN, inject_trace_context, propagation_fields, traces_live,
    )

    store = InMemoryEventStore()
    bus = InMemoryEventBus()
    repo = AggregateRepository(store, lambda i: None, "T")
    aggregate_id = uuid.uuid4()
    assert store.tracing_enabled and bus.tracing_enabled   # asked for ...
    assert not traces_live() and not metrics_live() and providers_unset()   # ... nothing records
    assert store._append_span(aggregate_id, "T", 1, 0) is NO_SPAN
    assert store._read_span(aggregate_id, "T", 0) is NO_SPAN
    assert not store._tracing_live() and not bus._tracing_live() and not repo._tracing_live()
    assert inject_trace_context({}) == {} and propagation_fields() == ()
    # A span handed to user code is OpenTelemetry's non-recording one (None when tracing is off).
    with repo._create_span_context("user.span", {"a": 1}) as given:
        assert given is not None and not given.is_recording()
        given.set_attribute("b", 2)
    quiet = AggregateRepository(store, lambda i: None, "T", enable_tracing=False)
    with quiet._create_span_context("user.span") as given:
        assert given is None

    {after}
    print("ok")
    """
)

THEN_AN_SDK = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
assert traces_live() and not metrics_live()
# The store was built before the provider: its proxy tracer records now.
assert store._append_span(aggregate_id, "T", 1, 0) is not NO_SPAN
asyncio.run(store.get_events(aggregate_id, "T"))
assert [s.name for s in exporter.get_finished_spans()] == ["in_memory_event_store.get_events"]
assert "traceparent" in propagation_fields()
"""

THEN_A_NOOP = """
from opentelemetry import trace
trace.set_tracer_provider(trace.NoOpTracerProvider())
assert not traces_live()
assert store._append_span(aggregate_id, "T", 1, 0) is NO_SPAN
"""


@pytest.mark.parametrize("after", ["", THEN_AN_SDK, THEN_A_NOOP], ids=["none", "sdk", "noop"])
def test_nothing_is_built_until_a_provider_records(after: str) -> None:
    child = NO_PROVIDER.replace("{after}", after)
    result = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
