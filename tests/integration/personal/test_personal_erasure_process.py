"""Another process sees an erasure on PostgreSQL (issue 18, acceptance 2): its key cache would
trust the buyer's key for an hour, so only the NOTIFY sent by `forget` can evict it; the child
reports how long after `forget` committed it read the replacement."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path
from uuid import uuid4

import pytest
from personal_support import NAME, open_backend, placed

HERE = Path(__file__).parent


@pytest.mark.postgresql
async def test_a_second_process_sees_the_erasure(tmp_path: Path) -> None:
    async with open_backend("postgresql", tmp_path) as backend:
        order_id = uuid4()
        await backend.store.append_events(order_id, "Order", [placed(order_id)], 0)
        kek = base64.b64encode(backend.kek_bytes).decode()
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "erasure_child.py"), str(backend.pg_url),
            str(backend.schema), kek, str(order_id),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])},
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            ready = await asyncio.wait_for(child.stdout.readline(), 60)
            assert ready.decode().split(maxsplit=1) == ["ready", NAME + "\n"]
            await backend.personal.forget("buyer-1")
            child.stdin.write(b"forgot\n")
            await child.stdin.drain()
            answer = (await asyncio.wait_for(child.stdout.readline(), 60)).decode()
        finally:
            await asyncio.wait_for(child.wait(), 60)
        assert answer.startswith("erased "), answer
