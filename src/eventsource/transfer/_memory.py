"""The in-memory adapter of a transfer: batches go through `append_events` (no round trips
to save), and the job's bookkeeping lives beside the events, in the store object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from uuid import UUID

from eventsource.events.base import DomainEvent
from eventsource.stores.codec import decode_event, encode_payload
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.records import ExpectedVersion, ReadOptions
from eventsource.transfer._endpoint import Endpoint, Mapping
from eventsource.transfer.rows import JobState, Outgoing, RawEvent

__all__ = ["MemoryEndpoint"]


@dataclass
class _Books:
    progress: dict[str, JobState] = field(default_factory=dict)
    positions: dict[str, dict[int, int | None]] = field(default_factory=dict)


class MemoryEndpoint(Endpoint):
    """An `InMemoryEventStore` as a transfer's source or target. Imported events get the
    store's own gap-free positions (it has no other kind); their payloads are decoded.

    A batch is one `append_events` per run of a stream's events, each atomic; a batch that
    fails part-way keeps its earlier runs (nothing survives a crash here anyway, so there is
    no resuming to protect)."""

    store: InMemoryEventStore

    @property
    def _books(self) -> _Books:
        books = self.store.__dict__.get("_transfer_books")
        if books is None:
            books = self.store.__dict__["_transfer_books"] = _Books()
        assert isinstance(books, _Books)
        return books

    async def prepare(self) -> None:
        return None

    async def job_state(self, job: str) -> JobState | None:
        return self._books.progress.get(job)

    async def mapped_after(self, job: str, position: int) -> set[int]:
        return {key for key in self._books.positions.get(job, {}) if key > position}

    async def translate(self, job: str, position: int) -> int | None:
        later = [
            target for source, target in self._books.positions.get(job, {}).items()
            if source > position and target is not None
        ]
        return min(later, default=None)

    async def read_raw(self, after: int, limit: int) -> list[RawEvent]:
        from eventsource._sql.sqlite import utc_iso

        page = await self.store.read_all(ReadOptions(from_position=after, limit=limit))
        return [
            RawEvent(
                stored.global_position, str(stored.event_id), stored.event_type,
                str(stored.aggregate_id), stored.stream_id.partition(":")[2],
                None if stored.event.tenant_id is None else str(stored.event.tenant_id),
                stored.event.actor_id, stored.stream_position, utc_iso(stored.event.occurred_at),
                encode_payload(stored.event), utc_iso(stored.stored_at),
            )
            for stored in page.events
        ]

    async def write_copy(
        self, job: str, batch: Sequence[Outgoing], mapping: Mapping, state: JobState
    ) -> None:
        positions: list[int] = []
        for (aggregate_id, aggregate_type), run in groupby(
            batch, key=lambda item: (item.event.aggregate_id, item.aggregate_type)
        ):
            events = [item.event for item in run]
            done = await self.store.append_events(
                aggregate_id, aggregate_type, events, ExpectedVersion.ANY
            )
            last = done.global_position
            positions.extend(range(last - len(events) + 1, last + 1))
        books = self._books
        mapped = books.positions.setdefault(job, {})
        for source, index in mapping:
            mapped[source] = None if index is None else positions[index]
        books.progress[job] = state

    async def write_import(self, job: str, rows: Sequence[RawEvent], state: JobState) -> None:
        registry = self.registry
        for (aggregate_id, aggregate_type), run in groupby(
            rows, key=lambda row: (row.aggregate_id, row.aggregate_type)
        ):
            events: list[DomainEvent] = [
                decode_event(row.event_type, row.payload, registry, row.event_id) for row in run
            ]
            await self.store.append_events(
                UUID(aggregate_id), aggregate_type, events, ExpectedVersion.ANY
            )
        self._books.progress[job] = state
