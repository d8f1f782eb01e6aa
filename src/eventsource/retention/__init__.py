"""Retention: per-stream rules (max age, max count, truncate-before), soft delete, tombstones,
archiving, and the guarded purge job that physically deletes what they hide.

Stream reads (`get_events`, `read_stream` of a typed stream) apply a stream's metadata in their
own query. The global log (`read_all`, `read_committed`, subscriptions) is not filtered: it
stays a stable, commit-ordered log until `PurgeJob` has deleted the rows. See
docs/retention.md.
"""

from __future__ import annotations

from eventsource._retention_view import reading
from eventsource.exceptions import StreamTombstonedError
from eventsource.retention.events import (
    RETENTION_STREAM_PREFIX,
    StreamMetadataChanged,
    system_stream_type,
)
from eventsource.retention.exceptions import (
    PurgeAlreadyRunningError,
    RetentionRuleError,
    SnapshotRequiredError,
)
from eventsource.retention.manager import StreamRetention
from eventsource.retention.purge import PurgeJob, PurgeReport
from eventsource.retention.rules import RetentionRule, StreamMetadata, StreamState

__all__ = [
    "RETENTION_STREAM_PREFIX",
    "PurgeAlreadyRunningError",
    "PurgeJob",
    "PurgeReport",
    "RetentionRule",
    "RetentionRuleError",
    "SnapshotRequiredError",
    "StreamMetadata",
    "StreamMetadataChanged",
    "StreamRetention",
    "StreamState",
    "StreamTombstonedError",
    "reading",
    "system_stream_type",
]
