"""Contracts every snapshot store satisfies, tenant scoping included.

Subclass in a test module (name the subclass `Test...`):

* `SnapshotStoreContract`: provide a `snapshot_store` fixture (a fresh, empty store).
* `SQLSnapshotStoreContract` (databases): provide `snapshot_store_factory`, a callable returning
  an async context manager that opens a NEW store instance on one fresh database (the same
  database on every call), `raw_sql`, an async callable running one statement on that database
  outside the store and returning its rows, and `sql_dialect` ("sqlite" or "postgresql").
* `SnapshotLoadingContract` (`eventsource.testing.contract.snapshot_loading`): the repository
  over the store; provide `snapshot_store`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from eventsource.exceptions import TenantMismatchError
from eventsource.snapshots._sql import SQLSnapshotStore
from eventsource.snapshots.exceptions import SnapshotError
from eventsource.snapshots.interface import Snapshot, SnapshotStore
from eventsource.tenancy import tenant_scope
from eventsource.types import JSON

__all__ = [
    "DOCUMENTED_TABLE",
    "RawSQL",
    "SQLSnapshotStoreContract",
    "SnapshotStoreContract",
    "SnapshotStoreFactory",
    "make_snapshot",
]

SnapshotStoreFactory = Callable[[], AbstractAsyncContextManager[SQLSnapshotStore]]
RawSQL = Callable[[str], Awaitable[list[tuple[Any, ...]]]]

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
TENANT_A = UUID(int=0xA)
TENANT_B = UUID(int=0xB)
NESTED_STATE: dict[str, Any] = {
    "name": "Zoë — 東京 🚀",
    "balance": 12.5,
    "count": 2**40,
    "flags": [True, False, None],
    "lines": [{"sku": "A-1", "qty": 3, "tags": ["x", "ÿ"]}, {"sku": "B", "qty": 0, "tags": []}],
    "nested": {"deeper": {"deepest": {"empty": {}, "list": [[1, 2], [3]]}}},
    'quote"and\\backslash': "line\nbreak\ttab",
}

# The table exactly as earlier releases documented it (no `tenant_id`): what users may have created.
DOCUMENTED_TABLE = {
    "sqlite": """CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, aggregate_id TEXT,
        aggregate_type TEXT, version INTEGER, schema_version INTEGER DEFAULT 1, state TEXT,
        created_at TEXT, UNIQUE (aggregate_id, aggregate_type))""",
    "postgresql": """CREATE TABLE snapshots (id BIGSERIAL, aggregate_id UUID,
        aggregate_type VARCHAR, version INT, schema_version INT DEFAULT 1, state JSONB,
        created_at TIMESTAMPTZ, UNIQUE (aggregate_id, aggregate_type))""",
}
# A row written by someone else into that table, before the store first ran.
_FOREIGN_ROW = {
    "sqlite": """INSERT INTO snapshots (aggregate_id, aggregate_type, version, state, created_at)
        VALUES ('{id}', 'Legacy', 7, '{{"total": 70}}', '2023-02-03T04:05:06+00:00')""",
    "postgresql": """INSERT INTO snapshots (aggregate_id, aggregate_type, version, state,
        created_at) VALUES ('{id}', 'Legacy', 7, '{{"total": 70}}',
        '2023-02-03T04:05:06+00:00')""",
}


def make_snapshot(
    aggregate_id: UUID | None = None,
    aggregate_type: str = "Order",
    version: int = 1,
    state: JSON | None = None,
    schema_version: int = 1,
    created_at: datetime = T0,
) -> Snapshot:
    return Snapshot(
        aggregate_id=aggregate_id or uuid4(),
        aggregate_type=aggregate_type,
        version=version,
        state={"v": version} if state is None else state,
        schema_version=schema_version,
        created_at=created_at,
    )


async def _assert_out_of_reach(store: SnapshotStore, aggregate_id: UUID) -> None:
    """In the bound scope, the Order snapshot of `aggregate_id` can be neither read nor deleted."""
    assert await store.get_snapshot(aggregate_id, "Order") is None
    assert await store.snapshot_exists(aggregate_id, "Order") is False
    assert await store.delete_snapshot(aggregate_id, "Order") is False
    assert await store.delete_snapshots_by_type("Order") == 0


class SnapshotStoreContract:
    """Backend-agnostic snapshot store behaviour."""

    async def test_missing_snapshot_is_none(self, snapshot_store: SnapshotStore) -> None:
        assert await snapshot_store.get_snapshot(uuid4(), "Order") is None
        assert await snapshot_store.snapshot_exists(uuid4(), "Order") is False

    async def test_round_trip_keeps_every_field(self, snapshot_store: SnapshotStore) -> None:
        saved = make_snapshot(version=42, state=NESTED_STATE, schema_version=3)
        await snapshot_store.save_snapshot(saved)
        loaded = await snapshot_store.get_snapshot(saved.aggregate_id, "Order")
        assert loaded == saved
        assert loaded is not None
        assert loaded.state == NESTED_STATE
        assert isinstance(loaded.aggregate_id, UUID)

    async def test_created_at_comes_back_tz_aware_and_equal(
        self, snapshot_store: SnapshotStore
    ) -> None:
        offset = timezone(timedelta(hours=5, minutes=30))
        moment = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=offset)
        saved = make_snapshot(created_at=moment)
        await snapshot_store.save_snapshot(saved)
        loaded = await snapshot_store.get_snapshot(saved.aggregate_id, "Order")
        assert loaded is not None
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at == moment  # the same instant, whatever the zone it comes in

    async def test_save_replaces_the_aggregates_snapshot(
        self, snapshot_store: SnapshotStore
    ) -> None:
        aggregate_id = uuid4()
        await snapshot_store.save_snapshot(make_snapshot(aggregate_id, version=10))
        newer = make_snapshot(
            aggregate_id,
            version=20,
            state={"other": ["shape"]},
            schema_version=2,
            created_at=T0 + timedelta(days=1),
        )
        await snapshot_store.save_snapshot(newer)
        assert await snapshot_store.get_snapshot(aggregate_id, "Order") == newer
        assert await snapshot_store.delete_snapshot(aggregate_id, "Order") is True
        assert await snapshot_store.get_snapshot(aggregate_id, "Order") is None  # only one row

    async def test_an_older_version_also_replaces(self, snapshot_store: SnapshotStore) -> None:
        aggregate_id = uuid4()
        await snapshot_store.save_snapshot(make_snapshot(aggregate_id, version=20))
        older = make_snapshot(aggregate_id, version=5)
        await snapshot_store.save_snapshot(older)
        assert await snapshot_store.get_snapshot(aggregate_id, "Order") == older

    async def test_delete_reports_whether_it_deleted(self, snapshot_store: SnapshotStore) -> None:
        saved = make_snapshot()
        assert await snapshot_store.delete_snapshot(saved.aggregate_id, "Order") is False
        await snapshot_store.save_snapshot(saved)
        assert await snapshot_store.snapshot_exists(saved.aggregate_id, "Order") is True
        assert await snapshot_store.delete_snapshot(saved.aggregate_id, "Order") is True
        assert await snapshot_store.delete_snapshot(saved.aggregate_id, "Order") is False
        assert await snapshot_store.snapshot_exists(saved.aggregate_id, "Order") is False

    async def test_aggregate_types_with_one_id_are_separate(
        self, snapshot_store: SnapshotStore
    ) -> None:
        shared = uuid4()
        order = make_snapshot(shared, "Order", version=1, state={"kind": "order"})
        invoice = make_snapshot(shared, "Invoice", version=2, state={"kind": "invoice"})
        await snapshot_store.save_snapshot(order)
        await snapshot_store.save_snapshot(invoice)
        assert await snapshot_store.get_snapshot(shared, "Order") == order
        assert await snapshot_store.get_snapshot(shared, "Invoice") == invoice
        assert await snapshot_store.delete_snapshot(shared, "Order") is True
        assert await snapshot_store.get_snapshot(shared, "Invoice") == invoice

    async def test_delete_by_type_deletes_that_type_only(
        self, snapshot_store: SnapshotStore
    ) -> None:
        orders = [make_snapshot(aggregate_type="Order") for _ in range(3)]
        invoice = make_snapshot(aggregate_type="Invoice")
        for snapshot in (*orders, invoice):
            await snapshot_store.save_snapshot(snapshot)
        assert await snapshot_store.delete_snapshots_by_type("Order") == 3
        assert await snapshot_store.delete_snapshots_by_type("Order") == 0
        for snapshot in orders:
            assert await snapshot_store.get_snapshot(snapshot.aggregate_id, "Order") is None
        assert await snapshot_store.get_snapshot(invoice.aggregate_id, "Invoice") == invoice

    async def test_delete_by_type_below_a_schema_version(
        self, snapshot_store: SnapshotStore
    ) -> None:
        by_schema = {n: make_snapshot(schema_version=n) for n in (1, 2, 3)}
        other_type = make_snapshot(aggregate_type="Invoice", schema_version=1)
        for snapshot in (*by_schema.values(), other_type):
            await snapshot_store.save_snapshot(snapshot)
        assert await snapshot_store.delete_snapshots_by_type("Order", schema_version_below=3) == 2
        remaining = {
            n: await snapshot_store.get_snapshot(s.aggregate_id, "Order")
            for n, s in by_schema.items()
        }
        assert remaining == {1: None, 2: None, 3: by_schema[3]}
        assert await snapshot_store.get_snapshot(other_type.aggregate_id, "Invoice") == other_type

    # -- tenants ---------------------------------------------------------------------------

    async def test_a_tenant_never_sees_another_tenants_snapshot(
        self, snapshot_store: SnapshotStore
    ) -> None:
        saved = make_snapshot()
        key = (saved.aggregate_id, "Order")
        with tenant_scope(TENANT_A):
            await snapshot_store.save_snapshot(saved)
        with tenant_scope(TENANT_B):
            await _assert_out_of_reach(snapshot_store, saved.aggregate_id)
        with tenant_scope(TENANT_A):
            assert await snapshot_store.get_snapshot(*key) == saved
            assert await snapshot_store.snapshot_exists(*key) is True
        assert await snapshot_store.get_snapshot(*key) == saved  # unscoped: every row

    async def test_a_tenant_cannot_replace_another_tenants_snapshot(
        self, snapshot_store: SnapshotStore
    ) -> None:
        mine = make_snapshot(version=3)
        with tenant_scope(TENANT_A):
            await snapshot_store.save_snapshot(mine)
        intruder = make_snapshot(mine.aggregate_id, version=9, state={"stolen": True})
        with tenant_scope(TENANT_B), pytest.raises(TenantMismatchError) as caught:
            await snapshot_store.save_snapshot(intruder)
        error = caught.value  # names only the bound tenant, never the snapshot's owner
        assert error.bound_tenant == TENANT_B
        assert str(TENANT_A) not in str(error)
        assert TENANT_A not in vars(error).values()
        with tenant_scope(TENANT_A):
            assert await snapshot_store.get_snapshot(mine.aggregate_id, "Order") == mine

    async def test_an_unowned_snapshot_is_invisible_in_a_scope_and_claimed_by_a_save(
        self, snapshot_store: SnapshotStore
    ) -> None:
        unowned = make_snapshot(version=1)
        key = (unowned.aggregate_id, "Order")
        await snapshot_store.save_snapshot(unowned)
        with tenant_scope(TENANT_A):
            await _assert_out_of_reach(snapshot_store, unowned.aggregate_id)
            claimed = make_snapshot(unowned.aggregate_id, version=2)
            await snapshot_store.save_snapshot(claimed)
            assert await snapshot_store.get_snapshot(*key) == claimed
        with tenant_scope(TENANT_B):
            assert await snapshot_store.get_snapshot(*key) is None
        assert await snapshot_store.get_snapshot(*key) == claimed

    async def test_an_unscoped_save_replaces_and_keeps_the_owner(
        self, snapshot_store: SnapshotStore
    ) -> None:
        owned = make_snapshot(version=1)
        key = (owned.aggregate_id, "Order")
        with tenant_scope(TENANT_A):
            await snapshot_store.save_snapshot(owned)
        rebuilt = make_snapshot(owned.aggregate_id, version=5)
        await snapshot_store.save_snapshot(rebuilt)
        assert await snapshot_store.get_snapshot(*key) == rebuilt
        with tenant_scope(TENANT_A):
            assert await snapshot_store.get_snapshot(*key) == rebuilt
        with tenant_scope(TENANT_B):
            assert await snapshot_store.get_snapshot(*key) is None

    async def test_deletes_in_a_scope_touch_only_that_tenants_rows(
        self, snapshot_store: SnapshotStore
    ) -> None:
        a1, a2 = make_snapshot(schema_version=1), make_snapshot(schema_version=2)
        b1, unowned = make_snapshot(schema_version=1), make_snapshot(schema_version=1)
        with tenant_scope(TENANT_A):
            await snapshot_store.save_snapshot(a1)
            await snapshot_store.save_snapshot(a2)
        with tenant_scope(TENANT_B):
            await snapshot_store.save_snapshot(b1)
        await snapshot_store.save_snapshot(unowned)
        with tenant_scope(TENANT_A):
            assert await snapshot_store.delete_snapshots_by_type("Order", 2) == 1
            assert await snapshot_store.delete_snapshot(a2.aggregate_id, "Order") is True
            assert await snapshot_store.delete_snapshots_by_type("Order") == 0
        for survivor in (b1, unowned):
            assert await snapshot_store.get_snapshot(survivor.aggregate_id, "Order") == survivor
        assert await snapshot_store.delete_snapshots_by_type("Order") == 2  # unscoped: all


class SQLSnapshotStoreContract:
    """What database-backed snapshot stores add: durability, and the documented table."""

    async def test_snapshots_survive_a_new_store_instance(
        self, snapshot_store_factory: SnapshotStoreFactory
    ) -> None:
        public, owned = make_snapshot(state=NESTED_STATE), make_snapshot(version=4)
        async with snapshot_store_factory() as first:
            await first.save_snapshot(public)
            with tenant_scope(TENANT_A):
                await first.save_snapshot(owned)
        async with snapshot_store_factory() as second:
            assert await second.get_snapshot(public.aggregate_id, "Order") == public
            with tenant_scope(TENANT_A):
                assert await second.get_snapshot(owned.aggregate_id, "Order") == owned
            with tenant_scope(TENANT_B):
                assert await second.get_snapshot(owned.aggregate_id, "Order") is None

    async def test_works_on_a_table_created_beforehand_with_the_documented_columns(
        self, snapshot_store_factory: SnapshotStoreFactory, raw_sql: RawSQL, sql_dialect: str
    ) -> None:
        legacy_id = uuid4()
        await raw_sql(DOCUMENTED_TABLE[sql_dialect])
        await raw_sql(_FOREIGN_ROW[sql_dialect].format(id=legacy_id))
        async with snapshot_store_factory() as store:
            legacy = await store.get_snapshot(legacy_id, "Legacy")
            assert legacy is not None
            assert (legacy.version, legacy.state, legacy.schema_version) == (7, {"total": 70}, 1)
            assert legacy.created_at == datetime(2023, 2, 3, 4, 5, 6, tzinfo=UTC)
            saved = make_snapshot(state=NESTED_STATE)
            await store.save_snapshot(saved)
            assert await store.get_snapshot(saved.aggregate_id, "Order") == saved
            with tenant_scope(TENANT_A):
                owned = make_snapshot(version=2)
                await store.save_snapshot(owned)
                assert await store.get_snapshot(owned.aggregate_id, "Order") == owned
                assert await store.get_snapshot(legacy_id, "Legacy") is None
        rows = await raw_sql(
            f"SELECT tenant_id FROM snapshots WHERE version = 2 AND "
            f"aggregate_id = '{owned.aggregate_id}'"
        )
        assert [str(row[0]) for row in rows] == [str(TENANT_A)]

    async def test_state_that_is_not_json_is_rejected_and_nothing_written(
        self, snapshot_store_factory: SnapshotStoreFactory
    ) -> None:
        bad = make_snapshot(state={"items": {1, 2}})
        nan = make_snapshot(bad.aggregate_id, state={"x": float("nan")})
        async with snapshot_store_factory() as store:
            for snapshot in (bad, nan):
                with pytest.raises(SnapshotError, match="not JSON"):
                    await store.save_snapshot(snapshot)
            assert await store.get_snapshot(bad.aggregate_id, "Order") is None

    async def test_close_is_idempotent_and_a_closed_store_reconnects(
        self, snapshot_store_factory: SnapshotStoreFactory
    ) -> None:
        saved = make_snapshot()
        async with snapshot_store_factory() as store:
            await store.save_snapshot(saved)
            await store.close()
            await store.close()
            assert await store.get_snapshot(saved.aggregate_id, "Order") == saved
