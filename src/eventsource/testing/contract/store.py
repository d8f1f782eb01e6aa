"""`EventStoreContract`: the behaviour every `EventStore` backend must show.

Subclass it in a test module (name the subclass `Test...`) and provide two fixtures:

* `store`: a fresh, empty, open store;
* `store_factory`: a callable `(event_registry) -> async context manager` opening another fresh,
  empty store that deserialises with `event_registry`.

Class attributes describe what a backend legitimately does differently; override them:
`gap_free_positions`, `rejects_unserialisable_payload`, `deserialises_events`,
`concurrent_writers`.
"""

from __future__ import annotations

from eventsource.testing.contract._store_reads import ReadContract
from eventsource.testing.contract._store_support import (
    ContractCartClosed,
    ContractItemAdded,
    StoreFactory,
)
from eventsource.testing.contract._store_writes import AppendContract

__all__ = ["ContractCartClosed", "ContractItemAdded", "EventStoreContract", "StoreFactory"]


class EventStoreContract(AppendContract, ReadContract):
    """Subclass and provide `store` and `store_factory` fixtures (see the module docstring)."""
