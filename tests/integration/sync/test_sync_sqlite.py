"""The synchronous API on a real SQLite file: repository, snapshots, the subscription runner,
process exit without close(), fork, and a running loop in the caller's thread."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest
from _sync_support import SyncCounter, SyncIncremented, counter, portal

from eventsource import DomainEvent
from eventsource.sync import (
    Portal,
    PortalThreadError,
    SyncAggregateRepository,
    SyncEventStore,
    SyncSnapshotStore,
    SyncSubscriptionRunner,
)

__all__ = ["portal"]  # fixtures, imported for pytest


SRC = Path(__file__).resolve().parents[3] / "src"


def test_repository_and_snapshots_in_one_file(tmp_path: Path, portal: Portal) -> None:
    path = tmp_path / "app.db"
    store = SyncEventStore.sqlite(path, portal=portal)
    repo = SyncAggregateRepository(
        store, counter, "SyncCounter",
        snapshot_store=SyncSnapshotStore.beside(store), snapshot_threshold=5,
    )
    aggregate = repo.create_new(uuid.uuid4())
    for _ in range(7):
        aggregate.increment()
    repo.save(aggregate)
    loaded = repo.load(aggregate.aggregate_id)
    assert (loaded.version, loaded.state.count if loaded.state else None) == (7, 7)
    with sqlite3.connect(path) as db:  # the snapshot is in the store's own file
        rows = db.execute("SELECT version FROM snapshots").fetchall()
        events = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert rows == [(7,)]
    assert events == 7


def test_works_inside_a_running_loop_on_a_file(tmp_path: Path, portal: Portal) -> None:
    store = SyncEventStore.sqlite(tmp_path / "nb.db", portal=portal)
    repo = SyncAggregateRepository(store, counter, "SyncCounter")
    aggregate_id = uuid.uuid4()

    async def cell() -> int:
        aggregate = repo.load_or_create(aggregate_id)
        aggregate.increment()
        repo.save(aggregate)
        return repo.load(aggregate_id).version

    assert asyncio.run(cell()) == 1
    assert asyncio.run(cell()) == 2


class Tally:
    """A synchronous projection that reads the store through the sync API while handling."""

    def __init__(self, store: SyncEventStore) -> None:
        self.store = store
        self.seen: list[tuple[uuid.UUID, int]] = []
        self.threads: set[str] = set()

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [SyncIncremented]

    def handle(self, event: DomainEvent) -> None:
        self.threads.add(threading.current_thread().name)
        version = self.store.get_stream_version(event.aggregate_id, "SyncCounter")
        self.seen.append((event.event_id, version))


class AsyncMisuse:
    """An async handler that calls the sync API: refused with PortalThreadError."""

    def __init__(self, store: SyncEventStore) -> None:
        self.store = store
        self.errors: list[BaseException] = []

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [SyncIncremented]

    async def handle(self, event: DomainEvent) -> None:
        try:
            self.store.get_global_position()
        except PortalThreadError as exc:
            self.errors.append(exc)


def test_runner_runs_sync_handlers_in_threads_and_keeps_checkpoints_in_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runner.db"
    with Portal("runner-1") as portal:
        store = SyncEventStore.sqlite(path, portal=portal)
        repo = SyncAggregateRepository(store, counter, "SyncCounter")
        tally, misuse = Tally(store), AsyncMisuse(store)
        runner = SyncSubscriptionRunner(store)
        runner.subscribe(tally)
        runner.subscribe(misuse)
        with runner:
            for _ in range(3):
                aggregate = repo.create_new(uuid.uuid4())
                aggregate.increment()
                repo.save(aggregate)
            assert runner.wait_until_caught_up(timeout=20)
        assert len(tally.seen) == 3
        assert all(version == 1 for _, version in tally.seen)
        assert all(name.startswith("eventsource-sync-handler") for name in tally.threads)
        assert len(misuse.errors) == 3
        aggregate = repo.create_new(uuid.uuid4())
        aggregate.increment()
        later = aggregate.uncommitted_events[0].event_id
        repo.save(aggregate)  # stored while no runner runs
    with sqlite3.connect(path) as db:
        saved = dict(db.execute("SELECT projection_name, global_position FROM "
                                "projection_checkpoints").fetchall())
    assert saved["Tally"] == 3
    with Portal("runner-2") as portal:  # a new process, in effect: resumes at its checkpoint
        store = SyncEventStore.sqlite(path, portal=portal)
        again = Tally(store)
        runner = SyncSubscriptionRunner(store)
        runner.subscribe(again)
        with runner:
            assert runner.wait_until_caught_up(timeout=20)
        assert [event_id for event_id, _ in again.seen] == [later]


def run_child(code: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONWARNINGS": "always"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )


def test_a_process_that_never_closes_shuts_down_cleanly(tmp_path: Path) -> None:
    """The portal closes what it built at interpreter exit: the SQLite store is closed as if
    by hand (its WAL and shared-memory files are checkpointed away; a killed connection leaves
    them behind), after the program's last (non-daemon) thread made its last save."""
    script = f"""
        import sys, threading, time, uuid
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from _sync_support import counter
        from eventsource.sync import SyncAggregateRepository, SyncEventStore
        store = SyncEventStore.sqlite("left-open.db")
        repo = SyncAggregateRepository(store, counter, "SyncCounter")

        def save() -> None:
            aggregate = repo.create_new(uuid.uuid4())
            aggregate.increment()
            repo.save(aggregate)
            print("saved", flush=True)

        save()

        def late() -> None:
            time.sleep(0.5)  # still at work when the main thread ends
            save()

        threading.Thread(target=late).start()
    """
    done = run_child(script, tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["saved", "saved"]
    assert "Error" not in done.stderr, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["left-open.db"]
    with sqlite3.connect(tmp_path / "left-open.db") as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_loop_of_its_own(tmp_path: Path, portal: Portal) -> None:
    """Gunicorn --preload, Celery prefork: facades made (and used) before the fork work in
    the child, on a new loop thread, and the parent's store keeps working."""
    store = SyncEventStore.sqlite(tmp_path / "fork.db", portal=portal)
    repo = SyncAggregateRepository(store, counter, "SyncCounter")
    parent_made = repo.create_new(uuid.uuid4())
    parent_made.increment()
    repo.save(parent_made)
    child_id = uuid.uuid4()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        status = 1
        try:
            aggregate = repo.create_new(child_id)
            aggregate.increment()
            repo.save(aggregate)
            status = 0 if repo.load(parent_made.aggregate_id).version == 1 else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert repo.load(child_id).version == 1  # the child's save, seen by the parent
    aggregate = repo.load(parent_made.aggregate_id)
    aggregate.increment()
    repo.save(aggregate)
    assert isinstance(repo.load(parent_made.aggregate_id), SyncCounter)
