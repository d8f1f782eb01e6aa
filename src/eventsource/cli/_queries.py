"""The command line's own reads, written once for SQLite and PostgreSQL.

Everything the library's API already answers (a stream's events, the commit-safe tail,
checkpoints, dead letters, the outbox) goes through the API; these are the questions it has
no method for. Every list is keyset-paged along an index, so a page costs the same on the
first page and the thousandth, and nothing counts a whole table but `events types`, whose
question is a count per type. Inside a `--tenant` scope each query adds the tenant condition
the stores use (`tenant_clause`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsource._sql.common import tenant_clause
from eventsource.cli._errors import CliUsageError
from eventsource.repositories._sql import as_datetime as _time
from eventsource.repositories._sql import as_uuid as _uuid
from eventsource.tenancy import bound_tenant

if TYPE_CHECKING:
    from eventsource.cli._backend import Backend

__all__ = [
    "SnapshotRow",
    "StreamRow",
    "event_position",
    "event_type_counts",
    "id_range",
    "list_snapshots",
    "list_streams",
    "snapshot_count",
    "stream_state_counts",
    "stream_states",
    "table_columns",
    "tenant_has_events",
]

_HEX = re.compile(r"[0-9a-f]{1,32}")


@dataclass(frozen=True)
class StreamRow:
    """A stream and its newest event."""

    aggregate_id: UUID
    aggregate_type: str
    version: int
    last_position: int
    last_event_type: str
    last_occurred_at: datetime | None
    last_stored_at: datetime | None
    tenant_id: UUID | None

    @property
    def stream_id(self) -> str:
        return f"{self.aggregate_id}:{self.aggregate_type}"


@dataclass(frozen=True)
class SnapshotRow:
    """A snapshot, and the version its stream has reached since."""

    aggregate_id: UUID
    aggregate_type: str
    version: int
    schema_version: int
    created_at: datetime | None
    tenant_id: UUID | None
    stream_version: int

    @property
    def stream_id(self) -> str:
        return f"{self.aggregate_id}:{self.aggregate_type}"


def id_range(prefix: str) -> tuple[UUID, UUID]:
    """The aggregate ids starting with `prefix` (hex digits, hyphens ignored) as a closed
    range, so a prefix search walks the id index instead of matching text."""
    digits = prefix.replace("-", "").lower()
    if not _HEX.fullmatch(digits):
        raise CliUsageError(
            f"--prefix {prefix!r}: an aggregate id prefix is up to 32 hex digits (0-9, a-f)"
        )
    return UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f"))


def _page(
    after: tuple[UUID, str] | None,
    aggregate_type: str | None,
    limit: int,
    table: str,
    type_column: str,
) -> tuple[list[str], dict[str, object]]:
    """The conditions of a keyset page in (aggregate_id, aggregate_type) order: after the
    stream `after`, of `aggregate_type` (compared as `type_column`)."""
    conditions: list[str] = []
    params: dict[str, object] = {"limit": limit}
    if after is not None:
        key = f"({table}aggregate_id, {table}aggregate_type)"
        conditions.append(f"{key} > (:after_id, :after_type)")
        params["after_id"], params["after_type"] = after
    if aggregate_type is not None:
        conditions.append(f"{type_column} = :type")
        params["type"] = aggregate_type
    return conditions, params


def _where(conditions: list[str], params: dict[str, object], tenant_column: str) -> str:
    """The WHERE clause of `conditions`, narrowed to the bound tenant's rows (if one is bound:
    `tenant_column` holds it), with the tenant added to `params`."""
    tenant = bound_tenant()
    if tenant is not None:
        conditions = [*conditions, tenant_clause(":tenant", tenant_column)]
        params["tenant"] = tenant
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


# A page of streams: the keys come from the (aggregate_id, aggregate_type, version) index in
# its order, grouped (an index-only scan), then each stream's newest row is joined by key.
_STREAMS = """SELECT s.aggregate_id, s.aggregate_type, s.version, e.id, e.event_type,
    e."timestamp", e.created_at, e.tenant_id
