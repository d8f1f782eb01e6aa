"""Issue 15, acceptance 2: a subscription and a projection filtered on the renamed class
`CustomerSignedUp` receive all 1,000 events stored under the old name `CustomerRegistered`
(v1, raw SQL), in commit-safe order, exactly once, and none of the other events between them;
on a SQLite file, on PostgreSQL and in memory (release 1's objects appended)."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from evo_support import (
    CUSTOMER,
    Backend,
    CustomerMoved,
    CustomerSignedUp,
    any_backend,
    committed_events,
    evolved,
    memory_backend_,
    old_rows,
    postgresql_backend,
    sqlite_backend_,
)

from eventsource import DomainEvent, InMemoryCheckpointRepository, handles
from eventsource.projections.base import DeclarativeProjection
from eventsource.subscriptions import SubscriptionConfig, SubscriptionManager, SubscriptionState

__all__ = [
    "any_backend", "evolved", "memory_backend_", "postgresql_backend", "sqlite_backend_",
]  # fixtures


class SignUps:
    def __init__(self) -> None:
        self.seen: list[UUID] = []

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [CustomerSignedUp]

    async def handle(self, event: DomainEvent) -> None:
        assert isinstance(event, CustomerSignedUp)
        assert event.tier == "basic"
        self.seen.append(event.event_id)


class SignUpNames(DeclarativeProjection):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.seen: list[UUID] = []

    @handles(CustomerSignedUp)
    async def _signed_up(self, event: CustomerSignedUp) -> None:
        self.names.append(event.full_name)
        self.seen.append(event.event_id)


async def test_filters_on_the_renamed_class_get_every_old_row_once(any_backend: Backend) -> None:
    rows = old_rows(1000, per_stream=10)
    for start in range(0, 1000, 250):  # other events between the old rows
        await any_backend.insert(rows[start:start + 250])
        mover = uuid4()
        await any_backend.store.append_events(
            mover, CUSTOMER, [CustomerMoved(aggregate_id=mover, city="Lyon")], 0
        )
    before = await any_backend.digest()
    manager = SubscriptionManager(
        any_backend.store, None, InMemoryCheckpointRepository(enable_tracing=False),
        enable_tracing=False,
    )
    manager.poll_interval = 0.05
    subscriber, projection = SignUps(), SignUpNames()
    config = SubscriptionConfig(start_from="beginning", batch_size=128)
    subscriptions = [
        await manager.subscribe(subscriber, config, name="signups"),
        await manager.subscribe(projection, config, name="names"),
    ]
    async with manager:
        async with asyncio.timeout(60):
            while len(subscriber.seen) < 1000 or len(projection.seen) < 1000 or any(  # noqa: ASYNC110 - polls plain state
                s.state is not SubscriptionState.LIVE for s in subscriptions
            ):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # anything more would arrive now
    expected = [e.event_id for e in await committed_events(any_backend.store, 1004)
                if isinstance(e, CustomerSignedUp)]
    assert [str(i) for i in expected] == [r.event_id for r in rows]
    assert subscriber.seen == expected
    assert projection.seen == expected
    assert projection.names[:2] == ["customer 0", "customer 1"]
    assert await any_backend.digest() == before  # reading changed no stored byte
