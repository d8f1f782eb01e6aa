"""`Endpoint`: what a transfer needs of a store beyond its public API, one adapter per backend
(`_sqlite`, `_postgresql`, `_memory`), chosen by `endpoint_for`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from eventsource.events.registry import EventRegistry
from eventsource.exceptions import TransferError
from eventsource.stores.interface import EventStore
from eventsource.transfer.rows import JobState, Outgoing, RawEvent

__all__ = ["Endpoint", "Mapping", "already_stored", "endpoint_for"]

# (source position, index in the batch of the first event written for it, or None: dropped)
Mapping = Sequence[tuple[int, int | None]]


class Endpoint(ABC):
    """A store as a transfer's source of raw rows or its target of batches with bookkeeping.

    Every `write_*` writes its batch, its position map and the job's progress in ONE
    transaction: after a kill, the recorded progress covers exactly what was written.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store

    @property
    def registry(self) -> EventRegistry | None:
        """The store's event registry (None: the default one)."""
        found = getattr(self.store, "_registry", None)
        return found if isinstance(found, EventRegistry) else None

    @abstractmethod
    async def prepare(self) -> None:
        """Connect, and create the event and bookkeeping tables if missing."""

    @abstractmethod
    async def job_state(self, job: str) -> JobState | None:
        """The job's recorded progress (None: never run here)."""

    @abstractmethod
    async def mapped_after(self, job: str, position: int) -> set[int]:
        """Source positions after `position` that the job already consumed."""

    @abstractmethod
    async def translate(self, job: str, position: int) -> int | None:
        """The least target position of an event copied from a source event after
        `position` (None: none)."""

    @abstractmethod
    async def read_raw(self, after: int, limit: int) -> list[RawEvent]:
        """Up to `limit` stored events after global position `after`, in position order."""

    @abstractmethod
    async def write_copy(
        self, job: str, batch: Sequence[Outgoing], mapping: Mapping, state: JobState
    ) -> None:
        """Append `batch` (each event after its stream's newest), map each source position to
        the target position of the event at its index, and record `state`: one transaction."""

    @abstractmethod
    async def write_import(self, job: str, rows: Sequence[RawEvent], state: JobState) -> None:
        """Store `rows` as they are (positions, versions, times, payload text) and record
        `state`: one transaction."""


def already_stored(detail: object) -> TransferError:
    """The error of a batch the target refused because it holds some of its events."""
    return TransferError(
        "the target already holds an event of this batch (the same event id, position or "
        f"stream version: {' '.join(str(detail).split())}); nothing of the batch was written. "
        "Import into a store without these positions; copy into one without these event ids"
    )


def endpoint_for(store: EventStore) -> Endpoint:
    """The adapter of a bundled store; `TransferError` for any other store."""
    from eventsource.stores.in_memory import InMemoryEventStore

    if isinstance(store, InMemoryEventStore):
        from eventsource.transfer._memory import MemoryEndpoint

        return MemoryEndpoint(store)
    kind = type(store).__name__
    if kind == "SQLiteEventStore":
        from eventsource.transfer._sqlite import SQLiteEndpoint

        return SQLiteEndpoint(store)
    if kind == "PostgreSQLEventStore":
        from eventsource.transfer._postgresql import PostgreSQLEndpoint

        return PostgreSQLEndpoint(store)
    raise TransferError(
        f"{kind} is not a bundled store: transfers need an InMemoryEventStore, "
        "SQLiteEventStore or PostgreSQLEventStore"
    )
