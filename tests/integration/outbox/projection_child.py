"""A projection process for the end-to-end test: consumes deposits from a broker and keeps
account balances in an SQLite read model, applying each account's events strictly in order.

Usage: python projection_child.py KIND URL NAME READ_MODEL READY
  KIND, URL, NAME  the broker (see outbox_brokers.Broker)
  READ_MODEL       SQLite file: rm_accounts(aggregate_id, version, balance), rm_log (every
                   delivery), rm_gaps (an event that arrived before its predecessor)
  READY            file written once the consumer is subscribed
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

from outbox_brokers import Broker
from outbox_support import Deposited, register

SCHEMA = """
CREATE TABLE IF NOT EXISTS rm_accounts (aggregate_id TEXT PRIMARY KEY, version INT, balance INT);
CREATE TABLE IF NOT EXISTS rm_log (seq INTEGER PRIMARY KEY, aggregate_id TEXT, n INT);
CREATE TABLE IF NOT EXISTS rm_gaps (aggregate_id TEXT, n INT, version INT);
"""


def apply(db: sqlite3.Connection, event: Deposited) -> None:
    """One transaction per event: log it, then apply it if it is the next one (a redelivered
    event is skipped, an early one recorded as a gap)."""
    account = str(event.aggregate_id)
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO rm_log (aggregate_id, n) VALUES (?, ?)", (account, event.n))
        row = db.execute(
            "SELECT version FROM rm_accounts WHERE aggregate_id = ?", (account,)
        ).fetchone()
        version = row[0] if row else 0
        if event.n == version + 1:
            db.execute(
                "INSERT INTO rm_accounts (aggregate_id, version, balance) VALUES (?, ?, ?) "
                "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version, "
                "balance = rm_accounts.balance + excluded.balance",
                (account, event.n, event.amount),
            )
        elif event.n > version + 1:
            db.execute("INSERT INTO rm_gaps VALUES (?, ?, ?)", (account, event.n, version))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


async def main(kind: str, url: str, name: str, read_model: str, ready: str) -> None:
    register()
    db = sqlite3.connect(read_model, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(SCHEMA)
    bus = Broker(kind, url, name).bus("projection")
    bus.subscribe(Deposited, lambda event: apply(db, event))
    consuming = asyncio.create_task(bus.start_consuming())
    await bus.wait_until_consuming(timeout=60)
    Path(ready).write_text("subscribed")  # noqa: ASYNC240 - once, a few bytes
    await consuming


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
