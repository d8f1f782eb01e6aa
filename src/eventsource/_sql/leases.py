"""The SQL of partition leases and leader leases, written once for SQLite and PostgreSQL.

Every time is seconds since the epoch as read from the DATABASE clock (`{now}`, one
expression per dialect), so workers on machines whose clocks disagree still agree on who
holds a lease. Statements use SQLAlchemy's `:name` parameters; `statements(dialect)` fills
in the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DDL",
    "LeaseSQL",
    "fence_statement",
    "in_list",
    "release_statement",
    "statements",
    "text",
]


def text(sql: str) -> Any:
    """`sqlalchemy.text(sql)`, SQLAlchemy imported only when a statement is made."""
    from sqlalchemy import text as sqlalchemy_text

    return sqlalchemy_text(sql)

_NOW = {
    "postgresql": "EXTRACT(EPOCH FROM clock_timestamp())::float8",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}

DDL = (
    """CREATE TABLE IF NOT EXISTS scaling_subscriptions (
        subscription TEXT PRIMARY KEY,
        partitions INTEGER NOT NULL,
        handler TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS scaling_partitions (
        subscription TEXT NOT NULL,
        part INTEGER NOT NULL,
        owner TEXT,
        epoch BIGINT NOT NULL DEFAULT 0,
        expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        heartbeat_at DOUBLE PRECISION,
        cursor_text TEXT,
        last_position BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (subscription, part)
    )""",
    """CREATE TABLE IF NOT EXISTS scaling_workers (
        subscription TEXT NOT NULL,
        worker TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (subscription, worker)
    )""",
    """CREATE TABLE IF NOT EXISTS scaling_versions (
        name TEXT PRIMARY KEY,
        active INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS scaling_leaders (
        name TEXT PRIMARY KEY,
        owner TEXT,
        epoch BIGINT NOT NULL DEFAULT 0,
        expires_at DOUBLE PRECISION NOT NULL DEFAULT 0
    )""",
)


@dataclass(frozen=True)
class LeaseSQL:
    """The statements of one dialect."""

    now: str
    register: str
    registered: str
    add_partition: str
    renew: str
    beat: str
    live_workers: str
    forget_dead: str
    claim: str
    release_all: str
    leave: str
    owners: str
    lag_rows: str
    lead: str
    leader_row: str
    leader_fence: str
    resign: str
    repartition_check: str
    repartition_from: str
    repartition_clear: str
    repartition_insert: str
    repartition_count: str
    active_version: str
    switch_version: str
    forget_partitions: str
    forget_subscription: str


def statements(dialect: str) -> LeaseSQL:
    """The lease statements for `dialect` (`"postgresql"` or `"sqlite"`)."""
    now = _NOW[dialect]
    free = f"(owner IS NULL OR expires_at < {now})"
    return LeaseSQL(
        now=f"SELECT {now}",
        register="INSERT INTO scaling_subscriptions (subscription, partitions, handler) "
        "VALUES (:s, :p, :h) ON CONFLICT (subscription) DO NOTHING",
        registered="SELECT partitions, handler FROM scaling_subscriptions WHERE subscription = :s",
        add_partition="INSERT INTO scaling_partitions (subscription, part) VALUES (:s, :n) "
        "ON CONFLICT (subscription, part) DO NOTHING",
        renew=f"UPDATE scaling_partitions SET expires_at = {now} + :ttl, heartbeat_at = {now} "
        "WHERE subscription = :s AND owner = :o RETURNING part, epoch",
        beat="INSERT INTO scaling_workers (subscription, worker, expires_at) "
        f"VALUES (:s, :o, {now} + :ttl) ON CONFLICT (subscription, worker) "
        f"DO UPDATE SET expires_at = {now} + :ttl",
        live_workers="SELECT worker FROM scaling_workers "
        f"WHERE subscription = :s AND expires_at > {now} ORDER BY worker",
        forget_dead="DELETE FROM scaling_workers "
        f"WHERE subscription = :s AND expires_at < {now} - 60",
        claim=f"UPDATE scaling_partitions SET owner = :o, epoch = epoch + 1, "
        f"expires_at = {now} + :ttl, heartbeat_at = {now} "
        f"WHERE subscription = :s AND {free} AND part IN ("
        f"SELECT part FROM scaling_partitions WHERE subscription = :s AND {free} "
        "ORDER BY part LIMIT :n) RETURNING part, epoch, cursor_text, last_position",
        release_all="UPDATE scaling_partitions SET owner = NULL, expires_at = 0 "
        "WHERE subscription = :s AND owner = :o",
        leave="DELETE FROM scaling_workers WHERE subscription = :s AND worker = :o",
        owners="SELECT part, owner, epoch FROM scaling_partitions WHERE subscription = :s",
        lag_rows="SELECT part, owner, epoch, heartbeat_at, cursor_text, last_position, "
        f"{now} FROM scaling_partitions WHERE subscription = :s ORDER BY part",
        lead=f"UPDATE scaling_leaders SET owner = :o, expires_at = {now} + :ttl, "
        "epoch = CASE WHEN owner = :o AND :held THEN epoch ELSE epoch + 1 END "
        f"WHERE name = :n AND (owner = :o OR owner IS NULL OR expires_at < {now}) "
        "RETURNING epoch",
        leader_row="INSERT INTO scaling_leaders (name) VALUES (:n) ON CONFLICT (name) DO NOTHING",
        leader_fence="UPDATE scaling_leaders SET epoch = epoch "
        "WHERE name = :n AND owner = :o AND epoch = :e RETURNING epoch",
        resign="UPDATE scaling_leaders SET owner = NULL, expires_at = 0 "
        "WHERE name = :n AND owner = :o AND epoch = :e",
        repartition_check="SELECT COUNT(DISTINCT COALESCE(cursor_text, '')), "
        f"SUM(CASE WHEN owner IS NOT NULL AND expires_at > {now} THEN 1 ELSE 0 END) "
        "FROM scaling_partitions WHERE subscription = :s",
        repartition_from="SELECT MIN(cursor_text), MIN(last_position), MAX(epoch) "
        "FROM scaling_partitions WHERE subscription = :s",
        repartition_clear="DELETE FROM scaling_partitions WHERE subscription = :s",
        repartition_insert="INSERT INTO scaling_partitions "
        "(subscription, part, epoch, cursor_text, last_position) VALUES (:s, :n, :e, :c, :pos)",
        repartition_count="UPDATE scaling_subscriptions SET partitions = :p "
        "WHERE subscription = :s",
        active_version="SELECT active FROM scaling_versions WHERE name = :n",
        switch_version="INSERT INTO scaling_versions (name, active) VALUES (:n, :v) "
        "ON CONFLICT (name) DO UPDATE SET active = excluded.active",
        forget_partitions="DELETE FROM scaling_partitions WHERE subscription = :s",
        forget_subscription="DELETE FROM scaling_subscriptions WHERE subscription = :s",
    )


def in_list(prefix: str, count: int) -> str:
    """`(:prefix0, :prefix1, ...)` for an IN clause of `count` parameters."""
    return "(" + ", ".join(f":{prefix}{i}" for i in range(count)) + ")"


def fence_statement(count: int) -> str:
    """Move `count` partitions' checkpoints to one cursor, only where this worker still holds
    them at the epoch it knows (`:p<i>`, `:e<i>`): the fencing check. The caller compares the
    number of rows changed with `count`."""
    held = " OR ".join(f"(part = :p{i} AND epoch = :e{i})" for i in range(count))
    return (
        "UPDATE scaling_partitions SET cursor_text = :c, last_position = :pos "
        f"WHERE subscription = :s AND owner = :o AND ({held})"
    )


def release_statement(count: int) -> str:
    """Give up `count` partitions (`:p<i>`) this worker holds."""
    return (
        "UPDATE scaling_partitions SET owner = NULL, expires_at = 0 "
        f"WHERE subscription = :s AND owner = :o AND part IN {in_list('p', count)}"
    )
