"""The SQLite store on aiosqlite's worker thread (the `_compat.aiosqlite` fast path) and on the
plain fallback (a thread of the library's own) stores and reads exactly the same."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID, uuid4

import pytest
from _sqlite_support import SqliteItemAdded, item

from eventsource import OptimisticLockError
from eventsource._compat import aiosqlite as shim
from eventsource.stores.sqlite import SQLiteEventStore

pytestmark = pytest.mark.skipif(not shim.FAST, reason="aiosqlite's private API is missing")


async def _scenario(
    path: Path, events: list[SqliteItemAdded], other: SqliteItemAdded, *, inline: bool
) -> tuple[type, list[object]]:
    cart = events[0].aggregate_id
    seen: list[object] = []
    async with SQLiteEventStore(str(path), inline=inline) as store:
        await store.initialize()
        link = store._connected()
        seen.append(await store.append_events(cart, "SqliteCart", events[:1], 0))
        seen.append(await store.append_events(cart, "SqliteCart", events[1:], 1))
        seen.append(await store.append_events(cart, "SqliteCart", events[:2], 3))  # stored ids
        seen.append(await store.append_events(other.aggregate_id, "SqliteCart", [other], 0))
        with pytest.raises(OptimisticLockError) as conflict:
            await store.append_events(cart, "SqliteCart", [item(cart, "late")], 1)
        seen.append(conflict.value.actual_version)
        stream = await store.get_events(cart, "SqliteCart", from_version=1)
        seen.append((stream.version, stream.events))
        seen.append([(s.event, s.stream_id, s.stream_position, s.global_position)
                     for s in (await store.read_all()).events])
        seen.append(await store.get_events_by_type("SqliteCart"))
        seen.append(await store.get_global_position())
        return type(link._worker), seen


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "hop"])
async def test_the_fallback_thread_stores_and_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    cart: UUID = uuid4()
    events = [item(cart, f"sku-{n}", quantity=n) for n in range(3)]
    other = item(uuid4(), "other")
    fast_worker, fast = await _scenario(tmp_path / "fast.db", events, other, inline=inline)
    monkeypatch.setattr(shim, "FAST", False)
    plain_worker, plain = await _scenario(tmp_path / "plain.db", events, other, inline=inline)
    assert (fast_worker, plain_worker) == (shim.AiosqliteWorker, shim.ThreadWorker)
    assert plain == fast
