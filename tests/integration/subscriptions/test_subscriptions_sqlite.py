"""Subscriptions over a SQLite file: exactly once, in order, under concurrent writers."""

from __future__ import annotations

from pathlib import Path

import pytest
from subs_integration_helpers import assert_exactly_once_under_writers

from eventsource.stores.sqlite import SQLiteEventStore


@pytest.mark.slow
async def test_exactly_once_while_8_writers_append(tmp_path: Path) -> None:
    store = SQLiteEventStore(str(tmp_path / "events.db"))
    await store.initialize()
    try:
        await assert_exactly_once_under_writers(
            store, before=10_000, writers=8, batches=250, batch_size=20
        )
    finally:
        await store.close()
