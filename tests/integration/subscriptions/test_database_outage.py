"""Issue 4, acceptance 3: a PostgreSQL outage during catch-up is survived. The subscription's
store reaches the server through a loopback TCP proxy; while it catches up over 20,000 events the
proxy drops every connection and refuses new ones for a couple of seconds (the server itself keeps
running, and other clients keep appending). The subscription reports unhealthy meanwhile,
recovers to healthy, and delivers exactly the commit-safe order: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import pytest
from subs_integration_helpers import ItemAdded, committed_order, wait_until
from tcp_proxy import TcpProxy

from eventsource.events.base import DomainEvent
from eventsource.repositories.postgresql import PostgreSQLCheckpointRepository
from eventsource.stores.postgresql import PostgreSQLEventStore
from eventsource.subscriptions import (
    SubscriptionConfig,
    SubscriptionManager,
    SubscriptionState,
)

TOTAL = 20_000
CUT_AT = 5_000
DURING_OUTAGE = 1_000
OUTAGE_SECONDS = 2.0

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]


async def _append(store: PostgreSQLEventStore, total: int, per_stream: int = 500) -> None:
    for _ in range(total // per_stream):
        cart = uuid4()
        events = [ItemAdded(aggregate_id=cart, sku=f"s{n}") for n in range(per_stream)]
        await store.append_events(cart, "Cart", events, 0)


@pytest.fixture
async def proxied_sessions(pg_url: str, pg_schema: str) -> AsyncIterator[tuple[TcpProxy, Any]]:
    """A session factory whose connections go through a proxy to the test server."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    proxied = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))
    engine = create_async_engine(
        proxied.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": pg_schema}, "timeout": 2},
    )
    try:
        yield proxy, async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await proxy.close()
        await engine.dispose()


class CuttingCollector:
    """Records deliveries; cuts the proxy when the `CUT_AT`-th event arrives (mid catch-up)."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.seen: list[UUID] = []
        self.cut = asyncio.Event()

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [ItemAdded]

    async def handle(self, event: DomainEvent) -> None:
        self.seen.append(event.event_id)
        if len(self.seen) == CUT_AT:
            self.proxy.cut()
            self.cut.set()


async def test_catch_up_survives_a_database_outage(
    pg_session_factory: Any, proxied_sessions: tuple[TcpProxy, Any]
) -> None:
    proxy, sessions = proxied_sessions
    direct = PostgreSQLEventStore(pg_session_factory)
    await _append(direct, TOTAL)
    store = PostgreSQLEventStore(sessions)
    # Idle pooled connections at the cut: the store must discard them, not keep failing.
    await asyncio.gather(*(store.committed_lag(None) for _ in range(5)))
    assert sessions.kw["bind"].pool.checkedin() >= 2
    manager = SubscriptionManager(
        store, None, PostgreSQLCheckpointRepository(sessions), enable_tracing=False
    )
    manager.poll_interval = 0.1
    collector = CuttingCollector(proxy)
    config = SubscriptionConfig(start_from="beginning", batch_size=200)
    subscription = await manager.subscribe(collector, config, name="outage")
    async with manager:
        await asyncio.wait_for(collector.cut.wait(), 60)
        assert subscription.state is SubscriptionState.CATCHING_UP
        await _append(direct, DURING_OUTAGE)  # the server is up; only our road to it is cut

        def store_indicator() -> str | None:
            result = manager.check_health("outage")
            assert result is not None
            found = [i.status for i in result.indicators if i.name == "event_store"]
            return found[0] if found else None

        await wait_until(lambda: store_indicator() == "unhealthy", OUTAGE_SECONDS)
        during = await manager.health_check()
        assert during.status == "unhealthy"
        [sub_health] = during.subscriptions
        # Unhealthy, or worse: the lag of a catch-up this size is "critical" by default.
        assert sub_health.status in ("unhealthy", "critical")
        assert sub_health.last_error
        assert not subscription.store_reachable
        await asyncio.sleep(OUTAGE_SECONDS)
        assert not subscription.store_reachable
        await proxy.restore()

        expected = TOTAL + DURING_OUTAGE
        await wait_until(
            lambda: len(collector.seen) >= expected
            # the state changes while waiting; mypy keeps the type narrowed by the assert above
            and subscription.state is SubscriptionState.LIVE,  # type: ignore[comparison-overlap]
            60,
        )
        await wait_until(lambda: manager.get_health().status == "healthy", 10)
        assert subscription.store_reachable
        assert store_indicator() is None
    assert collector.seen == await committed_order(direct)
    assert len(collector.seen) == len(set(collector.seen)) == expected
