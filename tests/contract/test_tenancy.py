"""Tenant isolation matrix: inside `tenant_scope(A)` nothing of tenant B can be read through any
public read path, on every backend; outside any scope everything is visible (API.md §9).

Each test seeds tenants A and B (events through the repository and directly, checkpoints,
dead letters, outbox rows) plus tenant-less rows written outside any scope, then reads every
path in scope A, in scope B and unscoped. A new backend adds one `open_world` branch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from eventsource import (
    AggregateNotFoundError,
    AggregateRepository,
    DeclarativeAggregate,
    DomainEvent,
    EventStore,
    ExpectedVersion,
    InMemoryEventStore,
    OptimisticLockError,
    ReadDirection,
    ReadOptions,
    current_tenant,
    handles,
    register_event,
    tenant_scope,
)
from eventsource.exceptions import TenantMismatchError
from eventsource.repositories.checkpoint import scoped_checkpoint_name
from eventsource.snapshots import InMemorySnapshotStore, SnapshotStore

BACKENDS = [
    "memory",
    "sqlite-memory",
    "sqlite-file",
    "sqlite-file-hop",
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]
A = UUID("aaaaaaaa-0000-4000-8000-00000000000a")
B = UUID("bbbbbbbb-0000-4000-8000-00000000000b")
TENANTS: list[UUID | None] = [A, B, None]
TYPES = ["Counter", "Ledger"]


@register_event
class Counted(DomainEvent):
    event_type: str = "TenancyCounted"
    aggregate_type: str = "Counter"
    n: int


class CounterState(BaseModel):
    total: int = 0


class Counter(DeclarativeAggregate[CounterState]):
    aggregate_type = "Counter"

    def _get_initial_state(self) -> CounterState:
        return CounterState()

    @handles(Counted)
    def _on_counted(self, event: Counted) -> None:
        self._state = CounterState(total=(self._state or CounterState()).total + event.n)

    def add(self, n: int) -> None:
        self.apply_event(
            Counted(aggregate_id=self.aggregate_id, n=n, aggregate_version=self.get_next_version())
        )


# -- one world per backend: a store and the repositories, all on the same database ----------


@dataclass
class World:
    backend: str
    store: EventStore
    checkpoints: Any
    dlq: Any
    outbox: Any
    snapshots: SnapshotStore

    def repository(self, snapshot_store: SnapshotStore | None = None) -> AggregateRepository[Any]:
        return AggregateRepository(
            self.store, Counter, "Counter", snapshot_store=snapshot_store, enable_tracing=False
        )


@asynccontextmanager
async def open_world(backend: str, tmp_path: Path) -> AsyncIterator[World]:
    if backend == "memory":
        from eventsource.repositories import (
            InMemoryCheckpointRepository,
            InMemoryDLQRepository,
            InMemoryOutboxRepository,
        )

        yield World(
            backend,
            InMemoryEventStore(enable_tracing=False),
            InMemoryCheckpointRepository(),
            InMemoryDLQRepository(),
            InMemoryOutboxRepository(),
            InMemorySnapshotStore(enable_tracing=False),
        )
    elif backend.startswith("sqlite"):
        from eventsource.repositories.sqlite import (
            SQLiteCheckpointRepository,
            SQLiteDLQRepository,
            SQLiteOutboxRepository,
        )
        from eventsource.snapshots.sqlite import SQLiteSnapshotStore
        from eventsource.stores.sqlite import SQLiteEventStore

        if backend == "sqlite-memory":
            database_path = ":memory:"
            store = SQLiteEventStore(database_path, wal_mode=False, enable_tracing=False)
        else:
            database_path = str(tmp_path / f"tenancy-{uuid.uuid4().hex[:8]}.db")
            store = SQLiteEventStore(
                database_path,
                enable_tracing=False,
                inline=backend != "sqlite-file-hop",
            )
        async with store, SQLiteSnapshotStore(database_path, enable_tracing=False) as snaps:
            await store.initialize()
            yield World(
                backend,
                store,
                SQLiteCheckpointRepository(store),
                SQLiteDLQRepository(store),
                SQLiteOutboxRepository(store),
                snaps,
            )
    elif backend == "postgresql":
        from eventsource.repositories.postgresql import (
            PostgreSQLCheckpointRepository,
            PostgreSQLDLQRepository,
            PostgreSQLOutboxRepository,
        )
        from eventsource.snapshots.postgresql import PostgreSQLSnapshotStore
        from eventsource.stores.postgresql import PostgreSQLEventStore

        async with _postgresql() as sessions:
            pg_store = PostgreSQLEventStore(sessions, enable_tracing=False)
            await pg_store.initialize()
            try:
                yield World(
                    backend,
                    pg_store,
                    PostgreSQLCheckpointRepository(sessions),
                    PostgreSQLDLQRepository(sessions),
                    PostgreSQLOutboxRepository(sessions),
                    PostgreSQLSnapshotStore(sessions, enable_tracing=False),
                )
            finally:
                await pg_store.close()
    else:
        raise ValueError(f"unknown backend {backend!r}")


@asynccontextmanager
async def _postgresql() -> AsyncIterator[Any]:
    """A session factory on a fresh schema, dropped afterwards."""
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from conftest import require_postgres

    url = require_postgres()
    schema = f"tn_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        engine = create_async_engine(
            url.replace("postgresql://", "postgresql+asyncpg://", 1),
            pool_size=5,
            max_overflow=5,
            connect_args={"server_settings": {"search_path": schema}},
        )
        try:
            yield async_sessionmaker(engine, expire_on_commit=False)
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        from conftest import require_postgres

        require_postgres()
    return str(request.param)


@pytest.fixture
async def world(backend: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(backend, tmp_path) as opened:
        yield opened


# -- the seed ----------------------------------------------------------------------------


@dataclass
class Seed:
    """What each tenant owns (key None: rows written outside any scope, tenant-less)."""

    counters: dict[UUID | None, UUID] = field(default_factory=dict)
    counter_events: dict[UUID | None, list[UUID]] = field(default_factory=dict)
    ledgers: dict[UUID | None, UUID] = field(default_factory=dict)
    ledger_events: dict[UUID | None, UUID] = field(default_factory=dict)
    originals: dict[UUID | None, list[DomainEvent]] = field(default_factory=dict)

    def events(self, tenant: UUID | None) -> set[UUID]:
        return {*self.counter_events[tenant], self.ledger_events[tenant]}

    @property
    def all_events(self) -> set[UUID]:
        return set().union(*(self.events(t) for t in TENANTS))

    def visible(self, scope: UUID | None) -> set[UUID]:
        """What a reader in `scope` may see: everything unscoped, else the scope's own."""
        return self.all_events if scope is None else self.events(scope)

    def streams(self) -> list[tuple[UUID | None, UUID, str]]:
        """(owner, aggregate id, aggregate type) of every seeded stream."""
        return [
            *((t, a, "Counter") for t, a in self.counters.items()),
            *((t, a, "Ledger") for t, a in self.ledgers.items()),
        ]


