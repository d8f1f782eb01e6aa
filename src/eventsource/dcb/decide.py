"""The decide → append loop: project the state a decision needs from the events of a query,
decide, append under the condition that none of those events changed meanwhile, and on a
conflict read and decide again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from eventsource.dcb.base import DCBStore, SequencedEvent
from eventsource.dcb.exceptions import DCBConflictError
from eventsource.dcb.query import AppendCondition, Query, Tagged
from eventsource.events.base import DomainEvent

__all__ = ["Projection", "append_with_retry", "decide"]

S = TypeVar("S")
Decision = Iterable[DomainEvent | Tagged]


async def append_with_retry(
    store: DCBStore,
    query: Query,
    decide: Callable[[list[SequencedEvent]], Decision | Awaitable[Decision]],
    *,
    attempts: int = 10,
) -> list[int]:
    """Read `query`, let `decide` turn the events into new ones (none: nothing to append),
    append them on condition that no event matching `query` was stored since the read; on
    `DCBConflictError` do it all again, up to `attempts` times (then the last one is raised).
    Returns the new positions."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    for attempt in range(attempts):
        seen = await store.read(query)
        decided = decide(seen.events)
        if isinstance(decided, Awaitable):
            decided = await decided
        events = list(decided)
        if not events:
            return []
        try:
            return await store.append(events, AppendCondition(query, seen.token))
        except DCBConflictError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


@dataclass(frozen=True)
class Projection(Generic[S]):
    """A piece of decision state: `initial`, folded with `evolve` over the events matching
    `query`, oldest first."""

    query: Query
    initial: S
    evolve: Callable[[S, DomainEvent], S]

    def fold(self, events: Iterable[SequencedEvent]) -> S:
        """The state after the events (of a wider read) that match this projection's query."""
        state = self.initial
        for found in events:
            if self.query.matches(found.event.event_type, found.tags):
                state = self.evolve(state, found.event)
        return state


async def decide(
    store: DCBStore,
    projections: Mapping[str, Projection[Any]],
    command: Callable[[dict[str, Any]], Decision],
    *,
    attempts: int = 10,
) -> list[int]:
    """Project every named state from one read (the OR of their queries), run `command` on
    them, and append what it returns under that read's condition, retrying on conflicts
    (`append_with_retry`). `command` raises to refuse."""
    if not projections:
        raise ValueError("decide needs at least one projection")
    query = Query(*(item for p in projections.values() for item in p.query.items))

    def run(events: list[SequencedEvent]) -> Decision:
        return command({name: p.fold(events) for name, p in projections.items()})

    return await append_with_retry(store, query, run, attempts=attempts)
