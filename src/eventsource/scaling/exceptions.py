"""The errors of partitioned subscriptions and leader leases."""

from __future__ import annotations

from eventsource.exceptions import EventSourceError

__all__ = [
    "LeaseLost",
    "PartitionCountMismatchError",
    "ScalingConfigurationError",
    "ScalingError",
    "SubscriptionNameCollisionError",
]


class ScalingError(EventSourceError):
    """Base of the errors of `eventsource.scaling`."""


class LeaseLost(ScalingError):  # noqa: N818 - the issue's name for it
    """This worker no longer holds a partition (or leadership) at the epoch it acted on.

    Raised inside the transaction that wrote the read model: the transaction rolls back, so
    nothing the stale worker did stays, and the worker stops handling the partition.
    """

    def __init__(self, subscription: str, partitions: list[int] | None = None) -> None:
        self.subscription = subscription
        self.partitions = partitions or []
        what = f"lease lost on partition(s) {partitions}" if partitions else "leadership lost"
        super().__init__(
            f"{subscription!r}: {what} (another worker took over at a newer epoch); "
            "the transaction was rolled back"
        )


class ScalingConfigurationError(ScalingError, ValueError):
    """A partitioned subscription or leader lease was configured inconsistently."""


class PartitionCountMismatchError(ScalingConfigurationError):
    """A worker declared a partition count other than the one the subscription was created
    with (repartitioning is an explicit operation: `repartition`)."""


class SubscriptionNameCollisionError(ScalingConfigurationError):
    """Two different handlers were started under one subscription name."""
