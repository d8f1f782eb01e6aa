"""The PostgreSQL append: one statement, hence one round trip and one transaction, that reads
the stream's version, checks the expected version (and, in a tenant scope, the stream's owner),
skips event ids already stored and inserts the rest from arrays (plus their outbox rows)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsource._sql.postgresql import DriverConnection, Operation, Row, is_unique_violation
from eventsource.events.base import DomainEvent
from eventsource.exceptions import OptimisticLockError
from eventsource.stores.records import AppendResult
from eventsource.tenancy import check_stream_owner

__all__ = ["append_operation", "append_result", "append_statements"]

_MAX_ATTEMPTS = 50

_FRESH = """
fresh AS (
    SELECT t.*, t.payload::jsonb AS doc, ok.v + row_number() OVER (ORDER BY t.ord) AS version
    FROM ok, unnest($4::uuid[], $5::text[], $6::uuid[], $7::text[], $8::timestamptz[], $9::text[])
        WITH ORDINALITY AS t(event_id, event_type, tenant_id, actor_id, occurred_at, payload, ord)
    WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = t.event_id)
), ins AS (
    INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, tenant_id, actor_id,
                        version, "timestamp", payload)
    SELECT event_id, $1, $2, event_type, tenant_id, actor_id, version, occurred_at, doc
    FROM fresh ORDER BY ord
    RETURNING id, version
)"""
_OUTBOX = """, box AS (
    INSERT INTO event_outbox (id, event_id, event_type, aggregate_id, aggregate_type, tenant_id,
                              event_data, created_at, status, retry_count)
    SELECT gen_random_uuid(), event_id, event_type, $1, $2, tenant_id,
           jsonb_build_object('event_id', event_id, 'aggregate_id', $1::uuid,
                              'aggregate_type', $2::text, 'tenant_id', tenant_id,
                              'occurred_at', occurred_at, 'payload', doc),
           now(), 'pending', 0
    FROM fresh ORDER BY ord
)"""
# A stream's version is its newest row, read as `ORDER BY version DESC LIMIT 1`: the same
# question as MAX(version), but PostgreSQL answers MAX by reading every index entry of the
# stream whenever it estimates the stream to be one row (a generic plan, a table not yet
# analyzed), which costs more the longer the stream.
_APPEND = """WITH cur AS (
    SELECT COALESCE((SELECT version FROM events
                     WHERE aggregate_id = $1::uuid AND aggregate_type = $2::text
                     ORDER BY version DESC LIMIT 1), 0) AS v
), ok AS (
    SELECT v FROM cur WHERE $3::int = -1 OR ($3::int = -2 AND v > 0) OR v = $3::int
), {body}
SELECT (SELECT v FROM cur), EXISTS (SELECT 1 FROM ok), (SELECT max(version) FROM ins),
       COALESCE((SELECT max(id) FROM ins), (SELECT max(id) FROM events))"""
_APPEND_SQL = _APPEND.format(body=_FRESH.lstrip())
_APPEND_OUTBOX_SQL = _APPEND.format(body=_FRESH.lstrip() + _OUTBOX)
# Inside a tenant scope the same statement also checks that the stream is the tenant's ($10):
# its latest event (one probe of the stream's unique index, as MAX(version) is) must carry
# $10, or nothing is inserted and the owner comes back in the fifth column.
_APPEND_SCOPED = """WITH head AS (
    SELECT version, tenant_id FROM events
    WHERE aggregate_id = $1::uuid AND aggregate_type = $2::text
    ORDER BY version DESC LIMIT 1
), cur AS (
    SELECT COALESCE((SELECT version FROM head), 0) AS v
), ok AS (
    SELECT v FROM cur WHERE ($3::int = -1 OR ($3::int = -2 AND v > 0) OR v = $3::int)
        AND NOT EXISTS (SELECT 1 FROM head WHERE tenant_id IS DISTINCT FROM $10::uuid)
), {body}
SELECT (SELECT v FROM cur), EXISTS (SELECT 1 FROM ok), (SELECT max(version) FROM ins),
       COALESCE((SELECT max(id) FROM ins), (SELECT max(id) FROM events)),
       (SELECT tenant_id FROM head)"""
_APPEND_SCOPED_SQL = _APPEND_SCOPED.format(body=_FRESH.lstrip())
_APPEND_SCOPED_OUTBOX_SQL = _APPEND_SCOPED.format(body=_FRESH.lstrip() + _OUTBOX)
# After an append was run again on a new connection (its first connection died before the
# answer came): its own events, if the first run stored them ($3 their ids, $4 the expected
# version). Only ever run then.
_LANDED = """SELECT max(version), max(id) FROM events
    WHERE event_id = ANY($3::uuid[]) AND aggregate_id = $1 AND aggregate_type = $2
      AND version > $4"""


async def _append_row(
    conn: DriverConnection, sql: str, args: tuple[object, ...], expected_version: int
) -> Row:
    """The append statement's one row, run again after a lost race (see below)."""
    for attempt in range(_MAX_ATTEMPTS):
        try:
            if attempt == 0 or expected_version >= 0:
                row = await conn.fetchrow(sql, *args)
            else:
                row = await _append_locked(conn, sql, args)
            break
        except Exception as exc:
            # A concurrent append won a version or an event id. Run again: the statement then
            # sees the winner (it has committed: PostgreSQL reports the violation only then)
            # and reports the true version, at once. ANY and STREAM_EXISTS append after the
            # winner instead, so their retries back off and take a per-stream lock to stop
            # losing the same race again and again.
            if not is_unique_violation(exc) or attempt == _MAX_ATTEMPTS - 1:
                raise
            if expected_version < 0:
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))
    assert row is not None  # the statement always returns one row
    return row


