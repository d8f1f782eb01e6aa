"""Backend contract suites: subclass one and provide its fixtures to check a backend.

Importing this package needs pytest; the rest of `eventsource` never imports it.
"""

from eventsource.testing.contract.store import (
    ContractCartClosed,
    ContractItemAdded,
    EventStoreContract,
    StoreFactory,
)

__all__ = ["ContractCartClosed", "ContractItemAdded", "EventStoreContract", "StoreFactory"]
