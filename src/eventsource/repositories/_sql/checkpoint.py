"""`SQLCheckpointRepository`: checkpoints in `projection_checkpoints`, over an executor."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsource._sql.common import tenant_clause
from eventsource.observability.tracing import TracingMixin, trace_methods
from eventsource.repositories._checkpoint import (
    CHECKPOINT_SPANS,
    CheckpointData,
    LagMetrics,
    checked_count,
    scoped_checkpoint_name,
    tenant_suffix,
    unscoped,
)
from eventsource.repositories._sql import Executor, Row, as_datetime, as_iso, as_uuid, utc_now
from eventsource.tenancy import bound_tenant

__all__ = ["SAVE_POSITION_SQL", "UPDATE_CHECKPOINT_SQL", "SQLCheckpointRepository"]

_CHECKPOINT_COLUMNS = (
    "projection_name, last_event_id, last_event_type, last_processed_at, events_processed, "
    "global_position, cursor"
)
_UPSERT_CHECKPOINT = """INSERT INTO projection_checkpoints (projection_name, last_event_id,
    last_event_type, last_processed_at, global_position, cursor, events_processed,
    created_at, updated_at)
VALUES (:name, :event_id, :event_type, :now, :position, :cursor, :count, :now, :now)
ON CONFLICT (projection_name) DO UPDATE SET
    last_event_id = excluded.last_event_id,
    last_event_type = excluded.last_event_type,
    last_processed_at = excluded.last_processed_at,
    events_processed = COALESCE(projection_checkpoints.events_processed, 0)
        + excluded.events_processed,
    updated_at = excluded.updated_at{position}"""
# `update_checkpoint` keeps the saved position and cursor; `save_position` replaces both.
UPDATE_CHECKPOINT_SQL = _UPSERT_CHECKPOINT.format(position="")
SAVE_POSITION_SQL = _UPSERT_CHECKPOINT.format(
    position=",\n    global_position = excluded.global_position,\n    cursor = excluded.cursor"
)
_GET_CHECKPOINT = (
    f"SELECT {_CHECKPOINT_COLUMNS} FROM projection_checkpoints WHERE projection_name = :name"
)
_ALL_CHECKPOINTS = f"SELECT {_CHECKPOINT_COLUMNS} FROM projection_checkpoints"
# Inside a tenant scope: the rows whose key ends with the tenant's suffix (`:suffix` is a LIKE
# pattern; the exact suffix is checked again in Python, as LIKE may ignore case).
_TENANT_CHECKPOINTS = f"{_ALL_CHECKPOINTS} WHERE projection_name LIKE :suffix"
_DELETE_CHECKPOINT = "DELETE FROM projection_checkpoints WHERE projection_name = :name"
_NEWEST_EVENT = 'SELECT event_id, "timestamp" FROM events{where} ORDER BY "timestamp" DESC LIMIT 1'


def _checkpoint(row: Row) -> CheckpointData:
    return CheckpointData(
        projection_name=row[0],
        last_event_id=as_uuid(row[1]),
        last_event_type=row[2],
        last_processed_at=as_datetime(row[3]),
        events_processed=int(row[4] or 0),
        global_position=row[5],
        cursor=row[6],
    )


def checkpoint_params(
    name: str,
    event_id: UUID,
    event_type: str,
    *,
    count: int = 1,
    position: int | None = None,
    cursor: str | None = None,
) -> dict[str, object]:
    return {
        "name": name,
        "event_id": event_id,
        "event_type": event_type,
        "now": utc_now(),
        "position": position,
        "cursor": cursor,
        "count": count,
    }


@trace_methods(CHECKPOINT_SPANS)
class SQLCheckpointRepository(TracingMixin):
    """Checkpoints in `projection_checkpoints`, over a backend's executor."""

    def __init__(self, executor: Executor, enable_tracing: bool = True) -> None:
        self._init_tracing(type(self).__module__, enable_tracing)
        self._db = executor

    async def get_checkpoint(self, projection_name: str) -> UUID | None:
        data = await self._row(scoped_checkpoint_name(projection_name, bound_tenant()))
        return data.last_event_id if data is not None else None

    async def update_checkpoint(
        self, projection_name: str, event_id: UUID, event_type: str
    ) -> None:
        key = scoped_checkpoint_name(projection_name, bound_tenant())
        params = checkpoint_params(key, event_id, event_type)
        await self._db.execute(UPDATE_CHECKPOINT_SQL, params)

    async def update_checkpoint_on(
        self,
        connection: Any,
        projection_name: str,
        event_id: UUID,
        event_type: str,
        count: int = 1,
        *,
        position: int | None = None,
        cursor: str | None = None,
    ) -> None:
        """`update_checkpoint` for `count` events, written in the transaction of `connection`;
        with a `position`, the position and cursor too (as `save_position`)."""
        key = scoped_checkpoint_name(projection_name, bound_tenant())
        params = checkpoint_params(
            key, event_id, event_type, count=count, position=position, cursor=cursor
        )
        sql = UPDATE_CHECKPOINT_SQL if position is None else SAVE_POSITION_SQL
        await self._db.execute_on(connection, sql, params)

    async def save_position(
        self,
        subscription_id: str,
        position: int,
        event_id: UUID,
        event_type: str,
        cursor: str | None = None,
        count: int = 1,
    ) -> None:
        """Save the position (and cursor); `count`: the events handled since the last save."""
        key = scoped_checkpoint_name(subscription_id, bound_tenant())
        params = checkpoint_params(
            key, event_id, event_type, count=checked_count(count), position=position,
            cursor=cursor,
        )
        await self._db.execute(SAVE_POSITION_SQL, params)

    async def get_position(self, subscription_id: str) -> int | None:
        data = await self._row(scoped_checkpoint_name(subscription_id, bound_tenant()))
        return data.global_position if data is not None else None

    async def get_cursor(self, subscription_id: str) -> str | None:
        """The commit-safe cursor saved with the position, if the store has one."""
        data = await self._row(scoped_checkpoint_name(subscription_id, bound_tenant()))
        return data.cursor if data is not None else None

    async def get_checkpoint_data(self, projection_name: str) -> CheckpointData | None:
        tenant = bound_tenant()
        data = await self._row(scoped_checkpoint_name(projection_name, tenant))
        return unscoped(data, tenant) if data is not None else None

    async def _row(self, key: str) -> CheckpointData | None:
        rows = await self._db.fetch(_GET_CHECKPOINT, {"name": key})
        return _checkpoint(rows[0]) if rows else None

    async def get_all_checkpoints(self) -> list[CheckpointData]:
        tenant = bound_tenant()
        if tenant is None:
            found = list(map(_checkpoint, await self._db.fetch(_ALL_CHECKPOINTS, {})))
        else:
            suffix = tenant_suffix(tenant)
            rows = await self._db.fetch(_TENANT_CHECKPOINTS, {"suffix": f"%{suffix}"})
            found = [
                unscoped(data, tenant)
                for data in map(_checkpoint, rows)
                if data.projection_name.endswith(suffix)
            ]
        # Sorted here, not in SQL: collations differ between databases, code points do not.
        return sorted(found, key=lambda data: data.projection_name)

    async def reset_checkpoint(self, projection_name: str) -> None:
        key = scoped_checkpoint_name(projection_name, bound_tenant())
        await self._db.execute(_DELETE_CHECKPOINT, {"name": key})

    async def get_lag_metrics(
        self, projection_name: str, event_types: list[str] | None = None
    ) -> LagMetrics | None:
        """Progress, and how far `last_processed_at` trails the newest event of `event_types`
        (all types if None) in the `events` table, when that table exists."""
        tenant = bound_tenant()
        data = await self._row(scoped_checkpoint_name(projection_name, tenant))
        if data is None:
            return None
        latest_id, lag = None, 0.0
        if await self._db.has_table("events"):
            types = list(event_types or [])
            params: dict[str, object] = {f"t{i}": name for i, name in enumerate(types)}
            conditions = []
            if types:
                conditions.append(f"event_type IN ({', '.join(f':{key}' for key in params)})")
            if tenant is not None:  # the newest of the bound tenant's events
                conditions.append(tenant_clause(":tenant"))
                params["tenant"] = tenant
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            rows = await self._db.fetch(_NEWEST_EVENT.format(where=where), params)
            if rows:
                latest_id = str(as_uuid(rows[0][0]))
                newest = as_datetime(rows[0][1])
                if newest is not None and data.last_processed_at is not None:
                    lag = max(0.0, (newest - data.last_processed_at).total_seconds())
        return LagMetrics(
            projection_name=projection_name,
            last_event_id=str(data.last_event_id) if data.last_event_id else None,
            latest_event_id=latest_id,
            lag_seconds=lag,
            events_processed=data.events_processed,
            last_processed_at=as_iso(data.last_processed_at),
        )