async def _append_locked(conn: DriverConnection, sql: str, args: tuple[object, ...]) -> Row | None:
    """The append statement after taking the stream's advisory lock (the contended path)."""
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text || ':' || $2::text, 0))",
            args[0], args[1],
        )
        return await conn.fetchrow(sql, *args)


def _columns(events: Sequence[DomainEvent], payloads: list[str]) -> tuple[list[Any], ...]:
    """The append's column arrays; an event id repeated within the batch is kept once."""
    ids: list[UUID] = []
    types: list[str] = []
    tenants: list[UUID | None] = []
    actors: list[str | None] = []
    times: list[datetime] = []
    kept: list[str] = []
    seen: set[UUID] = set()
    for event, payload in zip(events, payloads, strict=True):
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        ids.append(event.event_id)
        types.append(event.event_type)
        tenants.append(event.tenant_id)
        actors.append(event.actor_id)
        times.append(event.occurred_at)
        kept.append(payload)
    return ids, types, tenants, actors, times, kept


def append_statements(outbox: bool) -> tuple[str, str]:
    """The append statement, (unscoped, scoped in a tenant), with outbox rows or without."""
    if outbox:
        return _APPEND_OUTBOX_SQL, _APPEND_SCOPED_OUTBOX_SQL
    return _APPEND_SQL, _APPEND_SCOPED_SQL


def append_operation(
    statements: tuple[str, str],
    aggregate_id: UUID,
    aggregate_type: str,
    events: Sequence[DomainEvent],
    payloads: list[str],
    expected_version: int,
    tenant: UUID | None,
) -> Operation[Row | tuple[Any, ...]]:
    """The append as an operation safe to run again on a new connection (`DriverPool.run`):
    its row is (version before, matched, new version, last position, stream owner)."""
    args: tuple[object, ...] = (
        aggregate_id, aggregate_type, expected_version, *_columns(events, payloads)
    )
    sql = statements[0]
    if tenant is not None:
        args, sql = (*args, tenant), statements[1]
    runs = 0

    async def append(conn: DriverConnection) -> Row | tuple[Any, ...]:
        nonlocal runs
        runs += 1
        row = await _append_row(conn, sql, args, expected_version)
        if runs > 1 and not row[1] and expected_version >= 0:
            # Run again after the first connection died: a mismatch may be this very append,
            # stored by the first run before the answer was lost.
            landed = await conn.fetchrow(_LANDED, *args[:2], args[3], expected_version)
            if landed is not None and landed[0] is not None:
                return (landed[0], True, landed[0], landed[1], tenant)
        return row

    return append


def append_result(
    row: Row | tuple[Any, ...],
    aggregate_id: UUID,
    aggregate_type: str,
    expected_version: int,
    tenant: UUID | None,
) -> AppendResult:
    """The outcome of the append statement's row; raises what a refused append raises."""
    current, matched, new_version, position = row[0], row[1], row[2], row[3]
    if not matched:
        if tenant is not None and current > 0 and row[4] != tenant:
            check_stream_owner(aggregate_id, aggregate_type, tenant, row[4])
        raise OptimisticLockError(aggregate_id, expected_version, current)
    return AppendResult(True, current if new_version is None else new_version, position or 0)