class _Unscoped:
    """`with scope(None):` — no tenant bound (so tests can loop over scopes)."""

    def __enter__(self) -> None:
        assert current_tenant() is None

    def __exit__(self, *exc: object) -> None:
        return None


def scope(tenant: UUID | None) -> Any:
    return tenant_scope(tenant) if tenant is not None else _Unscoped()


def _error(message: str) -> RuntimeError:
    try:
        raise RuntimeError(message)  # noqa: TRY301 - a raised error carries a traceback
    except RuntimeError as exc:
        return exc


async def seed_world(w: World) -> Seed:
    """Per tenant (and once outside any scope): a two-event Counter saved through the
    repository (its events tenant-less, so the scope stamps them), a one-event Ledger appended
    directly (the event carrying its tenant), a checkpoint "Proj", a position "Sub", a dead
    letter and an outbox row."""
    seed = Seed()
    repo = w.repository()
    for n, tenant in enumerate(TENANTS, start=1):
        with scope(tenant):
            counter = repo.create_new(uuid4())
            counter.add(n)
            counter.add(10 * n)
            originals = list(counter.uncommitted_events)
            await repo.save(counter)
            ledger = uuid4()
            ledger_event = Counted(
                aggregate_id=ledger, aggregate_type="Ledger", n=n, tenant_id=tenant
            )
            await w.store.append_events(ledger, "Ledger", [ledger_event], ExpectedVersion.NO_STREAM)
            seed.counters[tenant], seed.ledgers[tenant] = counter.aggregate_id, ledger
            seed.counter_events[tenant] = [e.event_id for e in originals]
            seed.ledger_events[tenant] = ledger_event.event_id
            seed.originals[tenant] = originals
            first, second = originals
            await w.checkpoints.update_checkpoint(
                projection_name="Proj", event_id=first.event_id, event_type=first.event_type
            )
            await w.checkpoints.save_position("Sub", 100 * n, second.event_id, second.event_type)
            await w.dlq.add_failed_event(
                event_id=first.event_id,
                projection_name="Proj",
                event_type=first.event_type,
                event_data=first.model_dump(mode="json"),  # tenant_id None: stamped in scope
                error=_error(f"failed {n}"),
                retry_count=n,
            )
            await w.outbox.add_event(second)  # tenant-less: stamped in scope
    return seed


