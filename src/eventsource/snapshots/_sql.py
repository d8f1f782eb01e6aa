"""Snapshot stores written once for SQLite and PostgreSQL: statements, row mapping, tenant rules.

Driver-free, like `repositories/_sql/`: a backend supplies the `Executor` that runs these
statements (named `:param` placeholders, SQL both dialects accept, one transaction per call).

Tenancy: a row's `tenant_id` is the tenant bound by `tenant_scope` when it was saved (NULL when
saved outside any scope). Inside a scope every statement carries `tenant_id = :tenant_id`, so
another tenant's row, or an unowned one, is invisible: `get_snapshot` returns None and the
repository replays the events, which is always correct. A save inside a scope replaces the
tenant's own row or an unowned one (so snapshots taken before an application adopted scopes are
superseded, not stuck), never another tenant's (`TenantMismatchError`). A save outside any scope
replaces whatever row there is and keeps its owner: an unscoped writer knows no tenant, so it
does not erase the one recorded.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsource._lifecycle import AsyncContext
from eventsource._storable_json import dumps_storable
from eventsource.exceptions import TenantMismatchError
from eventsource.observability.tracing import TracingMixin
from eventsource.repositories._json import EventSourceJSONEncoder
from eventsource.repositories._sql import Executor, Params, as_datetime, as_uuid
from eventsource.snapshots.exceptions import SnapshotDeserializationError, SnapshotError
from eventsource.snapshots.interface import Snapshot, SnapshotStore
from eventsource.tenancy import current_tenant

__all__ = ["SQLSnapshotStore"]

_KEY = "aggregate_id = :aggregate_id AND aggregate_type = :aggregate_type"
_OWN = " AND tenant_id = :tenant_id"
_BELOW = " AND schema_version < :below"

_UPSERT = """INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state,
    created_at, tenant_id)
VALUES (:aggregate_id, :aggregate_type, :version, :schema_version, :state, :created_at,
    :tenant_id)
