"""`StreamRetention`: set a stream's retention rule, soft-delete, tombstone, archive it.

Every change appends a `StreamMetadataChanged` system event (to the stream's
`"$retention:<type>"` stream, see `system_stream_type`), then writes the stream's
`stream_metadata` row; reads apply the row at once, the purge job deletes what it hides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsource._sql.retention import METADATA, TOMBSTONE_GUARD, UPSERT
from eventsource.exceptions import AggregateNotFoundError, StreamTombstonedError
from eventsource.retention._backend import backend_for
from eventsource.retention.events import StreamMetadataChanged, system_stream_type
from eventsource.retention.exceptions import RetentionRuleError, SnapshotRequiredError
from eventsource.retention.rules import RetentionRule, StreamMetadata, StreamState
from eventsource.stores.interface import EventStore
from eventsource.stores.records import ExpectedVersion

__all__ = ["StreamRetention"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StreamRetention:
    """The retention API of one SQLite or PostgreSQL event store (see docs/retention.md).

    `clock` stamps the metadata rows (the wall clock by default). Registers
    `StreamMetadataChanged` in the store's event registry, so the store can read it back.
    """

    def __init__(self, store: EventStore, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._store = store
        self._db = backend_for(store)
        self._clock = clock
        registry = getattr(store, "event_registry", None)
        if registry is not None:
            registry.register(StreamMetadataChanged)

    async def get(self, aggregate_id: UUID, aggregate_type: str) -> StreamMetadata:
        """The stream's metadata and head version; `AggregateNotFoundError` for a stream that
        was never appended to."""
        _check_stream(aggregate_id, aggregate_type)
        values = {"id": self._db.uuid(aggregate_id), "type": aggregate_type}
        head, state, max_age, max_count, truncate = (
            await self._db.fetch("stream metadata", METADATA, values)
        )[0]
        if not head and state is None:
            raise AggregateNotFoundError(aggregate_id, aggregate_type)
        rule = RetentionRule(
            None if max_age is None else timedelta(seconds=max_age), max_count, truncate or 0
        )
        return StreamMetadata(
            aggregate_id, aggregate_type, StreamState(state or "live"), rule, int(head)
        )

    async def set_rule(
        self, aggregate_id: UUID, aggregate_type: str, rule: RetentionRule
    ) -> StreamMetadata:
        """Apply `rule` to the stream (replacing its rule; its state is kept)."""
        if not isinstance(rule, RetentionRule):
            raise TypeError(f"rule must be a RetentionRule, got {rule!r}")
        current = await self._live_or_deleted(aggregate_id, aggregate_type)
        if rule.truncate_before > current.version + 1:
            raise RetentionRuleError(
                f"truncate_before={rule.truncate_before} is beyond the stream's next version "
                f"({current.version + 1}) of {aggregate_id}:{aggregate_type}"
            )
        return await self._change(current, "rule_set", current.state, rule)

    async def truncate_before(
        self,
        aggregate_id: UUID,
        aggregate_type: str,
        version: int,
        *,
        repository: Any = None,
        take_snapshot: bool = False,
    ) -> StreamMetadata:
        """Hide (and let the purge delete) the stream's versions below `version`.

        For an aggregate's stream pass its `repository`: the aggregate must still load the
        same, so its snapshot store must hold a snapshot at version `version - 1` or later;
        with `take_snapshot=True` one is taken first, else `SnapshotRequiredError`.
        """
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise RetentionRuleError(f"version must be an int >= 0, got {version!r}")
        current = await self._live_or_deleted(aggregate_id, aggregate_type)
        if version > current.version + 1:
            raise RetentionRuleError(
                f"cannot truncate {aggregate_id}:{aggregate_type} before version {version}: "
                f"its last version is {current.version}"
            )
        if repository is not None and version > 1:
            await _ensure_snapshot(repository, aggregate_id, version - 1, take_snapshot)
        rule = replace(current.rule, truncate_before=max(version, current.rule.truncate_before))
        return await self._change(current, "truncated", current.state, rule)

    async def soft_delete(self, aggregate_id: UUID, aggregate_type: str) -> StreamMetadata:
        """Reads of the stream find nothing from now on; the next append continues at the next
        version (and it, and what follows, is read as usual). The purge deletes the events,
        but the last (so the stream's version is never handed out again)."""
        current = await self._live_or_deleted(aggregate_id, aggregate_type)
        rule = replace(current.rule, truncate_before=current.version + 1)
        return await self._change(current, "soft_deleted", StreamState.SOFT_DELETED, rule)

    async def tombstone(self, aggregate_id: UUID, aggregate_type: str) -> StreamMetadata:
        """Hard-delete the stream, IRREVERSIBLY: every read and append of it raises
        `StreamTombstonedError` forever, and the purge deletes all its events and snapshots."""
        current = await self._live_or_deleted(aggregate_id, aggregate_type)
        return await self._change(current, "tombstoned", StreamState.TOMBSTONED, current.rule)

    async def archive(self, aggregate_id: UUID, aggregate_type: str) -> StreamMetadata:
        """Hide the stream from normal reads (shown inside `reading(include_archived=True)`);
        the purge keeps it whole."""
        current = await self._live_or_deleted(aggregate_id, aggregate_type)
        return await self._change(current, "archived", StreamState.ARCHIVED, current.rule)

    async def unarchive(self, aggregate_id: UUID, aggregate_type: str) -> StreamMetadata:
        """Bring an archived stream back to live."""
        current = await self.get(aggregate_id, aggregate_type)
        if current.state is not StreamState.ARCHIVED:
            raise RetentionRuleError(
                f"{aggregate_id}:{aggregate_type} is {current.state.value}, not archived"
            )
        return await self._change(current, "unarchived", StreamState.LIVE, current.rule)

    async def _live_or_deleted(self, aggregate_id: UUID, aggregate_type: str) -> StreamMetadata:
        current = await self.get(aggregate_id, aggregate_type)
        if current.state is StreamState.TOMBSTONED:
            raise StreamTombstonedError(aggregate_id, aggregate_type)
        return current

    async def _change(
        self, current: StreamMetadata, change: str, state: StreamState, rule: RetentionRule
    ) -> StreamMetadata:
        """Append the system event, then write the metadata row (a retry of a call whose row
        write failed writes it)."""
        aggregate_id, aggregate_type = current.aggregate_id, current.aggregate_type
        event = StreamMetadataChanged(
            aggregate_id=aggregate_id,
            aggregate_type=system_stream_type(aggregate_type),
            stream_type=aggregate_type,
            change=change,
            state=state.value,
            max_age_seconds=rule.max_age_seconds,
            max_count=rule.max_count,
            truncate_before=rule.truncate_before,
        )
        await self._store.append_events(
            aggregate_id, event.aggregate_type, [event], ExpectedVersion.ANY
        )
        if state is StreamState.TOMBSTONED:
            await self._db.execute("tombstone check", TOMBSTONE_GUARD[self._db.dialect], {})
        await self._db.execute("retention change", UPSERT, {
            "id": self._db.uuid(aggregate_id), "type": aggregate_type, "state": state.value,
            "max_age": rule.max_age_seconds, "max_count": rule.max_count,
            "truncate_before": rule.truncate_before, "now": self._db.time(self._clock()),
        })
        return StreamMetadata(aggregate_id, aggregate_type, state, rule, current.version)


def _check_stream(aggregate_id: object, aggregate_type: object) -> None:
    if not isinstance(aggregate_id, UUID):
        raise TypeError(f"aggregate_id must be a UUID, got {aggregate_id!r}")
    if not isinstance(aggregate_type, str) or not aggregate_type:
        raise TypeError(f"aggregate_type must be a non-empty str, got {aggregate_type!r}")


async def _ensure_snapshot(
    repository: Any, aggregate_id: UUID, needed: int, take_snapshot: bool
) -> None:
    """A snapshot of the aggregate at version `needed` or later, taken when asked."""
    snapshots = repository.snapshot_store
    if snapshots is None:
        raise SnapshotRequiredError(
            f"the repository of {repository.aggregate_type!r} has no snapshot store: a stream "
            "cut needs a snapshot at or after the cut"
        )
    found = await snapshots.get_snapshot(aggregate_id, repository.aggregate_type)
    if found is not None and found.version >= needed:
        return
    if not take_snapshot:
        have = "none" if found is None else f"version {found.version}"
        raise SnapshotRequiredError(
            f"{aggregate_id}:{repository.aggregate_type} needs a snapshot at version {needed} "
            f"or later before the cut (it has {have}); pass take_snapshot=True to take one"
        )
    taken = await repository.create_snapshot(await repository.load(aggregate_id))
    if taken.version < needed:  # pragma: no cover - the aggregate is at the stream's head
        raise SnapshotRequiredError(
            f"the snapshot taken of {aggregate_id} is at version {taken.version} < {needed}"
        )