# -- every public read path of a store ----------------------------------------------------


async def store_read_paths(store: EventStore, seed: Seed) -> dict[str, set[UUID]]:
    """The event ids each public read path of `store` returns, in the current scope."""
    paths: dict[str, set[UUID]] = {}
    paths["read_all awaited"] = {s.event_id for s in (await store.read_all()).events}
    paths["read_all async for"] = {s.event_id async for s in store.read_all()}
    backward = ReadOptions(direction=ReadDirection.BACKWARD)
    paths["read_all backward"] = {s.event_id for s in (await store.read_all(backward)).events}
    paged: set[UUID] = set()
    position = 0
    while True:  # one event per page, each resuming after the last position seen
        page = (await store.read_all(ReadOptions(from_position=position, limit=1))).events
        if not page:
            break
        paged.add(page[0].event_id)
        position = page[0].global_position
    paths["read_all paged"] = paged
    committed: set[UUID] = set()
    cursor: str | None = None
    while True:
        chunk = await store.read_committed(cursor, limit=2)
        if not chunk.events:
            break
        committed |= {s.event_id for s in chunk.events}
        cursor = chunk.cursor
    paths["read_committed"] = committed
    for label in ("get_events_by_type", "get_events_by_type(A)", "get_events_by_type(B)",
                  "get_events typed", "get_events untyped", "get_events from_version=1",
                  "read_stream typed", "read_stream bare id"):
        paths[label] = set()
    for aggregate_type in TYPES:
        found = await store.get_events_by_type(aggregate_type)
        paths["get_events_by_type"] |= {e.event_id for e in found}
        for tenant, name in ((A, "A"), (B, "B")):
            found = await store.get_events_by_type(aggregate_type, tenant_id=tenant)
            paths[f"get_events_by_type({name})"] |= {e.event_id for e in found}
    for _owner, aggregate_id, aggregate_type in seed.streams():
        stream = await store.get_events(aggregate_id, aggregate_type)
        paths["get_events typed"] |= {e.event_id for e in stream.events}
        untyped = await store.get_events(aggregate_id)
        paths["get_events untyped"] |= {e.event_id for e in untyped.events}
        later = await store.get_events(aggregate_id, aggregate_type, from_version=1)
        paths["get_events from_version=1"] |= {e.event_id for e in later.events}
        typed = await store.read_stream(f"{aggregate_id}:{aggregate_type}")
        paths["read_stream typed"] |= {s.event_id for s in typed.events}
        paths["read_stream bare id"] |= {
            s.event_id async for s in store.read_stream(str(aggregate_id))
        }
    paths["event_exists"] = {i for i in seed.all_events if await store.event_exists(i)}
    if isinstance(store, InMemoryEventStore):
        paths["get_all_events"] = {e.event_id for e in await store.get_all_events()}
    return paths


def expected_paths(seed: Seed, tenant: UUID | None) -> dict[str, set[UUID]]:
    mine = seed.visible(tenant)
    seen = TENANTS if tenant is None else [tenant]
    expected = {
        "get_events_by_type(A)": seed.events(A) if tenant in (None, A) else set(),
        "get_events_by_type(B)": seed.events(B) if tenant in (None, B) else set(),
        "get_events from_version=1": {seed.counter_events[t][1] for t in seen},
    }
    for label in ("read_all awaited", "read_all async for", "read_all backward",
                  "read_all paged", "read_committed", "get_events_by_type", "get_events typed",
                  "get_events untyped", "read_stream typed", "read_stream bare id",
                  "event_exists", "get_all_events"):
        expected[label] = mine
    return expected


