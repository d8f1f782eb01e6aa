"""`SyncDCBStore`: DCB reads and conditional appends for synchronous code (see docs/sync.md).

`SyncDCBStore(lambda: SQLiteDCBStore(SQLiteEventStore(path)))`: the factory builds the DCB
store on the portal's event loop, where it stays; the facade opens it (the event store
connects) and closes it. Errors are the async API's, unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from eventsource.dcb.base import DCBReadResult, DCBStore
from eventsource.dcb.query import AppendCondition, Query, Tagged
from eventsource.events.base import DomainEvent
from eventsource.sync._bound import PortalBound

__all__ = ["SyncDCBStore"]


class SyncDCBStore(PortalBound[DCBStore]):
    """`DCBStore.read` and `DCBStore.append` as blocking calls, usable from any thread."""

    kind = DCBStore

    def read(self, query: Query) -> DCBReadResult:
        """The events matching `query` and the token of this read."""
        return self.run(lambda store: store.read(query))

    def append(
        self,
        events: Iterable[DomainEvent | Tagged],
        condition: AppendCondition | None = None,
    ) -> list[int]:
        """Append `events`, under `condition` if given (`DCBConflictError` when it fails)."""
        batch = list(events)  # taken in the caller's thread
        return self.run(lambda store: store.append(batch, condition))
