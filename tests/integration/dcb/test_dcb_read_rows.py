"""The PostgreSQL DCB read selects only the columns an event is decoded from: what it reads
back is what was appended, a read matching nothing decodes nothing, and a row that cannot be
decoded is still located (its position and event id)."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from _dcb_support import Enrolled, open_backend, pg_url

from eventsource.dcb import AppendCondition, Query, QueryItem
from eventsource.exceptions import CorruptEventError


async def test_a_read_returns_the_appended_events_and_locates_a_corrupt_row(
    tmp_path: Path,
) -> None:
    backend = await open_backend("postgresql", tmp_path)
    try:
        store = await backend.open()
        query = Query(QueryItem(tags=["course:c1"]))
        empty = await store.read(query)
        assert empty.events == []
        stream = uuid.uuid4()
        first = Enrolled(aggregate_id=stream, course_id="c1", student_id="s1")
        second = Enrolled(aggregate_id=stream, course_id="c1", student_id="s2")
        positions = await store.append([first, second], AppendCondition(query, empty.token))
        seen = await store.read(query)
        assert [found.event for found in seen.events] == [first, second]
        assert [found.position for found in seen.events] == positions
        assert [found.tags for found in seen.events] == [
            frozenset({"course:c1", "student:s1"}), frozenset({"course:c1", "student:s2"})
        ]
        conn = await asyncpg.connect(pg_url(), server_settings={"search_path": backend.schema})
        try:
            await conn.execute(
                """UPDATE events SET payload = '{"course_id": 5}'::jsonb WHERE id = $1""",
                positions[1],
            )
        finally:
            await conn.close()
        with pytest.raises(CorruptEventError) as raised:
            await store.read(query)
        assert raised.value.position == positions[1]
        assert raised.value.event_id == second.event_id
        assert raised.value.event_type == "DcbEnrolled"
    finally:
        await backend.close()