async def check_store(w: World, seed: Seed, tenant: UUID | None) -> None:
    """Every read path of the store, in the current scope (bound to `tenant`)."""
    store = w.store
    paths = await store_read_paths(store, seed)
    expected = expected_paths(seed, tenant)
    for label, ids in paths.items():
        assert ids == expected[label], f"{label} in scope {tenant}"
    everything = (await store.read_all()).events
    if tenant is not None:  # stamped and returned with the tenant, whatever the backend
        assert {s.event.tenant_id for s in everything} == {tenant}
    positions = [s.global_position for s in everything]
    assert await store.get_global_position() == max(positions)
    assert await store.committed_lag(None) == len(seed.visible(tenant))
    for owner, aggregate_id, aggregate_type in seed.streams():
        visible = tenant is None or owner == tenant
        size = 2 if aggregate_type == "Counter" else 1
        assert await store.get_stream_version(aggregate_id, aggregate_type) == (
            size if visible else 0
        )
        stream = await store.get_events(aggregate_id, aggregate_type)
        assert (stream.version, len(stream.events)) == ((size, size) if visible else (0, 0))
        untyped = await store.get_events(aggregate_id)
        assert untyped.aggregate_type == (aggregate_type if visible else "Unknown")
    if isinstance(store, InMemoryEventStore):
        assert await store.get_event_count() == len(seed.visible(tenant))
        owners = [t for t in TENANTS if tenant is None or t == tenant]
        assert set(await store.get_aggregate_ids()) == {
            a for t in owners for a in (seed.counters[t], seed.ledgers[t])
        }


# -- the matrix ---------------------------------------------------------------------------


async def test_store_reads_are_tenant_scoped(world: World) -> None:
    seed = await seed_world(world)
    for tenant in (A, B, None):
        with scope(tenant):
            await check_store(world, seed, tenant)


async def test_repository_sees_only_the_bound_tenants_aggregates(world: World) -> None:
    seed = await seed_world(world)
    repo = world.repository()
    for tenant, other in ((A, B), (B, A)):
        with tenant_scope(tenant):
            mine = await repo.load(seed.counters[tenant])
            assert mine.version == 2
            assert await repo.exists(seed.counters[tenant])
            for foreign in (seed.counters[other], seed.counters[None]):
                with pytest.raises(AggregateNotFoundError):
                    await repo.load(foreign)
                assert not await repo.exists(foreign)
                assert await repo.get_version(foreign) == 0
                fresh = await repo.load_or_create(foreign)
                assert fresh.version == 0
    # unscoped: every aggregate, tenant-less ones included
    for owner in TENANTS:
        assert (await repo.load(seed.counters[owner])).version == 2


async def test_checkpoints_are_scoped_by_tenant_qualified_key(world: World) -> None:
    seed = await seed_world(world)
    repo = world.checkpoints
    for n, tenant in enumerate(TENANTS, start=1):
        first, second = seed.originals[tenant]
        with scope(tenant):
            assert await repo.get_checkpoint(projection_name="Proj") == first.event_id
            assert await repo.get_position("Sub") == 100 * n
            data = await repo.get_checkpoint_data(projection_name="Proj")
            assert data is not None
            assert (data.projection_name, data.last_event_id, data.events_processed) == (
                "Proj", first.event_id, 1
            )
            lag = await repo.get_lag_metrics(projection_name="Proj")
            assert lag is not None
            assert (lag.projection_name, lag.last_event_id) == ("Proj", str(first.event_id))
            if tenant is not None:  # only the tenant's rows, under their plain names
                rows = await repo.get_all_checkpoints()
                assert [(r.projection_name, r.last_event_id) for r in rows] == [
                    ("Proj", first.event_id), ("Sub", second.event_id)
                ]
    everything = await repo.get_all_checkpoints()  # unscoped: every row as stored
    assert [r.projection_name for r in everything] == sorted(
        scoped_checkpoint_name(name, t) for name in ("Proj", "Sub") for t in TENANTS
    )
    with tenant_scope(A):
        await repo.reset_checkpoint(projection_name="Proj")
        assert await repo.get_checkpoint(projection_name="Proj") is None
        assert [r.projection_name for r in await repo.get_all_checkpoints()] == ["Sub"]
    with tenant_scope(B):
        assert await repo.get_checkpoint(projection_name="Proj") == seed.originals[B][0].event_id
    assert await repo.get_checkpoint(projection_name="Proj") == seed.originals[None][0].event_id


