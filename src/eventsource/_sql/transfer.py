"""The SQL of copying and importing events (`eventsource.transfer`), written once for both
dialects: the two bookkeeping tables a transfer keeps in its TARGET, and the statements that
read raw rows and write a batch with its bookkeeping.

`transfer_progress` holds one row per job: the source position up to which every event is
done. `transfer_positions` maps each copied source position to the target position of the
first event written for it (NULL: dropped). A batch's events and both rows are written in
one transaction, so a job killed at any moment resumes without writing an event twice.
"""

from __future__ import annotations

__all__ = [
    "DDL",
    "MAPPED_AFTER",
    "PROGRESS",
    "RAW_COLUMNS",
    "SAVE_PROGRESS",
    "TRANSLATE",
    "dialect",
]

# Types both SQLite and PostgreSQL accept; `?` placeholders (see `dialect`).
DDL = (
    """CREATE TABLE IF NOT EXISTS transfer_progress (
    job TEXT PRIMARY KEY,
    source_position BIGINT NOT NULL,
    events_read BIGINT NOT NULL,
    events_written BIGINT NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0
)""",
    """CREATE TABLE IF NOT EXISTS transfer_positions (
    job TEXT NOT NULL,
    source_position BIGINT NOT NULL,
    target_position BIGINT,
    PRIMARY KEY (job, source_position)
)""",
)
PROGRESS = (
    "SELECT source_position, events_read, events_written, finished FROM transfer_progress"
    " WHERE job = ?"
)
SAVE_PROGRESS = (
    "INSERT INTO transfer_progress (job, source_position, events_read, events_written, finished)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (job) DO UPDATE SET"
    " source_position = excluded.source_position, events_read = excluded.events_read,"
    " events_written = excluded.events_written, finished = excluded.finished"
)
# Source events past the recorded progress that a batch already consumed (a batch may consume
# events past the point up to which everything is done: see `eventsource.transfer.copy`).
MAPPED_AFTER = (
    "SELECT source_position FROM transfer_positions WHERE job = ? AND source_position > ?"
)
# The target position a reader at source position ? may resume from: just before the first
# target event that came from a later source event (so nothing is skipped).
TRANSLATE = (
    "SELECT MIN(target_position) FROM transfer_positions"
    " WHERE job = ? AND source_position > ? AND target_position IS NOT NULL"
)
# The stored form of every event, in the order `RawEvent` lists its fields.
RAW_COLUMNS = (
    "id, event_id, event_type, aggregate_id, aggregate_type, tenant_id, actor_id, version,"
    ' "timestamp", {payload}, created_at'
)


def dialect(sql: str, postgresql: bool) -> str:
    """`sql` (written with `?` placeholders) for SQLite as it is, or for PostgreSQL with
    `$1, $2, ...`."""
    if not postgresql:
        return sql
    parts = sql.split("?")
    out = [parts[0]]
    for number, part in enumerate(parts[1:], start=1):
        out.append(f"${number}{part}")
    return "".join(out)
