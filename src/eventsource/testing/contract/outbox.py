"""Contract every outbox repository satisfies, and what `OutboxRelay` needs of
the bundled ones (`RelayOutboxContract`). Subclass and provide an `outbox_repo` fixture."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

from eventsource.events.base import DomainEvent
from eventsource.repositories.outbox import OutboxRepository, RelayLock, RelayOutbox


class ContractParcelShipped(DomainEvent):
    event_type: str = "ContractParcelShipped"
    aggregate_type: str = "ContractParcel"
    weight: Decimal = Decimal("1.50")


class OutboxRepositoryContract:
    """Backend-agnostic outbox behaviour."""

    async def test_added_event_is_pending_with_its_envelope(
        self, outbox_repo: OutboxRepository
    ) -> None:
        event = ContractParcelShipped(aggregate_id=uuid4())
        outbox_id = await outbox_repo.add_event(event)
        [entry] = await outbox_repo.get_pending_events()
        assert entry.id == outbox_id
        assert (entry.event_id, entry.aggregate_id) == (event.event_id, event.aggregate_id)
        assert (entry.event_type, entry.aggregate_type) == (
            "ContractParcelShipped",
            "ContractParcel",
        )
        assert (entry.status, entry.retry_count, entry.published_at) == ("pending", 0, None)
        assert entry.created_at.tzinfo is not None
        data = entry.event_data
        assert data["event_id"] == str(event.event_id)
        assert data["aggregate_id"] == str(event.aggregate_id)
        assert data["aggregate_type"] == "ContractParcel"
        assert data["occurred_at"] == event.occurred_at.isoformat()
        assert data["payload"]["weight"] == "1.50"

    async def test_tenant_id_round_trips(self, outbox_repo: OutboxRepository) -> None:
        tenant = uuid4()
        with_tenant = await outbox_repo.add_event(
            ContractParcelShipped(aggregate_id=uuid4(), tenant_id=tenant)
        )
        without = await outbox_repo.add_event(ContractParcelShipped(aggregate_id=uuid4()))
        entries = {entry.id: entry for entry in await outbox_repo.get_pending_events()}
        assert entries[with_tenant].tenant_id == tenant
        assert isinstance(entries[with_tenant].tenant_id, UUID)
        assert entries[with_tenant].event_data["tenant_id"] == str(tenant)
        assert entries[without].tenant_id is None
        assert entries[without].event_data["tenant_id"] is None

    async def test_pending_is_oldest_first_and_limited(self, outbox_repo: OutboxRepository) -> None:
        ids = [
            await outbox_repo.add_event(ContractParcelShipped(aggregate_id=uuid4()))
            for _ in range(5)
        ]
        assert [e.id for e in await outbox_repo.get_pending_events()] == ids
        assert [e.id for e in await outbox_repo.get_pending_events(limit=2)] == ids[:2]

    async def test_published_failed_and_retried_entries(
        self, outbox_repo: OutboxRepository
    ) -> None:
        published, failed, retried = [
            await outbox_repo.add_event(ContractParcelShipped(aggregate_id=uuid4()))
            for _ in range(3)
        ]
        await outbox_repo.mark_published(published)
        await outbox_repo.mark_failed(failed, "broker said no")
        await outbox_repo.increment_retry(retried, "timeout")
        await outbox_repo.increment_retry(retried, "timeout again")
        [pending] = await outbox_repo.get_pending_events()
        assert pending.id == retried
        assert (pending.retry_count, pending.last_error) == (2, "timeout again")
        await outbox_repo.increment_retry(retried)
        [pending] = await outbox_repo.get_pending_events()
        assert (pending.retry_count, pending.last_error) == (3, None)
        stats = await outbox_repo.get_stats()
        assert (stats.pending_count, stats.published_count, stats.failed_count) == (1, 1, 1)
        assert stats.avg_retries == 1.0
        assert stats.oldest_pending == pending.created_at

    async def test_cleanup_removes_old_published_entries_only(
        self, outbox_repo: OutboxRepository
    ) -> None:
        published = await outbox_repo.add_event(ContractParcelShipped(aggregate_id=uuid4()))
        await outbox_repo.add_event(ContractParcelShipped(aggregate_id=uuid4()))
        await outbox_repo.mark_published(published)
        assert await outbox_repo.cleanup_published(days=7) == 0
        assert await outbox_repo.cleanup_published(days=0) == 1
        stats = await outbox_repo.get_stats()
        assert (stats.pending_count, stats.published_count) == (1, 0)

    async def test_empty_outbox_stats(self, outbox_repo: OutboxRepository) -> None:
        stats = await outbox_repo.get_stats()
        assert (stats.pending_count, stats.published_count, stats.failed_count) == (0, 0, 0)
        assert (stats.oldest_pending, stats.avg_retries) == (None, 0.0)
        assert await outbox_repo.get_pending_events() == []


class RelayOutboxContract(OutboxRepositoryContract):
    """What `OutboxRelay` needs beyond `OutboxRepository` (`RelayOutbox`): insertion order, one
    statement per batch, failed rows holding back their aggregate, and the relay lock."""

    async def test_rows_come_out_in_insertion_order_even_at_one_instant(
        self, outbox_repo: RelayOutbox
    ) -> None:
        aggregate = uuid4()
        ids = [
            await outbox_repo.add_event(ContractParcelShipped(aggregate_id=aggregate))
            for _ in range(40)
        ]
        assert [e.id for e in await outbox_repo.get_pending_events(limit=100)] == ids
        assert [e.id for e in await outbox_repo.get_publishable_events(limit=100)] == ids

    async def test_mark_published_many_marks_exactly_those(
        self, outbox_repo: RelayOutbox
    ) -> None:
        ids = [
            await outbox_repo.add_event(ContractParcelShipped(aggregate_id=uuid4()))
            for _ in range(5)
        ]
        assert await outbox_repo.mark_published_many([ids[0], ids[2], ids[4]]) == 3
        assert await outbox_repo.mark_published_many([]) == 0
        assert [e.id for e in await outbox_repo.get_pending_events()] == [ids[1], ids[3]]
        stats = await outbox_repo.get_stats()
        assert (stats.pending_count, stats.published_count) == (2, 3)

    async def test_a_failed_row_holds_back_its_aggregate_until_requeued(
        self, outbox_repo: RelayOutbox
    ) -> None:
        stuck, free = uuid4(), uuid4()
        first = await outbox_repo.add_event(ContractParcelShipped(aggregate_id=stuck))
        other = await outbox_repo.add_event(ContractParcelShipped(aggregate_id=free))
        later = await outbox_repo.add_event(ContractParcelShipped(aggregate_id=stuck))
        await outbox_repo.increment_retry(first, "broker said no")
        await outbox_repo.mark_failed(first, "broker said no")
        assert [e.id for e in await outbox_repo.get_publishable_events()] == [other]
        assert [e.id for e in await outbox_repo.get_pending_events()] == [other, later]
        [failed] = await outbox_repo.get_failed_events()
        assert (failed.id, failed.status, failed.last_error) == (first, "failed", "broker said no")
        assert await outbox_repo.requeue_failed(uuid4()) == 0
        assert await outbox_repo.requeue_failed(first) == 1
        assert [e.id for e in await outbox_repo.get_publishable_events()] == [first, other, later]
        [requeued] = [e for e in await outbox_repo.get_pending_events() if e.id == first]
        assert requeued.retry_count == 0
        assert await outbox_repo.get_failed_events() == []

    async def test_requeue_all_failed_rows(self, outbox_repo: RelayOutbox) -> None:
        rows = [
            await outbox_repo.add_event(ContractParcelShipped(aggregate_id=uuid4()))
            for _ in range(3)
        ]
        for outbox_id in rows[:2]:
            await outbox_repo.mark_failed(outbox_id, "no")
        assert await outbox_repo.requeue_failed() == 2
        assert (await outbox_repo.get_stats()).pending_count == 3

    async def test_one_relay_lock_holder_at_a_time(self, outbox_repo: RelayOutbox) -> None:
        first, second = outbox_repo.relay_lock(), outbox_repo.relay_lock()
        assert isinstance(first, RelayLock)
        try:
            assert await first.acquire()
            assert await first.acquire(), "the holder keeps holding it"
            assert not await second.acquire()
            await first.release()
            await first.release()  # idempotent
            assert await second.acquire()
            assert not await first.acquire()
        finally:
            await first.release()
            await second.release()