async def test_dead_letters_are_scoped_by_their_events_tenant(world: World) -> None:
    seed = await seed_world(world)
    dlq = world.dlq
    by_event = {e.event_id: e for e in await dlq.get_failed_events()}
    assert set(by_event) == {seed.counter_events[t][0] for t in TENANTS}
    ids = {t: by_event[seed.counter_events[t][0]].id for t in TENANTS}
    for tenant, other in ((A, B), (B, A)):
        mine = seed.counter_events[tenant][0]
        with tenant_scope(tenant):
            for listed in (await dlq.get_failed_events(), await dlq.get_failed_events("Proj")):
                assert [e.event_id for e in listed] == [mine]
            assert (await dlq.get_failed_event_by_id(ids[tenant])) is not None
            assert await dlq.get_failed_event_by_id(ids[other]) is None
            assert await dlq.get_failed_event_by_id(ids[None]) is None
            stats = await dlq.get_failure_stats()
            assert (stats.total_failed, stats.affected_projections) == (1, 1)
            [count] = await dlq.get_projection_failure_counts()
            assert (count.projection_name, count.failure_count) == ("Proj", 1)
            # changes aimed at another tenant's entry touch nothing
            await dlq.mark_retrying(ids[other])
            await dlq.mark_resolved(ids[other], "intruder")
    assert {e.status for e in await dlq.get_failed_events(status="failed")} == {"failed"}
    assert len(await dlq.get_failed_events()) == 3
    with tenant_scope(A):
        await dlq.mark_resolved(ids[A], "ops")
        assert await dlq.delete_resolved_events(older_than_days=-1) == 1
        assert await dlq.get_failed_events() == []
    stats = await dlq.get_failure_stats()  # unscoped: B's and the tenant-less entry remain
    assert (stats.total_failed, stats.affected_projections) == (2, 1)


async def test_outbox_rows_are_scoped_by_tenant(world: World) -> None:
    seed = await seed_world(world)
    outbox = world.outbox
    rows = {r.event_id: r for r in await outbox.get_pending_events()}
    ids = {t: rows[seed.counter_events[t][1]].id for t in TENANTS}
    assert rows[seed.counter_events[A][1]].tenant_id == A  # stamped on the way in
    assert rows[seed.counter_events[A][1]].event_data["tenant_id"] == str(A)
    assert rows[seed.counter_events[None][1]].tenant_id is None
    for tenant, other in ((A, B), (B, A)):
        with tenant_scope(tenant):
            [row] = await outbox.get_pending_events()
            assert (row.id, row.tenant_id) == (ids[tenant], tenant)
            stats = await outbox.get_stats()
            assert (stats.pending_count, stats.published_count) == (1, 0)
            await outbox.mark_published(ids[other])
            await outbox.mark_failed(ids[other], "intruder")
            await outbox.increment_retry(ids[other], "intruder")
    every = await outbox.get_pending_events()
    assert {(r.id, r.retry_count, r.last_error) for r in every} == {
        (ids[t], 0, None) for t in TENANTS
    }
    with tenant_scope(A):
        await outbox.mark_published(ids[A])
        assert await outbox.cleanup_published(days=-1) == 1
        assert (await outbox.get_stats()).pending_count == 0
    stats = await outbox.get_stats()
    assert (stats.pending_count, stats.published_count) == (2, 0)


# -- writes that would cross tenants -------------------------------------------------------


async def _everything(store: EventStore) -> list[tuple[UUID, UUID | None, int, int]]:
    return [
        (s.event_id, s.event.tenant_id, s.stream_position, s.global_position)
        for s in (await store.read_all()).events
    ]


def assert_hides_the_owner(error: TenantMismatchError, bound: UUID) -> None:
    """The error names the bound tenant only: neither its message nor its attributes say whom
    the data belongs to, which would reveal that the id exists in that other tenant."""
    assert error.bound_tenant == bound
    assert str(bound) in str(error)
    shown = [str(error), *(str(value) for value in vars(error).values())]
    others = [str(tenant) for tenant in (A, B) if tenant != bound]
    assert [text for text in shown if any(other in text for other in others)] == []
    assert "no tenant" not in str(error)


