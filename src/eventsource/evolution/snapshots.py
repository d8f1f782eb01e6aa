"""Snapshot upcasters on load: a snapshot of an older `schema_version` is brought to the
aggregate's by the registered steps (`Upcasters.register_snapshot`) when they cover every
version in between; else the repository discards it and replays, counting the discard."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from eventsource.evolution.upcasting import Upcasters
from eventsource.observability.metrics import get_meter, metrics_live
from eventsource.snapshots.interface import Snapshot

__all__ = ["SNAPSHOTS_DISCARDED", "discarded_snapshots", "record_discarded", "upgrade_snapshot"]

logger = logging.getLogger(__name__)

SNAPSHOTS_DISCARDED = "eventsource.snapshots.discarded"
"""The OpenTelemetry counter of snapshots a load could not use (attribute `aggregate.type`)."""

_DISCARDED: Counter[str] = Counter()
_counter: list[object] = []


def upgrade_snapshot(snapshot: Snapshot, expected: int, upcasters: Upcasters) -> Snapshot | None:
    """`snapshot` with its state brought to schema version `expected`, or None when no chain
    of snapshot steps covers every version in between or a step fails (logged)."""
    state, version = dict(snapshot.state), snapshot.schema_version
    while version < expected:
        step = upcasters.snapshot_step(snapshot.aggregate_type, version)
        if step is None:
            return None
        try:
            state = step.function(state)
        except Exception:
            logger.warning("Snapshot upcaster %s failed on %s", step.describe(), snapshot,
                           exc_info=True)
            return None
        if type(state) is not dict:
            logger.warning("Snapshot upcaster %s returned %s, not a dict", step.describe(),
                           type(state).__name__)
            return None
        version += 1
    return replace(snapshot, state=state, schema_version=version)


def record_discarded(aggregate_type: str) -> None:
    """Count one snapshot a load discarded (`discarded_snapshots`, and the OpenTelemetry
    counter `eventsource.snapshots.discarded` when metrics record)."""
    _DISCARDED[aggregate_type] += 1
    if metrics_live():
        if not _counter:
            _counter.append(get_meter().create_counter(
                SNAPSHOTS_DISCARDED, unit="{snapshot}",
                description="Snapshots a load discarded (schema version nobody can read)",
            ))
        _counter[0].add(1, {"aggregate.type": aggregate_type})  # type: ignore[attr-defined]


def discarded_snapshots(aggregate_type: str | None = None) -> int:
    """Snapshots discarded in this process so far (of `aggregate_type`, else of all)."""
    if aggregate_type is None:
        return sum(_DISCARDED.values())
    return _DISCARDED[aggregate_type]
