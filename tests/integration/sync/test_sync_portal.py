"""The portal and the facades' rules, on the in-memory store: threads, running loops, the
portal's own thread, exceptions, context variables, closing, bad arguments."""

from __future__ import annotations

import asyncio
import threading
import time
import traceback
import uuid
from typing import Any

import pytest
from _sync_support import (
    SyncCounter,
    SyncIncremented,
    counter,
    portal,
    raised_in,
    stale_save,
)

import eventsource.sync.portal as portal_module
from eventsource import AggregateNotFoundError, InMemoryEventStore, OptimisticLockError
from eventsource.stores.interface import EventStore
from eventsource.sync import (
    Portal,
    PortalThreadError,
    SyncAggregateRepository,
    SyncClosedError,
    SyncConfigurationError,
    SyncEventStore,
    SyncSnapshotStore,
)
from eventsource.tenancy import tenant_scope

__all__ = ["portal"]  # fixtures, imported for pytest


def test_many_threads_share_one_store_built_once(portal: Portal) -> None:
    built: list[InMemoryEventStore] = []

    def factory() -> InMemoryEventStore:
        time.sleep(0.05)  # a slow connect: every thread's first call waits for the same one
        built.append(InMemoryEventStore())
        return built[-1]

    store = SyncEventStore(factory, portal=portal)
    barrier = threading.Barrier(16)
    positions: list[int] = []
    failures: list[BaseException] = []

    def writer() -> None:
        barrier.wait()
        for _ in range(50):
            event = SyncIncremented(aggregate_id=uuid.uuid4())
            try:
                result = store.append_events(event.aggregate_id, "SyncCounter", [event], 0)
            except BaseException as exc:
                failures.append(exc)
                return
            positions.append(result.global_position)

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(built) == 1
    assert sorted(positions) == list(range(1, 801))
    assert store.get_global_position() == 800


def test_errors_keep_their_type_attributes_and_traceback(portal: Portal) -> None:
    store = SyncEventStore.in_memory(portal=portal)
    repo = SyncAggregateRepository(store, counter, "SyncCounter")
    _, error = stale_save(repo)
    files = raised_in(error)
    assert any(f.endswith("_sync_support.py") for f in files)  # the caller's frame
    assert any("eventsource/stores" in f for f in files)  # where the store raised it
    with pytest.raises(AggregateNotFoundError) as missing:
        repo.load(uuid.uuid4())
    assert missing.value.aggregate_type == "SyncCounter"


def test_an_error_after_the_call_suspended_keeps_its_type(portal: Portal) -> None:
    async def fails_later(aggregate_id: uuid.UUID) -> None:
        await asyncio.sleep(0.01)  # the rest runs in a Task
        raise OptimisticLockError(aggregate_id, 1, 2)

    aggregate_id = uuid.uuid4()
    with pytest.raises(OptimisticLockError) as caught:
        portal.call(fails_later, aggregate_id)
    assert caught.value.aggregate_id == aggregate_id
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "fails_later" in names
    assert portal.call(asyncio.sleep, 0.01, "done") == "done"


def test_works_inside_a_running_event_loop(portal: Portal) -> None:
    """A notebook cell or an async framework: the caller's thread runs a loop of its own."""
    store = SyncEventStore.in_memory(portal=portal)
    repo = SyncAggregateRepository(store, counter, "SyncCounter")

    async def cell() -> int:
        ticks = asyncio.create_task(asyncio.sleep(0))  # the caller's loop keeps working
        aggregate = repo.load_or_create(uuid.uuid4())
        aggregate.increment()
        aggregate.increment()
        repo.save(aggregate)
        await ticks
        return repo.load(aggregate.aggregate_id).version

    assert asyncio.run(cell()) == 2
    assert asyncio.run(cell()) == 2  # and in a second loop, as a notebook's next cell


def test_a_sync_call_on_the_portals_own_thread_raises_instead_of_hanging(
    portal: Portal,
) -> None:
    store = SyncEventStore.in_memory(portal=portal)

    async def async_handler() -> int:
        assert portal.in_portal_thread()
        return store.get_global_position()  # a sync call where an await belongs

    with pytest.raises(PortalThreadError, match="await the async API"):
        portal.call(async_handler)
    assert not portal.in_portal_thread()
    assert store.get_global_position() == 0  # the portal is fine afterwards


def test_context_variables_go_with_the_call(portal: Portal) -> None:
    store = SyncEventStore.in_memory(portal=portal)
    repo = SyncAggregateRepository(store, counter, "SyncCounter")
    tenant = uuid.uuid4()
    aggregate = repo.create_new(uuid.uuid4())
    aggregate.increment()
    with tenant_scope(tenant):
        repo.save(aggregate)
    [stored] = store.read_all()
    assert stored.event.tenant_id == tenant
    with tenant_scope(uuid.uuid4()):  # another tenant's scope sees nothing of it
        assert store.get_events(aggregate.aggregate_id, "SyncCounter").events == []


def test_close_lets_calls_in_flight_finish_then_refuses_calls() -> None:
    portal = Portal("closing")
    store = SyncEventStore.in_memory(portal=portal)
    store.get_global_position()
    results: list[object] = []
    started = threading.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "finished"

    caller = threading.Thread(target=lambda: results.append(portal.call(slow)))
    caller.start()
    started.wait(5)
    portal.close()
    caller.join(5)
    assert results == ["finished"]
    with pytest.raises(SyncClosedError):
        store.get_global_position()
    with pytest.raises(SyncClosedError):
        portal.call(asyncio.sleep, 0)
    portal.close()  # idempotent