async def test_mismatched_appends_leave_the_store_unchanged(world: World) -> None:
    seed = await seed_world(world)
    store = world.store
    before = await _everything(store)
    with tenant_scope(A):
        mine = seed.counters[A]
        foreign = Counted(aggregate_id=mine, n=1, tenant_id=B)
        ok = Counted(aggregate_id=mine, n=1)
        with pytest.raises(TenantMismatchError) as caught:  # even after a valid event
            await store.append_events(mine, "Counter", [ok, foreign], 2)
        assert_hides_the_owner(caught.value, A)
        assert str(foreign.event_id) in str(caught.value)
        for owner in (B, None):  # another tenant's stream, and a tenant-less one
            target = seed.counters[owner]
            for expected in (ExpectedVersion.ANY, ExpectedVersion.NO_STREAM, 2):
                with pytest.raises(TenantMismatchError) as caught:
                    await store.append_events(
                        target, "Counter", [Counted(aggregate_id=target, n=1)], expected
                    )
                assert_hides_the_owner(caught.value, A)
        # a stale expected version on the tenant's own stream is still a version conflict
        with pytest.raises(OptimisticLockError):
            await store.append_events(mine, "Counter", [Counted(aggregate_id=mine, n=1)], 1)
    assert await _everything(store) == before
    # the repository cannot fork another tenant's aggregate either
    repo = world.repository()
    with tenant_scope(A):
        fresh = await repo.load_or_create(seed.counters[B])
        fresh.add(5)
        with pytest.raises(TenantMismatchError):
            await repo.save(fresh)
    assert await _everything(store) == before


async def test_mismatched_repository_writes_are_refused(world: World) -> None:
    seed = await seed_world(world)
    b_event = seed.originals[B][0]
    with tenant_scope(A):
        with pytest.raises(TenantMismatchError) as caught:
            await world.outbox.add_event(b_event.model_copy(update={"tenant_id": B}))
        assert_hides_the_owner(caught.value, A)
        with pytest.raises(TenantMismatchError) as caught:
            await world.dlq.add_failed_event(
                event_id=uuid4(), projection_name="Proj", event_type="X",
                event_data={"tenant_id": str(B)}, error=_error("x"),
            )
        assert_hides_the_owner(caught.value, A)
        # the same (event, projection) as B's dead letter, with tenant-less event data
        with pytest.raises(TenantMismatchError) as caught:
            await world.dlq.add_failed_event(
                event_id=b_event.event_id, projection_name="Proj", event_type="X",
                event_data={}, error=_error("overwrite"), retry_count=99,
            )
        assert_hides_the_owner(caught.value, A)
    assert len(await world.outbox.get_pending_events()) == 3
    entries = await world.dlq.get_failed_events()
    assert {(e.event_id, e.retry_count) for e in entries} == {
        (seed.counter_events[t][0], n) for n, t in enumerate(TENANTS, start=1)
    }


async def test_append_stamps_and_returns_the_tenant(world: World) -> None:
    stream = uuid4()
    event = Counted(aggregate_id=stream, n=1)
    with tenant_scope(A):
        result = await world.store.append_events(stream, "Counter", [event], 0)
        assert result.new_version == 1
        [stored] = (await world.store.get_events(stream, "Counter")).events
        assert (stored.event_id, stored.tenant_id) == (event.event_id, A)
    assert event.tenant_id is None  # the caller's event is never changed
    [unscoped] = (await world.store.get_events(stream, "Counter")).events
    assert unscoped.tenant_id == A


# -- the binding itself ---------------------------------------------------------------------


async def test_nested_scopes_rebind_and_restore(world: World) -> None:
    seed = await seed_world(world)
    with tenant_scope(A):
        await check_store(world, seed, A)
        with tenant_scope(B):
            await check_store(world, seed, B)
        await check_store(world, seed, A)
    assert current_tenant() is None
    await check_store(world, seed, None)


async def test_concurrent_tasks_keep_their_own_tenant(world: World) -> None:
    seed = await seed_world(world)
    repo = world.repository()

    async def work(tenant: UUID, rounds: int) -> set[UUID | None]:
        seen: set[UUID | None] = set()
        with tenant_scope(tenant):
            for _ in range(rounds):
                counter = await repo.load(seed.counters[tenant])
                counter.add(1)
                await repo.save(counter)
                await asyncio.sleep(0)  # let the other task run in between
                seen |= {s.event.tenant_id async for s in world.store.read_all()}
                seen |= {e.tenant_id for e in await world.store.get_events_by_type("Counter")}
        return seen

    seen_a, seen_b = await asyncio.gather(work(A, 5), work(B, 5))
    assert (seen_a, seen_b) == ({A}, {B})
    with tenant_scope(A):
        assert (await repo.load(seed.counters[A])).version == 7
        # a task created inside a scope inherits it; one created outside does not
        assert await asyncio.create_task(_bound()) == A
    assert await asyncio.create_task(_bound()) is None
    events = (await world.store.read_all()).events
    by_tenant = {t: sum(1 for s in events if s.event.tenant_id == t) for t in TENANTS}
    assert by_tenant == {A: 8, B: 8, None: 3}


