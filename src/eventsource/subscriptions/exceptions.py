"""Errors raised by subscriptions and their manager."""

from __future__ import annotations

from enum import Enum

from eventsource.exceptions import EventSourceError

__all__ = [
    "CheckpointNotFoundError",
    "EventBusConnectionError",
    "EventStoreConnectionError",
    "SubscriptionAlreadyExistsError",
    "SubscriptionConfigError",
    "SubscriptionError",
    "SubscriptionStateError",
    "TransitionError",
]


class SubscriptionError(EventSourceError):
    """Base of every subscription error; an `EventSourceError`, so `except EventSourceError`
    catches it."""


class SubscriptionConfigError(SubscriptionError):
    """A subscription is configured in a way that cannot work."""


class SubscriptionStateError(SubscriptionError):
    """An operation does not fit the subscription's current state."""


class EventStoreConnectionError(SubscriptionError):
    """The event store could not be reached."""


class EventBusConnectionError(SubscriptionError):
    """The event bus could not be reached."""


class TransitionError(SubscriptionStateError):
    """A state change the subscription lifecycle does not allow (`Subscription.transition_to`).

    A `SubscriptionStateError`, so code written for 0.2.0 (which raised that) still catches it.
    `subscription_name`, `from_state` and `to_state` say which move was refused (None when the
    error was raised with a message only).
    """

    def __init__(
        self,
        message: str = "",
        *,
        subscription_name: str | None = None,
        from_state: Enum | None = None,
        to_state: Enum | None = None,
    ) -> None:
        self.subscription_name = subscription_name
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(message)


class SubscriptionAlreadyExistsError(SubscriptionError):
    """A subscription with this name is already registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Subscription {name!r} already exists")


class CheckpointNotFoundError(SubscriptionError):
    """No checkpoint is stored for this projection."""

    def __init__(self, projection_name: str) -> None:
        self.projection_name = projection_name
        super().__init__(f"No checkpoint found for {projection_name!r}")
