"""Random snapshot-store calls, in and out of tenant scopes, against a dict model.

The model maps (aggregate id, type) to (snapshot, owning tenant or None) and applies the rules
of `eventsource.snapshots._sql`: inside a scope only the tenant's rows are visible, a scoped save
claims an unowned row but never another tenant's, an unscoped save keeps the owner.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from test_snapshots import open_snapshot_store

from eventsource.exceptions import TenantMismatchError
from eventsource.snapshots import Snapshot, SnapshotStore
from eventsource.tenancy import tenant_scope

T = TypeVar("T")
Key = tuple[UUID, str]
T0 = datetime(2024, 1, 1, tzinfo=UTC)
KEYS = [(UUID(int=0x5A0 + n), kind) for n in range(3) for kind in ("Alpha", "Beta")]
TENANTS = [None, UUID(int=0x7E1), UUID(int=0x7E2)]

# JSON that every backend stores as is. PostgreSQL's JSONB refuses NUL and lone surrogates, and
# keeps numbers as `numeric`: a float that JSON writes in exponent form at 1e16 or above comes
# back as an int of the same value (docs/snapshots.md), so floats stay below that here.
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_text = st.text(
    st.characters(exclude_categories=_SURROGATES, exclude_characters="\x00"), max_size=8
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(-1e15, 1e15, allow_nan=False),
    _text,
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=8,
)
states = st.dictionaries(_text, _json, max_size=4)


class SnapshotMachine(RuleBasedStateMachine):
    """Drives one store and the model with the same calls and compares every answer."""

    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.opened = open_snapshot_store(self.backend, Path(tempfile.mkdtemp()))
        self.store: SnapshotStore = self.run(self.opened.__aenter__())
        self.model: dict[Key, tuple[Snapshot, UUID | None]] = {}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def in_scope(self, tenant: UUID | None, coroutine: Coroutine[Any, Any, T]) -> T:
        if tenant is None:
            return self.run(coroutine)
        with tenant_scope(tenant):  # the task copies the context: the scope applies
            return self.run(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.opened.__aexit__(None, None, None))
        finally:
            self.loop.close()

    def visible(self, key: Key, tenant: UUID | None) -> Snapshot | None:
        found = self.model.get(key)
        if found is None or (tenant is not None and found[1] != tenant):
            return None
        return found[0]

    @rule(
        key=st.sampled_from(KEYS),
        tenant=st.sampled_from(TENANTS),
        version=st.integers(0, 10**6),
        schema=st.integers(1, 4),
        state=states,
        seconds=st.integers(0, 10**6),
    )
    def save(
        self,
        key: Key,
        tenant: UUID | None,
        version: int,
        schema: int,
        state: dict[str, Any],
        seconds: int,
    ) -> None:
        snapshot = Snapshot(key[0], key[1], version, state, schema, T0 + timedelta(seconds=seconds))
        current = self.model.get(key)
        owner = current[1] if current is not None else None
        if tenant is not None and owner not in (None, tenant):
            with pytest.raises(TenantMismatchError):
                self.in_scope(tenant, self.store.save_snapshot(snapshot))
            return
        self.in_scope(tenant, self.store.save_snapshot(snapshot))
        self.model[key] = (snapshot, tenant if tenant is not None else owner)

    @rule(key=st.sampled_from(KEYS), tenant=st.sampled_from(TENANTS))
    def get_and_exists(self, key: Key, tenant: UUID | None) -> None:
        expected = self.visible(key, tenant)
        assert self.in_scope(tenant, self.store.get_snapshot(*key)) == expected
        assert self.in_scope(tenant, self.store.snapshot_exists(*key)) is (expected is not None)

    @rule(key=st.sampled_from(KEYS), tenant=st.sampled_from(TENANTS))
    def delete(self, key: Key, tenant: UUID | None) -> None:
        expected = self.visible(key, tenant) is not None
        assert self.in_scope(tenant, self.store.delete_snapshot(*key)) is expected
        if expected:
            del self.model[key]

    @rule(
        kind=st.sampled_from(["Alpha", "Beta"]),
        tenant=st.sampled_from(TENANTS),
        below=st.one_of(st.none(), st.integers(1, 5)),
    )
    def delete_by_type(self, kind: str, tenant: UUID | None, below: int | None) -> None:
        doomed = [
            key
            for key, (snapshot, _owner) in self.model.items()
            if key[1] == kind
            and self.visible(key, tenant) is not None
            and (below is None or snapshot.schema_version < below)
        ]
        assert self.in_scope(tenant, self.store.delete_snapshots_by_type(kind, below)) == len(
            doomed
        )
        for key in doomed:
            del self.model[key]


MODEL_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class MemoryMachine(SnapshotMachine):
    backend = "memory"


class SQLiteMemoryMachine(SnapshotMachine):
    backend = "sqlite-memory"


class PostgreSQLMachine(SnapshotMachine):
    backend = "postgresql"


TestInMemorySnapshotModel = MemoryMachine.TestCase
TestInMemorySnapshotModel.settings = MODEL_SETTINGS
TestSQLiteSnapshotModel = SQLiteMemoryMachine.TestCase
TestSQLiteSnapshotModel.settings = MODEL_SETTINGS
TestPostgreSQLSnapshotModel = pytest.mark.postgresql(PostgreSQLMachine.TestCase)
TestPostgreSQLSnapshotModel.settings = settings(
    MODEL_SETTINGS, max_examples=10, phases=[Phase.generate]
)
