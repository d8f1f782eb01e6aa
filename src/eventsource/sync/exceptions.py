"""Errors of the synchronous API: each says what was misused and what to do instead."""

from __future__ import annotations

from eventsource.exceptions import EventSourceError

__all__ = ["PortalThreadError", "SyncAPIError", "SyncClosedError", "SyncConfigurationError"]


class SyncAPIError(EventSourceError):
    """Base of the errors the synchronous API raises about its own use (errors of the store,
    repository, ... underneath reach the caller unchanged)."""


class PortalThreadError(SyncAPIError, RuntimeError):
    """A synchronous call was made from the portal's own event-loop thread (an async handler,
    a callback or a factory running there): it would wait for that thread, which is waiting
    for it, forever."""

    def __init__(self, portal_name: str) -> None:
        self.portal_name = portal_name
        super().__init__(
            f"A synchronous eventsource call was made on the event loop of portal "
            f"{portal_name!r}, which runs it: it would wait for itself forever. In code running "
            "on that loop (async handlers and projections, factories) await the async API"
        )


class SyncClosedError(SyncAPIError, RuntimeError):
    """The facade, or the portal under it, was closed (explicitly or at interpreter exit)."""


class SyncConfigurationError(SyncAPIError, TypeError):
    """A facade was given something it cannot use safely: an async object where a factory
    must build it on the portal's loop, or facades of different portals."""