FROM (SELECT aggregate_id, aggregate_type, MAX(version) AS version FROM events{where}
      GROUP BY aggregate_id, aggregate_type ORDER BY aggregate_id, aggregate_type
      LIMIT :limit) s
JOIN events e ON e.aggregate_id = s.aggregate_id AND e.aggregate_type = s.aggregate_type
    AND e.version = s.version
ORDER BY s.aggregate_id, s.aggregate_type"""


async def list_streams(
    db: Backend,
    *,
    after: tuple[UUID, str] | None,
    aggregate_type: str | None,
    ids: tuple[UUID, UUID] | None,
    limit: int,
) -> list[StreamRow]:
    """Up to `limit` streams after the stream `after`, in (aggregate id, type) order."""
    # Not `aggregate_type = :type`: both databases would then read every event of the type
    # through the (aggregate_type, timestamp) index and sort them, where walking the id
    # index in page order stops after one page.
    conditions, params = _page(after, aggregate_type, limit, "", "aggregate_type || ''")
    if ids is not None:
        conditions.append("aggregate_id >= :low AND aggregate_id <= :high")
        params["low"], params["high"] = ids
    where = _where(conditions, params, "tenant_id")
    rows = await db.fetch(_STREAMS.format(where=where), params)
    return [
        StreamRow(
            aggregate_id=_uuid(row[0]),  # type: ignore[arg-type]
            aggregate_type=row[1],
            version=int(row[2]),
            last_position=int(row[3]),
            last_event_type=row[4],
            last_occurred_at=_time(row[5]),
            last_stored_at=_time(row[6]),
            tenant_id=_uuid(row[7]),
        )
        for row in rows
    ]


async def event_type_counts(db: Backend) -> list[tuple[str, int | None, int]]:
    """(event type, stored event_version, count), by type and version: a full scan."""
    params: dict[str, object] = {}
    where = _where([], params, "tenant_id")
    version = db.json_text("payload", "event_version")
    sql = (
        f"SELECT event_type, {version}, COUNT(*) FROM events{where} GROUP BY event_type, {version}"
    )
    found = [
        (row[0], None if row[1] is None else int(row[1]), int(row[2]))
        for row in await db.fetch(sql, params)
    ]
    return sorted(found, key=lambda item: (item[0], item[1] or 0))


_STATES = """SELECT m.aggregate_type, m.state, m.max_age_seconds, m.max_count, m.truncate_before
FROM stream_metadata m WHERE {where} ORDER BY m.aggregate_type"""
# Inside a tenant scope, only streams holding that tenant's events (the table has no tenant).
_TENANT_STREAM = """EXISTS (SELECT 1 FROM events e WHERE e.aggregate_id = m.aggregate_id
    AND e.aggregate_type = m.aggregate_type AND {tenant})"""


async def stream_states(
    db: Backend, aggregate_id: UUID, aggregate_type: str | None
) -> list[dict[str, object]]:
    """The `stream_metadata` rows (retention state and rule) of the aggregate's streams (of
    `aggregate_type`, if given): one primary-key lookup. Live streams with no rule have none."""
    conditions = ["m.aggregate_id = :id"]
    params: dict[str, object] = {"id": aggregate_id}
    if aggregate_type is not None:
        conditions.append("m.aggregate_type = :type")
        params["type"] = aggregate_type
    tenant = bound_tenant()
    if tenant is not None:
        conditions.append(_TENANT_STREAM.format(tenant=tenant_clause(":tenant", "e.tenant_id")))
        params["tenant"] = tenant
    rows = await db.fetch(_STATES.format(where=" AND ".join(conditions)), params)
    return [
        {"aggregate_type": row[0], "state": row[1], "max_age_seconds": row[2],
         "max_count": row[3], "truncate_before": int(row[4] or 0)}
        for row in rows
    ]


_STATE_COUNTS = """SELECT state, COUNT(*) FROM (SELECT state FROM stream_metadata
    WHERE state <> 'live' LIMIT :cap) t GROUP BY state"""


async def stream_state_counts(db: Backend, cap: int) -> tuple[dict[str, int], bool]:
    """How many streams are in each retention state other than live, counting up to `cap`
    rows (and whether there were more): the metadata table holds only streams with a rule or
    a state, and no event is read."""
    rows = await db.fetch(_STATE_COUNTS, {"cap": cap + 1})
    counts = {row[0]: int(row[1]) for row in rows}
    return counts, sum(counts.values()) > cap


async def tenant_has_events(db: Backend, tenant: UUID) -> bool:
    """Whether any event carries `tenant` (the tenant index answers it)."""
    sql = f"SELECT 1 FROM events WHERE {tenant_clause(':tenant')} LIMIT 1"
    return bool(await db.fetch(sql, {"tenant": tenant}))


async def event_position(db: Backend, event_id: UUID) -> int | None:
    """The global position of the event with this id, if it is stored."""
    sql = "SELECT id FROM events WHERE event_id = :event_id"
    rows = await db.fetch(sql, {"event_id": event_id})
    return int(rows[0][0]) if rows else None


_SNAPSHOTS = """SELECT s.aggregate_id, s.aggregate_type, s.version, s.schema_version, s.created_at,
    s.tenant_id,
    (SELECT e.version FROM events e WHERE e.aggregate_id = s.aggregate_id
        AND e.aggregate_type = s.aggregate_type ORDER BY e.version DESC LIMIT 1)
