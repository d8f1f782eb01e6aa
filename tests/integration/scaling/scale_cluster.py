"""Worker processes of `scale_child.py`, concurrent writers, and checks of the audit table:
shared by the scaling tests and `benchmarks/scale_out.py`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scale_child import Tick
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from eventsource.stores.interface import EventStore

CHILD = Path(__file__).with_name("scale_child.py")


@dataclass
class Cluster:
    """Worker processes over one database (`location` as `scale_child.py` takes it)."""

    backend: str
    location: str
    options: list[str] = field(default_factory=list)
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    async def prepare(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), "prepare", self.backend, self.location
        )
        assert await proc.wait() == 0

    async def spawn(
        self, worker: str, *extra: str, wait: bool = True
    ) -> asyncio.subprocess.Process:
        """Start a worker; with `wait`, return once it has registered and taken its share."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), "work", self.backend, self.location, "--worker", worker,
            *self.options, *extra, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.procs[worker] = proc
        if wait:
            assert proc.stdout is not None
            async with asyncio.timeout(60):
                line = await proc.stdout.readline()
            assert line.strip() == b"STARTED", (line, await self.stderr(worker))
        return proc

    def signal(self, worker: str, sig: signal.Signals) -> None:
        self.procs[worker].send_signal(sig)

    async def stderr(self, worker: str) -> str:
        proc = self.procs[worker]
        assert proc.stderr is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await proc.wait()
        if proc.returncode is None:
            return ""
        return (await proc.stderr.read()).decode()

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
                    proc.terminate()
        for proc in self.procs.values():
            try:
                async with asyncio.timeout(30):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


@dataclass
class Load:
    """`writers` concurrent writers appending `events` one by one over `streams` streams."""

    store: EventStore
    events: int
    streams: int
    writers: int = 8
    rate: float | None = None  # events per second in all, or as fast as possible
    appended: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (stream, pos)
    stamps: dict[str, float] = field(default_factory=dict)  # id -> time.time() appended

    async def run(self, on_progress: Callable[[int], None] | None = None) -> None:
        ids = [uuid.uuid4() for _ in range(self.streams)]
        per_stream = self.events // self.streams
        await asyncio.gather(*(self._write(ids[w::self.writers], per_stream, on_progress)
                               for w in range(self.writers)))

    async def _write(
        self, streams: list[uuid.UUID], per_stream: int, on_progress: Callable[[int], None] | None
    ) -> None:
        interval = self.writers / self.rate if self.rate else 0.0
        next_at = time.monotonic()
        for version in range(per_stream):
            for stream in streams:
                event = Tick(aggregate_id=stream, n=version + 1)
                await self.store.append_events(stream, "ScaleStream", [event], version)
                self.appended[str(event.event_id)] = (str(stream), version + 1)
                self.stamps[str(event.event_id)] = time.time()
                if on_progress is not None:
                    on_progress(len(self.appended))
                if interval:
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def audited(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT COUNT(*) FROM scale_audit"))).scalar_one())


async def wait_audited(engine: AsyncEngine, count: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while await audited(engine) < count:  # noqa: ASYNC110 - polls another process's state
            await asyncio.sleep(0.2)


async def check_exact(engine: AsyncEngine, appended: dict[str, tuple[str, int]]) -> None:
    """Every appended event audited exactly once, each stream contiguous and in order."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT event_id, aggregate_id, stream_position, prev FROM scale_audit"
        ))).all()
        last = {str(a): int(n) for a, n in (await conn.execute(text(
            "SELECT aggregate_id, last_position FROM scale_streams"
        ))).all()}
    assert len(rows) == len(appended)
    assert {r[0]: (r[1], r[2]) for r in rows} == appended
    assert all(prev == position - 1 for _, _, position, prev in rows)
    ends: dict[str, int] = {}
    for stream, position in appended.values():
        ends[stream] = max(ends.get(stream, 0), position)
    assert last == ends
