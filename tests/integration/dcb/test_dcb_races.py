"""DCB conditional appends under real concurrency: racers on a shared tag (PostgreSQL with a
connection each, SQLite with a store, hence a connection and a thread, each), and the
out-of-order commit a max-position token would miss (PostgreSQL, three connections)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from _dcb_support import noted, open_backend, pg_url

from eventsource.dcb import AppendCondition, DCBConflictError, DCBStore, Query, QueryItem
from eventsource.dcb._keys import lock_keys
from eventsource.dcb.postgresql import PostgreSQLDCBStore, append_args
from eventsource.dcb.query import split

# CI runs 100 rounds; the 1,000: DCB_RACE_ROUNDS=1000 pytest tests/integration/dcb
ROUNDS = int(os.environ.get("DCB_RACE_ROUNDS", "100"))
RACERS = 8


@pytest.mark.parametrize("name", ["sqlite", "postgresql"])
async def test_racers_on_a_shared_tag_one_commits(name: str, tmp_path: Path) -> None:
    """Each round: 8 racers read the round's tag (empty), then all append, each to a stream of
    its own, on condition that nothing with that tag appeared: exactly 1 commit, 7 conflicts."""
    backend = await open_backend(name, tmp_path)
    try:
        racers = [await backend.open(pool_size=2) for _ in range(RACERS)]
        for number in range(ROUNDS):
            tag = f"round:{number}"
            query = Query(QueryItem(tags=[tag]))
            tokens = await asyncio.gather(*(racer.read(query) for racer in racers))
            pairs = zip(racers, tokens, strict=True)
            outcomes = await asyncio.gather(*(
                _append(racer, query, tag, seen.token) for racer, seen in pairs
            ))
            assert sorted(outcomes) == ["commit"] + ["conflict"] * 7, number
            assert len((await racers[0].read(query)).events) == 1
    finally:
        await backend.close()


async def _append(store: DCBStore, query: Query, tag: str, token: object) -> str:
    try:
        await store.append([noted(tag)], AppendCondition(query, token))  # type: ignore[arg-type]
    except DCBConflictError:
        return "conflict"
    return "commit"


async def _append_x(conn: Any) -> int:
    """An unconditional DCB append of one event tagged x, on a raw asyncpg connection (in
    whatever transaction it has open): its position."""
    from eventsource._sql.dcb_postgresql import CALL

    [(_, position, _)] = await conn.fetch(CALL, *append_args(split([noted("x")]), None, None, None))
    return int(position)


@pytest.mark.postgresql
async def test_a_lower_position_committed_after_the_read_conflicts(tmp_path: Path) -> None:
    """A takes a lower position and stays open; B takes a higher one and commits; the reader
    reads (sees B); A commits: the reader's conditional append fails, naming A's event."""
    import asyncpg

    backend = await open_backend("postgresql", tmp_path)
    reader = await backend.open()
    await reader.read(Query(QueryItem(tags=["x"])))  # creates the tables
    assert isinstance(reader, PostgreSQLDCBStore)
    settings = {"search_path": backend.schema}
    a = await asyncpg.connect(pg_url(), server_settings=settings)
    b = await asyncpg.connect(pg_url(), server_settings=settings)
    try:
        transaction = a.transaction()
        await transaction.start()
        position_a = await _append_x(a)
        position_b = await _append_x(b)
        assert position_a < position_b
        query = Query(QueryItem(tags=["x"]))
        seen = await reader.read(query)
        assert [e.position for e in seen.events] == [position_b]
        await transaction.commit()
        with pytest.raises(DCBConflictError) as caught:
            await reader.append([noted("x")], AppendCondition(query, seen.token))
        assert caught.value.positions == (position_a,)
        # Read again: both are seen, and the append goes through.
        again = await reader.read(query)
        assert sorted(e.position for e in again.events) == [position_a, position_b]
        await reader.append([noted("x")], AppendCondition(query, again.token))
    finally:
        await a.close()
        await b.close()
        await backend.close()


@pytest.mark.postgresql
async def test_a_conditional_append_waits_for_a_writer_holding_its_tag(tmp_path: Path) -> None:
    """While an append tagged x is open, a conditional append on x waits for it (the lock),
    then sees it and refuses: it cannot pass the check before the writer commits."""
    import asyncpg

    backend = await open_backend("postgresql", tmp_path)
    reader = await backend.open()
    query = Query(QueryItem(tags=["x"]))
    seen = await reader.read(query)
    a = await asyncpg.connect(pg_url(), server_settings={"search_path": backend.schema})
    try:
        transaction = a.transaction()
        await transaction.start()
        position_a = await _append_x(a)
        waiting = asyncio.ensure_future(
            reader.append([noted("x")], AppendCondition(query, seen.token))
        )
        keys, exclusive = lock_keys(split([noted()]), AppendCondition(query, None))
        key = keys[exclusive.index(True)] % 2**64  # the condition's: tag x's
        while not await a.fetchval(  # until the append waits for A's lock on tag x
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
            key >> 32, key & 0xFFFFFFFF,
        ):
            assert not waiting.done(), "the conditional append did not wait for the lock"
            await asyncio.sleep(0.01)
        await transaction.commit()
        with pytest.raises(DCBConflictError) as caught:
            await waiting
        assert caught.value.positions == (position_a,)
    finally:
        await a.close()
        await backend.close()