def test_close_cancels_what_overruns_and_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portal_module, "_FINISH_GRACE", 0.1)
    portal = Portal("overrun")
    errors: list[BaseException] = []
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    def caller() -> None:
        try:
            portal.call(forever)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=caller)
    thread.start()
    started.wait(5)
    began = time.monotonic()
    portal.close(timeout=2)
    assert time.monotonic() - began < 5
    thread.join(5)
    assert len(errors) == 1
    assert isinstance(errors[0], SyncClosedError)


def test_a_closed_facade_refuses_calls_and_closes_its_store(portal: Portal) -> None:
    closed: list[bool] = []

    class Closing(InMemoryEventStore):
        async def close(self) -> None:
            closed.append(True)

    store = SyncEventStore(Closing, portal=portal)
    with store:
        assert store.get_global_position() == 0
    assert closed == [True]
    with pytest.raises(SyncClosedError, match="is closed"):
        store.get_global_position()
    store.close()  # idempotent
    assert closed == [True]


def test_what_facades_built_is_closed_when_the_portal_closes() -> None:
    closed: list[str] = []

    class Closing(InMemoryEventStore):
        async def close(self) -> None:
            closed.append("store")

    portal = Portal("closers")
    store = SyncEventStore(Closing, portal=portal)
    snapshots = SyncSnapshotStore.beside(store)
    repo = SyncAggregateRepository(store, counter, "SyncCounter", snapshot_store=snapshots)
    assert not repo.exists(uuid.uuid4())
    portal.close()
    assert closed == ["store"]


def test_wrong_arguments_raise_typed_errors(portal: Portal) -> None:
    with pytest.raises(SyncConfigurationError, match="factory") as not_a_factory:
        SyncEventStore(InMemoryEventStore())  # type: ignore[arg-type]
    assert isinstance(not_a_factory.value, TypeError)
    store = SyncEventStore.in_memory(portal=portal)
    with pytest.raises(SyncConfigurationError, match="needs a SyncEventStore"):
        SyncAggregateRepository(InMemoryEventStore(), counter, "SyncCounter")  # type: ignore[arg-type]
    with Portal("other") as other, pytest.raises(SyncConfigurationError, match="one portal"):
        SyncAggregateRepository(
            store, counter, "SyncCounter", snapshot_store=SyncSnapshotStore.in_memory(portal=other)
        )
    with pytest.raises(ValueError, match="snapshot_threshold"):
        SyncAggregateRepository(store, counter, "SyncCounter", snapshot_threshold=0)
    wrong: Any = lambda: "not a store"  # noqa: E731
    with pytest.raises(SyncConfigurationError, match="a str, which is not an instance of Event"):
        SyncEventStore(wrong, portal=portal).get_global_position()


def test_factories_may_be_async_and_stores_are_initialized(portal: Portal) -> None:
    calls: list[str] = []

    class Initialized(InMemoryEventStore):
        async def initialize(self) -> None:
            calls.append("initialize")

    async def factory() -> EventStore:
        await asyncio.sleep(0)
        calls.append("factory")
        return Initialized()

    store = SyncEventStore(factory, portal=portal).open()
    assert calls == ["factory", "initialize"]
    assert store.get_global_position() == 0
    assert calls == ["factory", "initialize"]


def test_the_aggregate_is_the_callers(portal: Portal) -> None:
    """Loads return plain aggregates; commands run in the caller's thread."""
    repo = SyncAggregateRepository(SyncEventStore.in_memory(portal=portal), counter, "SyncCounter")
    aggregate = repo.load_or_create(uuid.uuid4())
    assert isinstance(aggregate, SyncCounter)
    assert aggregate.version == 0
    repo.save(aggregate)  # nothing to save: no call at all
    aggregate.increment()
    repo.save(aggregate)
    assert repo.get_version(aggregate.aggregate_id) == 1
    assert not aggregate.has_uncommitted_events


def test_a_store_closed_while_it_is_being_built_is_closed_and_refused(portal: Portal) -> None:
    closed: list[bool] = []
    building = threading.Event()

    class Closing(InMemoryEventStore):
        async def close(self) -> None:
            closed.append(True)

    async def slow_factory() -> EventStore:
        building.set()
        await asyncio.sleep(0.3)
        return Closing()

    store = SyncEventStore(slow_factory, portal=portal)
    errors: list[BaseException] = []

    def first_call() -> None:
        try:
            store.get_global_position()
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=first_call)
    caller.start()
    building.wait(5)
    store.close()
    caller.join(5)
    assert [type(e) for e in errors] == [SyncClosedError]
    assert closed == [True]


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="needs the main thread"
)
def test_ctrl_c_while_waiting_cancels_the_call(portal: Portal) -> None:
    import signal

    cancelled = threading.Event()
    started = threading.Event()

    async def long_query() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def press_ctrl_c() -> None:
        started.wait(5)
        time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=press_ctrl_c).start()
    with pytest.raises(KeyboardInterrupt):
        portal.call(long_query)
    assert cancelled.wait(5)
    assert portal.call(asyncio.sleep, 0, "still usable") == "still usable"
