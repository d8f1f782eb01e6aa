"""Acceptance: 50,000 events copied SQLite -> PostgreSQL through the merge rule, the copy
SIGKILLed about half-way in a subprocess, then resumed: every stream as the rule makes it,
in order, no event twice, and the projection rebuilt on the target equals the source's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import transfer_support as shop

from eventsource.subscriptions.rebuild import rebuild_projection
from eventsource.transfer import copy_events

HERE = Path(__file__).parent


@pytest.mark.postgresql
@pytest.mark.slow
async def test_a_copy_killed_half_way_resumes_without_writing_anything_twice(
    tmp_path: Path, pg_url: str, pg_schema: str, pg_session_factory: Any
) -> None:
    source_path = tmp_path / "source.db"
    async with shop.sqlite_store(source_path) as source:
        total = await shop.seed(source, 50_000)
        head = await source.get_global_position()
    assert head == total >= 50_000
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    args = [sys.executable, str(HERE / "copy_runner.py"), str(source_path), pg_url, pg_schema]
    killed_at, returncode, failure = _kill_when_past(args, env, head // 2)
    assert returncode == -signal.SIGKILL, failure
    assert head // 2 <= killed_at < head

    target = shop.fresh_pg_store(pg_session_factory)
    try:
        copied_before = await target.get_global_position()
        assert copied_before > 0
        async with shop.sqlite_store(source_path) as source:
            done = await copy_events(source, target, shop.merge_priced, batch_size=1000)
            assert done.finished
            assert done.events_read == head  # every source event consumed exactly once
            source_streams = await shop.stream_types(source)
            source_model = shop.CartTotals()
            await rebuild_projection(source_model, source, progress_interval=60)
        copied = await shop.stream_types(target)  # asserts per-stream positions 1, 2, 3, ...
        assert copied == shop.expected_types(source_streams)
        ids = [s.event_id async for s in target.read_all()]
        assert len(ids) == len(set(ids)) == done.events_written
        assert len(ids) == sum(len(types) for types in copied.values())
        target_model = shop.CartTotals()
        await rebuild_projection(target_model, target, progress_interval=60)
        assert target_model.carts == source_model.carts
    finally:
        await target.close()


def _kill_when_past(args: list[str], env: dict[str, str], position: int) -> tuple[int, int, str]:
    """Run the copy; SIGKILL it once it reports a source position at or past `position`:
    (the position reported, its exit code, its stderr)."""
    killed_at = 0
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        for line in child.stdout:
            if int(line) >= position:
                child.send_signal(signal.SIGKILL)
                killed_at = int(line)
                break
        child.wait(timeout=120)
        return killed_at, child.returncode, child.stderr.read()