FROM snapshots s{where} ORDER BY s.aggregate_id, s.aggregate_type LIMIT :limit"""


async def list_snapshots(
    db: Backend, *, after: tuple[UUID, str] | None, aggregate_type: str | None, limit: int
) -> list[SnapshotRow]:
    """Up to `limit` snapshots after the stream `after`, in (aggregate id, type) order."""
    conditions, params = _page(after, aggregate_type, limit, "s.", "s.aggregate_type")
    where = _where(conditions, params, "s.tenant_id")
    rows = await db.fetch(_SNAPSHOTS.format(where=where), params)
    return [
        SnapshotRow(
            aggregate_id=_uuid(row[0]),  # type: ignore[arg-type]
            aggregate_type=row[1],
            version=int(row[2]),
            schema_version=int(row[3] or 1),
            created_at=_time(row[4]),
            tenant_id=_uuid(row[5]),
            stream_version=int(row[6] or 0),
        )
        for row in rows
    ]


async def snapshot_count(db: Backend, aggregate_type: str, below: int | None) -> int:
    """How many snapshots `delete_snapshots_by_type(aggregate_type, below)` would delete."""
    conditions = ["aggregate_type = :type"]
    params: dict[str, object] = {"type": aggregate_type}
    if below is not None:
        conditions.append("schema_version < :below")
        params["below"] = below
    where = _where(conditions, params, "tenant_id")
    rows = await db.fetch(f"SELECT COUNT(*) FROM snapshots{where}", params)
    return int(rows[0][0])


async def table_columns(db: Backend, tables: list[str]) -> dict[str, set[str]]:
    """The columns of each of `tables` that exists (as the connection resolves the name)."""
    found: dict[str, set[str]] = {}
    if db.kind == "sqlite":
        for table in tables:
            rows = await db.fetch(f"SELECT name FROM pragma_table_info('{table}')", {})
            if rows:
                found[table] = {row[0] for row in rows}
        return found
    params: dict[str, object] = {f"t{i}": table for i, table in enumerate(tables)}
    regclasses = ", ".join(f"to_regclass(CAST(:{key} AS TEXT))" for key in params)
    sql = (
        "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
        f"WHERE c.oid IN ({regclasses}) AND a.attnum > 0 AND NOT a.attisdropped"
    )
    for table, column in await db.fetch(sql, params):
        found.setdefault(table, set()).add(column)
    return found
