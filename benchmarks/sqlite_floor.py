"""The SQLite floor on this machine: what plain `sqlite3` does with the store's own schema.

    .venv/bin/python benchmarks/sqlite_floor.py [--reps N] [--json]

Same settings as `SQLiteEventStore` (a file, WAL, `synchronous = FULL`) and the shipped
`get_schema("events", "sqlite")` table, in a fresh temporary directory per repetition. Rows are
ready-made tuples (no event objects, no JSON encoding; time-ordered event ids, as the store's
are), so the numbers are what the disk and the SQLite library allow; `benchmarks/run.py
--backend sqlite` run the same minute shows how close the store comes. Workloads:

* `fsync`: rewrite one 4 KiB block of a file and `fdatasync` it (the disk's commit latency).
* `commit1`: one `INSERT` per transaction, autocommit (one row per commit).
* `append1`: what a store append is: `BEGIN IMMEDIATE`, `SELECT MAX(version)` of the stream, one
  `INSERT`, `COMMIT` — 1,000 streams round-robin, as W1.
* `batch100`: the same with `executemany` of 100 rows per transaction, as W2 (events/s).
* `read`: `SELECT` of every column the store reads, all 20,000 rows in id order (rows/s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

_SRC = Path(__file__).resolve().parent.parent / "src"
if (_SRC / "eventsource").is_dir():
    sys.path.insert(0, str(_SRC))

from eventsource._ids import new_uuid7  # noqa: E402  (after the sys.path line)
from eventsource.migrations import get_schema  # noqa: E402

INSERT = (
    "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_type, tenant_id, actor_id,"
    " version, timestamp, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
VERSION = "SELECT MAX(version) FROM events WHERE aggregate_id = ? AND aggregate_type = ?"
READ = (
    "SELECT id, event_id, event_type, payload, version, aggregate_id, aggregate_type, created_at"
    " FROM events WHERE id > ? ORDER BY id LIMIT 1000"
)
PAYLOAD = "x" * 560  # about the size of the benchmark event's JSON


def connect(directory: str) -> sqlite3.Connection:
    db = sqlite3.connect(os.path.join(directory, "events.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.executescript(get_schema("events", "sqlite"))
    return db


def row(aggregate_id: str, version: int) -> tuple[object, ...]:
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    return (str(new_uuid7()), "BenchItemAdded", aggregate_id, "BenchCart", None, None, version,
            now, PAYLOAD, now)


def fsync_rate(directory: str, n: int) -> float:
    path = os.path.join(directory, "block")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 4096
        os.pwrite(fd, block, 0)
        os.fsync(fd)
        start = time.perf_counter()
        for _ in range(n):
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)


def commit1_rate(db: sqlite3.Connection, n: int) -> float:
    rows = [row(str(uuid.uuid4()), 1) for _ in range(n)]
    start = time.perf_counter()
    for values in rows:
        db.execute(INSERT, values)
    return n / (time.perf_counter() - start)


def append_rate(db: sqlite3.Connection, streams: int, per_stream: int, batch: int) -> float:
    ids = [str(uuid.uuid4()) for _ in range(streams)]
    plan = [
        (aggregate_id, [row(aggregate_id, k * batch + i + 1) for i in range(batch)])
        for k in range(per_stream)
        for aggregate_id in ids
    ]
    start = time.perf_counter()
    for aggregate_id, rows in plan:
        db.execute("BEGIN IMMEDIATE")
        current = db.execute(VERSION, (aggregate_id, "BenchCart")).fetchone()[0] or 0
        if current != rows[0][6] - 1:
            raise AssertionError("version mismatch")
        if batch == 1:
            db.execute(INSERT, rows[0])
        else:
            db.executemany(INSERT, rows)
        db.execute("COMMIT")
    return streams * per_stream * batch / (time.perf_counter() - start)


def read_rate(db: sqlite3.Connection) -> float:
    start, count, last = time.perf_counter(), 0, 0
    while True:
        rows = db.execute(READ, (last,)).fetchall()
        if not rows:
            break
        count += len(rows)
        last = rows[-1][0]
    return count / (time.perf_counter() - start)


def on_fresh_database(action: Callable[[sqlite3.Connection], float]) -> Callable[[str], float]:
    def run(directory: str) -> float:
        db = connect(directory)
        try:
            return action(db)
        finally:
            db.close()

    return run


def measure(reps: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "fsync": [], "commit1": [], "append1": [], "batch100": [], "read": []
    }
    runs: list[tuple[str, Callable[[str], float]]] = [
        ("fsync", lambda d: fsync_rate(d, 2_000)),
        ("commit1", on_fresh_database(lambda db: commit1_rate(db, 5_000))),
        ("append1", on_fresh_database(lambda db: append_rate(db, 1_000, 5, 1))),
        ("batch100", on_fresh_database(lambda db: append_rate(db, 20, 10, 100))),
    ]
    for _ in range(reps):
        for name, action in runs:
            directory = tempfile.mkdtemp(prefix="eventsource-floor-")
            try:
                results[name].append(action(directory))
                if name == "batch100":  # read back the 20,000 rows just written
                    results["read"].append(on_fresh_database(read_rate)(directory))
            finally:
                shutil.rmtree(directory, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = measure(args.reps)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"sqlite {sqlite3.sqlite_version}, WAL, synchronous FULL, {args.reps} reps, "
          f"temp dir {tempfile.gettempdir()}")
    units = {"fsync": "fdatasync/s", "commit1": "commits/s", "append1": "appends/s",
             "batch100": "events/s", "read": "rows/s"}
    for name, values in results.items():
        print(f"{name:<10}{statistics.median(values):>12,.0f}  "
              f"{min(values):>10,.0f} - {max(values):<10,.0f} {units[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
