"""Benchmark `eventsource projections rebuild` on 200,000 events, as an operator runs it: the
installed console script in a pseudo-terminal, drawing its progress bar.

    .venv/bin/python benchmarks/rebuild_cli.py [--events 200000]

Seeds a SQLite file (1,000 streams, 50 events per append, round-robin), then runs
`eventsource --url sqlite:///... --app rebuild_cli:cli_app projections rebuild Totals --yes`
with this directory on PYTHONPATH (the module is its own `--app`: a projection summing the
quantities of `BenchItemAdded` per stream). Prints the wall time of the command (interpreter
start included), events/s, and whether the bar showed events/s and an ETA.
See docs/reference/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent / "src"), str(_HERE)]

from copy_transform import seed  # noqa: E402
from eventsource.cli import CliApp  # noqa: E402
from run import BenchItemAdded  # noqa: E402


class Totals:
    """Quantity per stream."""

    projection_name = "Totals"

    def __init__(self) -> None:
        self.quantities: dict[UUID, int] = {}

    def subscribed_to(self) -> list[type[Any]]:
        return [BenchItemAdded]

    async def reset(self) -> None:
        self.quantities.clear()

    async def handle(self, event: Any) -> None:
        self.quantities[event.aggregate_id] = (
            self.quantities.get(event.aggregate_id, 0) + event.quantity
        )


def cli_app() -> CliApp:
    return CliApp(projections=[Totals()])


def in_terminal(args: list[str]) -> tuple[int, str, float]:
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSOURCE_")}
    env.update(PYTHONPATH=os.pathsep.join([str(_HERE.parent / "src"), str(_HERE)]),
               COLUMNS="120", TERM="xterm")
    started = time.perf_counter()
    with subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, env=env) as child:
        os.close(follower)
        drawn = bytearray()
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
        code = child.wait()
    seconds = time.perf_counter() - started
    os.close(leader)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.decode("utf-8", "replace")), seconds


async def fill(path: str, events: int) -> None:
    from eventsource.stores.sqlite import SQLiteEventStore

    async with SQLiteEventStore(path) as store:
        await store.initialize()
        await seed(store, events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="eventsource-bench-")
    try:
        path = os.path.join(folder, "events.db")
        asyncio.run(fill(path, args.events))
        script = shutil.which("eventsource", path=os.path.dirname(sys.executable)) or "eventsource"
        code, drawn, seconds = in_terminal([
            script, "--url", f"sqlite:///{path}", "--app", "rebuild_cli:cli_app",
            "projections", "rebuild", "Totals", "--yes",
        ])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    bar = bool(re.search(r"events/s +ETA \d+:\d\d:\d\d", drawn))
    summary = next((line for line in drawn.splitlines() if line.startswith("rebuilt")), "")
    print(f"projections rebuild, {args.events:,} events: exit {code}, {seconds:.1f} s wall "
          f"({args.events / seconds:,.0f} events/s); bar with events/s and ETA: {bar}")
    print(summary)
    return 0 if code == 0 and bar else 1


if __name__ == "__main__":
    sys.exit(main())
