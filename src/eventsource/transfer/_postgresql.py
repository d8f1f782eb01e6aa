"""The PostgreSQL adapter of a transfer: each batch is ONE statement (one round trip, one
transaction) that appends the events, writes their map rows and records the progress."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsource._sql import postgresql_events as sqlpg
from eventsource._sql import transfer as sql
from eventsource._sql.postgresql import DriverConnection, Operation, is_unique_violation
from eventsource._sql.sqlite import utc_iso
from eventsource.stores.postgresql import PostgreSQLEventStore
from eventsource.transfer._endpoint import Endpoint, Mapping, already_stored
from eventsource.transfer.rows import JobState, Outgoing, RawEvent

__all__ = ["PostgreSQLEndpoint"]

_RAW = (
    f"SELECT {sql.RAW_COLUMNS.format(payload='payload::text')} FROM events"
    " WHERE id > $1 ORDER BY id LIMIT $2"
)
_PROGRESS_CTE = f"""progress AS ({sql.dialect(sql.SAVE_PROGRESS, True)} RETURNING 1)"""
# $1-$5: the progress row; $6-$13: the events' columns; $14, $15: source positions and the
# event id of the first event written for each (NULL: dropped). Versions continue each stream.
_COPY = f"""WITH {_PROGRESS_CTE}, t AS (
    SELECT * FROM unnest($6::uuid[], $7::text[], $8::uuid[], $9::text[], $10::uuid[],
                         $11::text[], $12::timestamptz[], $13::text[]) WITH ORDINALITY
        AS t(event_id, event_type, aggregate_id, aggregate_type, tenant_id, actor_id,
             occurred_at, payload, ord)
), {sqlpg.APPEND_AT_HEADS.format(returning='id, event_id')}, mapped AS (
    INSERT INTO transfer_positions (job, source_position, target_position)
    SELECT $1, m.source, ins.id
    FROM unnest($14::bigint[], $15::uuid[]) AS m(source, event_id)
    LEFT JOIN ins ON ins.event_id = m.event_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM mapped), (SELECT count(*) FROM progress)"""
# $1-$5: the progress row; $6-$16: the rows as stored. The id sequence moves past them.
_IMPORT = f"""WITH {_PROGRESS_CTE}, ins AS (
    INSERT INTO events (id, event_id, event_type, aggregate_id, aggregate_type, tenant_id,
                        actor_id, version, "timestamp", payload, created_at)
    SELECT * FROM unnest($6::bigint[], $7::uuid[], $8::text[], $9::uuid[], $10::text[],
                         $11::uuid[], $12::text[], $13::int[], $14::timestamptz[],
                         $15::text[]::jsonb[], $16::timestamptz[])
    RETURNING id
)
SELECT (SELECT setval(pg_get_serial_sequence('events', 'id'), max(id)) FROM ins),
       (SELECT count(*) FROM progress)"""


class PostgreSQLEndpoint(Endpoint):
    """A `PostgreSQLEventStore` as a transfer's source or target."""

    store: PostgreSQLEventStore

    async def _run(self, operation: Operation[Any]) -> Any:
        await self.store._ensure_ready()
        try:
            return await self.store._run("transfer", operation)
        except Exception as exc:
            cause = exc if is_unique_violation(exc) else exc.__cause__
            if cause is not None and is_unique_violation(cause):
                raise already_stored(cause) from exc
            raise

    async def prepare(self) -> None:
        async def create(conn: DriverConnection) -> None:
            for statement in sql.DDL:
                await conn.execute(statement)

        await self._run(create)

    async def job_state(self, job: str) -> JobState | None:
        statement = sql.dialect(sql.PROGRESS, True)
        row = await self._run(lambda conn: conn.fetchrow(statement, job))
        return None if row is None else JobState(row[0], row[1], row[2], bool(row[3]))

    async def mapped_after(self, job: str, position: int) -> set[int]:
        statement = sql.dialect(sql.MAPPED_AFTER, True)
        rows = await self._run(lambda conn: conn.fetch(statement, job, position))
        return {row[0] for row in rows}

    async def translate(self, job: str, position: int) -> int | None:
        statement = sql.dialect(sql.TRANSLATE, True)
        found = await self._run(lambda conn: conn.fetchval(statement, job, position))
        return None if found is None else int(found)

    async def read_raw(self, after: int, limit: int) -> list[RawEvent]:
        rows = await self._run(lambda conn: conn.fetch(_RAW, after, limit))
        return [
            RawEvent(
                row[0], str(row[1]), row[2], str(row[3]), row[4],
                None if row[5] is None else str(row[5]), row[6], row[7], utc_iso(row[8]),
                row[9], utc_iso(row[10]),
            )
            for row in rows
        ]

    async def write_copy(
        self, job: str, batch: Sequence[Outgoing], mapping: Mapping, state: JobState
    ) -> None:
        events = [item.event for item in batch]
        ids = [event.event_id for event in events]
        args = (
            *_progress(job, state),
            ids, [event.event_type for event in events],
            [event.aggregate_id for event in events], [item.aggregate_type for item in batch],
            [event.tenant_id for event in events], [event.actor_id for event in events],
            [event.occurred_at for event in events], [item.payload for item in batch],
            [source for source, _ in mapping],
            [None if index is None else ids[index] for _, index in mapping],
        )
        await self._run(lambda conn: conn.fetchrow(_COPY, *args))
        self.store._signal_commit()

    async def write_import(self, job: str, rows: Sequence[RawEvent], state: JobState) -> None:
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(RawEvent._fields)
        args = (
            *_progress(job, state),
            list(columns[0]), [UUID(each) for each in columns[1]], list(columns[2]),
            [UUID(each) for each in columns[3]], list(columns[4]),
            [None if each is None else UUID(each) for each in columns[5]], list(columns[6]),
            list(columns[7]), [datetime.fromisoformat(each) for each in columns[8]],
            list(columns[9]), [datetime.fromisoformat(each) for each in columns[10]],
        )
        await self._run(lambda conn: conn.fetchrow(_IMPORT, *args))
        self.store._signal_commit()


def _progress(job: str, state: JobState) -> tuple[object, ...]:
    return (job, state.position, state.events_read, state.events_written, int(state.finished))