async def _bound() -> UUID | None:
    return current_tenant()


# -- snapshots ------------------------------------------------------------------------------


async def test_repository_ignores_another_tenants_snapshot(world: World) -> None:
    """The in-memory snapshot store does not scope by tenant; the repository still never
    restores another tenant's aggregate from it inside a scope."""
    seed = await seed_world(world)
    snapshots = InMemorySnapshotStore(enable_tracing=False)
    repo = world.repository(snapshots)
    for tenant in TENANTS:
        await repo.create_snapshot(await repo.load(seed.counters[tenant]))
    for tenant, other in ((A, B), (B, A)):
        with tenant_scope(tenant):
            own = await repo.load(seed.counters[tenant])  # from its snapshot
            assert (own.version, own.state.total if own.state else None) == (
                2, 11 * (TENANTS.index(tenant) + 1)
            )
            for foreign in (seed.counters[other], seed.counters[None]):
                with pytest.raises(AggregateNotFoundError):
                    await repo.load(foreign)


async def check_snapshot_store_scoping(snapshots: SnapshotStore) -> None:
    """Snapshots saved in scope A and B: each scope reads, finds and deletes only its own;
    unscoped reads see both."""
    from datetime import UTC, datetime

    from eventsource.snapshots import Snapshot

    ids = {A: uuid4(), B: uuid4()}
    for tenant, aggregate_id in ids.items():
        with tenant_scope(tenant):
            await snapshots.save_snapshot(
                Snapshot(aggregate_id, "Counter", 1, {"total": 1}, 1, datetime.now(UTC))
            )
    for tenant, other in ((A, B), (B, A)):
        with tenant_scope(tenant):
            assert await snapshots.get_snapshot(ids[tenant], "Counter") is not None
            assert await snapshots.get_snapshot(ids[other], "Counter") is None
            assert not await snapshots.snapshot_exists(ids[other], "Counter")
            assert not await snapshots.delete_snapshot(ids[other], "Counter")
    with tenant_scope(A):
        assert await snapshots.delete_snapshots_by_type("Counter") == 1
    assert await snapshots.get_snapshot(ids[B], "Counter") is not None


async def test_snapshot_stores_are_tenant_scoped(world: World) -> None:
    await check_snapshot_store_scoping(world.snapshots)


async def test_a_scoped_load_never_starts_from_another_tenants_snapshot(world: World) -> None:
    repo = world.repository(world.snapshots)
    with tenant_scope(A):
        mine = repo.create_new(uuid4())
        mine.add(5)
        await repo.save(mine)
        await repo.create_snapshot(mine)
    with tenant_scope(B):
        with pytest.raises(AggregateNotFoundError):
            await repo.load(mine.aggregate_id)
        assert await world.snapshots.get_snapshot(mine.aggregate_id, "Counter") is None
    with tenant_scope(A):
        assert (await repo.load(mine.aggregate_id)).state.total == 5


@pytest.mark.postgresql
async def test_postgresql_store_outbox_rows_carry_the_stamped_tenant() -> None:
    from eventsource.repositories.postgresql import PostgreSQLOutboxRepository
    from eventsource.stores.postgresql import PostgreSQLEventStore

    async with _postgresql() as sessions:
        store = PostgreSQLEventStore(sessions, outbox_enabled=True, enable_tracing=False)
        outbox = PostgreSQLOutboxRepository(sessions)
        try:
            ids = {}
            for tenant in (A, B):
                stream = uuid4()
                event = Counted(aggregate_id=stream, n=1)  # tenant-less: stamped in scope
                with tenant_scope(tenant):
                    await store.append_events(stream, "Counter", [event], 0)
                ids[tenant] = event.event_id
            for tenant in (A, B):
                with tenant_scope(tenant):
                    [row] = await outbox.get_pending_events()
                    assert (row.event_id, row.tenant_id) == (ids[tenant], tenant)
                    assert row.event_data["tenant_id"] == str(tenant)
        finally:
            await store.close()
