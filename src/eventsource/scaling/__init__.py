"""Scaling out the read side: partitioned subscriptions with fenced leases, leader leases,
and lag per partition. See docs/scaling.md."""

from eventsource.scaling.bluegreen import BlueGreenRebuild, RebuildProgress, active_version
from eventsource.scaling.exceptions import (
    LeaseLost,
    PartitionCountMismatchError,
    ScalingConfigurationError,
    ScalingError,
    SubscriptionNameCollisionError,
)
from eventsource.scaling.lag import PartitionLag, partition_lag
from eventsource.scaling.leader import LeaderLease
from eventsource.scaling.leases import repartition
from eventsource.scaling.partitions import partition_of
from eventsource.scaling.worker import PartitionedWorker, PlainHandler, TransactionalHandler

__all__ = [
    "BlueGreenRebuild",
    "LeaderLease",
    "LeaseLost",
    "PartitionCountMismatchError",
    "PartitionLag",
    "PartitionedWorker",
    "PlainHandler",
    "RebuildProgress",
    "ScalingConfigurationError",
    "ScalingError",
    "SubscriptionNameCollisionError",
    "TransactionalHandler",
    "active_version",
    "partition_lag",
    "partition_of",
    "repartition",
]
