"""`InMemoryDCBStore`: dynamic consistency boundaries over an `InMemoryEventStore`.

Every call reads or changes the state in one synchronous step (no `await` inside), so the
condition check and the write are atomic on the event loop. Positions are commit order, so a
token is the last position the read saw.
"""

from __future__ import annotations

from uuid import uuid4

from eventsource.dcb.base import AppendJob, DCBReadResult, DCBStore, SequencedEvent, streams_of
from eventsource.dcb.exceptions import DCBConflictError
from eventsource.dcb.query import Query
from eventsource.stores.in_memory import InMemoryEventStore
from eventsource.stores.records import ExpectedVersion

__all__ = ["InMemoryDCBStore"]

_NO_TAGS: frozenset[str] = frozenset()


class InMemoryDCBStore(DCBStore):
    """Tagged events in `store` (its events: every reader of the store sees them); tags are
    kept here, by position."""

    def __init__(self, store: InMemoryEventStore) -> None:
        self._store = store
        self.event_store = store
        self._tags: dict[int, frozenset[str]] = {}
        self.store_id = f"memory:{uuid4()}"

    def _matching(self, query: Query, after: int) -> list[SequencedEvent]:
        found = []
        tags = self._tags
        for stored in self._store._all[after:]:
            event_tags = tags.get(stored.global_position, _NO_TAGS)
            if query.matches(stored.event.event_type, event_tags):
                found.append(SequencedEvent(stored.global_position, stored.event, event_tags))
        return found

    async def _read(self, query: Query) -> DCBReadResult:
        seen = len(self._store._all)
        return DCBReadResult(self._matching(query, 0), self.token(str(seen)))

    async def _append(self, job: AppendJob) -> list[tuple[int, int]]:
        events, condition, mark, stream = job
        store = self._store
        if condition is not None:
            conflicts = self._matching(condition.query, int(mark or 0))
            if conflicts:
                raise DCBConflictError([found.position for found in conflicts])
        streams = streams_of(events)
        for (aggregate_id, aggregate_type), batch in streams.items():
            store._encode(aggregate_id, aggregate_type, batch)  # refusals before any write
        start = len(store._all)
        expected = ExpectedVersion.ANY if stream is None else stream.expected
        for (aggregate_id, aggregate_type), batch in streams.items():  # one, with `stream`
            store._write(aggregate_id, aggregate_type, batch, expected, None)
        written = []
        by_id = {event.event_id: tags for event, tags in events}
        for stored in store._all[start:]:
            self._tags[stored.global_position] = by_id[stored.event.event_id]
            written.append((stored.global_position, stored.stream_position))
        return written
