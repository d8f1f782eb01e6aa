"""The handler and subscriber protocols under their eventsource-py 0.2.0 module path.

The same objects as `eventsource.protocols` (identity and `isinstance` checks agree whichever
path they are imported from).
"""

from eventsource.protocols import AsyncEventHandler, EventHandler, EventSubscriber, SyncEventHandler

__all__ = ["AsyncEventHandler", "EventHandler", "EventSubscriber", "SyncEventHandler"]
