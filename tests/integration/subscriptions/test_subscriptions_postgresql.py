"""Subscriptions over PostgreSQL: exactly once, in commit-safe order, under 8 writers."""

from __future__ import annotations

import pytest
from subs_integration_helpers import assert_exactly_once_under_writers

from eventsource.stores.postgresql import PostgreSQLEventStore


@pytest.mark.slow
@pytest.mark.postgresql
async def test_exactly_once_while_8_writers_append(pg_session_factory: object) -> None:
    store = PostgreSQLEventStore(pg_session_factory)  # type: ignore[arg-type]
    await store.initialize()
    try:
        await assert_exactly_once_under_writers(
            store, before=10_000, writers=8, batches=250, batch_size=20
        )
    finally:
        await store.close()