ON CONFLICT (aggregate_id, aggregate_type) DO UPDATE SET
    version = excluded.version,
    schema_version = excluded.schema_version,
    state = excluded.state,
    created_at = excluded.created_at,
    tenant_id = COALESCE(excluded.tenant_id, snapshots.tenant_id)"""
# Inside a scope: replace only the tenant's own row or an unowned one (0 rows touched otherwise).
_UPSERT_SCOPED = (
    _UPSERT + "\nWHERE snapshots.tenant_id IS NULL OR snapshots.tenant_id = excluded.tenant_id"
)
_OWNER = f"SELECT tenant_id FROM snapshots WHERE {_KEY}"
_GET = (
    f"SELECT version, schema_version, CAST(state AS TEXT), created_at FROM snapshots WHERE {_KEY}"
)
_GET_SCOPED = _GET + _OWN
_EXISTS = f"SELECT 1 FROM snapshots WHERE {_KEY}"
_EXISTS_SCOPED = _EXISTS + _OWN
_DELETE = f"DELETE FROM snapshots WHERE {_KEY}"
_DELETE_SCOPED = _DELETE + _OWN
_DELETE_TYPE = "DELETE FROM snapshots WHERE aggregate_type = :aggregate_type"
# (schema_version_below given, scoped) -> statement
_DELETE_TYPE_SQL = {
    (False, False): _DELETE_TYPE,
    (False, True): _DELETE_TYPE + _OWN,
    (True, False): _DELETE_TYPE + _BELOW,
    (True, True): _DELETE_TYPE + _BELOW + _OWN,
}
_SAVE_ATTEMPTS = 3  # a scoped save retries when the row it collided with changed meanwhile


def _state_json(snapshot: Snapshot) -> str:
    """The state as JSON text; `SnapshotError` naming the snapshot if it is not JSON, or not
    JSON every backend stores and reads back (see `eventsource._storable_json`)."""
    try:
        return dumps_storable(snapshot.state, EventSourceJSONEncoder)
    except (TypeError, ValueError) as exc:
        raise SnapshotError(
            f"Cannot save {snapshot}: its state is not JSON-serialisable ({exc})"
        ) from exc


def _aware(value: Any) -> datetime:
    moment = as_datetime(value)
    if moment is None:
        raise TypeError("the stored snapshot has no created_at")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _state(text: Any) -> dict[str, Any]:
    state = json.loads(text)
    if not isinstance(state, dict):
        raise TypeError(f"the stored state is a JSON {type(state).__name__}, not an object")
    return state


def _snapshot(aggregate_id: UUID, aggregate_type: str, row: Any) -> Snapshot:
    try:
        state = _state(row[2])
        return Snapshot(
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            version=int(row[0]),
            state=state,
            schema_version=int(row[1]) if row[1] is not None else 1,
            created_at=_aware(row[3]),
        )
    except (TypeError, ValueError) as exc:
        raise SnapshotDeserializationError(aggregate_id, aggregate_type, exc) from exc


class SQLSnapshotStore(AsyncContext, TracingMixin, SnapshotStore):
    """Snapshots in the `snapshots` table, over a backend's executor."""

    def __init__(self, executor: Executor, enable_tracing: bool = True) -> None:
        self._init_tracing(type(self).__module__, enable_tracing)
        self._db = executor


    async def initialize(self) -> None:
        """Create the table (and any later column) now instead of on first use."""
        await self._db.has_table("snapshots")  # the executor prepares the table on first call

    async def close(self) -> None:
        """Release what the store holds (idempotent); the base holds nothing."""

    async def _enter_context(self) -> None:
        await self.initialize()

    async def _exit_context(self) -> None:
        await self.close()

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        if not isinstance(snapshot, Snapshot):
            raise TypeError(f"save_snapshot needs a Snapshot, got {type(snapshot).__name__}")
        if not isinstance(snapshot.aggregate_id, UUID):
            raise TypeError(
                f"Snapshot.aggregate_id must be a UUID, got {type(snapshot.aggregate_id).__name__}"
            )
        params: dict[str, object] = {
            "aggregate_id": snapshot.aggregate_id,
            "aggregate_type": snapshot.aggregate_type,
            "version": snapshot.version,
            "schema_version": snapshot.schema_version,
            "state": _state_json(snapshot),
            "created_at": _aware(snapshot.created_at),
            "tenant_id": current_tenant(),
        }
        if params["tenant_id"] is None:
            await self._db.execute(_UPSERT, params)
        else:
            await self._save_scoped(snapshot, params)

    async def _save_scoped(self, snapshot: Snapshot, params: dict[str, object]) -> None:
        tenant = params["tenant_id"]
        assert isinstance(tenant, UUID)
        key = {"aggregate_id": snapshot.aggregate_id, "aggregate_type": snapshot.aggregate_type}
        for _ in range(_SAVE_ATTEMPTS):
            if await self._db.execute(_UPSERT_SCOPED, params):
                return
            rows = await self._db.fetch(_OWNER, key)
            owner = as_uuid(rows[0][0]) if rows else None
            if owner is not None and owner != tenant:
                raise TenantMismatchError(
                    tenant, f"The snapshot of {snapshot.aggregate_type} {snapshot.aggregate_id}"
                )
            # the other tenant's row went away (or was released) meanwhile: try again
        raise SnapshotError(f"Cannot save {snapshot}: its row kept changing owner")

    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        sql, params = self._keyed(_GET, _GET_SCOPED, aggregate_id, aggregate_type)
        rows = await self._db.fetch(sql, params)
        return _snapshot(aggregate_id, aggregate_type, rows[0]) if rows else None

    async def snapshot_exists(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        sql, params = self._keyed(_EXISTS, _EXISTS_SCOPED, aggregate_id, aggregate_type)
        return bool(await self._db.fetch(sql, params))

    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        sql, params = self._keyed(_DELETE, _DELETE_SCOPED, aggregate_id, aggregate_type)
        return await self._db.execute(sql, params) > 0

    async def delete_snapshots_by_type(
        self, aggregate_type: str, schema_version_below: int | None = None
    ) -> int:
        tenant = current_tenant()
        params: dict[str, object] = {"aggregate_type": aggregate_type}
        if schema_version_below is not None:
            params["below"] = schema_version_below
        if tenant is not None:
            params["tenant_id"] = tenant
        sql = _DELETE_TYPE_SQL[(schema_version_below is not None, tenant is not None)]
        return await self._db.execute(sql, params)

    @staticmethod
    def _keyed(
        sql: str, scoped_sql: str, aggregate_id: UUID, aggregate_type: str
    ) -> tuple[str, Params]:
        """The statement for this scope and its parameters."""
        params: dict[str, object] = {"aggregate_id": aggregate_id, "aggregate_type": aggregate_type}
        tenant = current_tenant()
        if tenant is None:
            return sql, params
        params["tenant_id"] = tenant
        return scoped_sql, params
