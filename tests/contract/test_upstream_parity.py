"""Issue 20: eventsource-py 0.2.0 behaviour beyond the tutorials, on every backend it touches
(groups 1, 2, 4, 5 and 6 of the gap list; see docs/compatibility.md).

The expectations come from the upstream API reference; where it and the tutorial (API.md)
disagree, the tutorial wins and the test says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel
from test_repositories import _MODULES, _connection, open_repository
from test_snapshots import _checked, open_snapshot_store
from test_stores import open_store

from eventsource import AggregateRoot, DomainEvent, ExpectedVersion, register_event
from eventsource.snapshots import Snapshot, SnapshotStore
from eventsource.stores.interface import (
    EventStore,
    EventStream,
    ReadDirection,
    ReadOptions,
)

_PG = pytest.mark.postgresql


@pytest.fixture(params=["memory", "sqlite-file", pytest.param("postgresql", marks=_PG)])
def store_backend(request: pytest.FixtureRequest) -> str:
    """An event-store or snapshot-store backend (names as in test_stores and test_snapshots)."""
    return _checked(request)


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgresql", marks=_PG),
            pytest.param("postgresql-engine", marks=_PG)]
)
def repository_backend(request: pytest.FixtureRequest) -> str:
    """A repository backend (names as in test_repositories)."""
    return _checked(request)


@register_event
class ParityNoted(DomainEvent):
    event_type: str = "ParityNoted"
    aggregate_type: str = "Parity"
    note: str = ""


# -- group 1: checkpoint and DLQ repositories from their own modules ---------------------------


async def test_checkpoint_and_dlq_repositories_work_from_their_family_modules(
    repository_backend: str, tmp_path: Path
) -> None:
    """`from eventsource.repositories.checkpoint import SQLiteCheckpointRepository` (and the
    PostgreSQL and DLQ ones) give working repositories on the real database."""
    module, prefix = _MODULES[repository_backend.partition("-")[0]]
    checkpoints_cls = getattr(import_module("eventsource.repositories.checkpoint"),
                              f"{prefix}CheckpointRepository")
    dlq_cls = getattr(import_module("eventsource.repositories.dlq"), f"{prefix}DLQRepository")
    assert checkpoints_cls is getattr(import_module(module), checkpoints_cls.__name__)
    event_id = uuid4()
    async with _connection(repository_backend, tmp_path) as conn:
        checkpoints = checkpoints_cls() if conn is None else checkpoints_cls(conn)
        dlq = dlq_cls() if conn is None else dlq_cls(conn)
        await checkpoints.update_checkpoint("Parity", event_id, "ParityNoted")
        assert await checkpoints.get_checkpoint("Parity") == event_id
        await dlq.add_failed_event(event_id, "Parity", "ParityNoted", {}, ValueError("bad"))
        [entry] = await dlq.get_failed_events()
        assert (entry.event_id, entry.error_message) == (event_id, "bad")


# -- group 2: deprecated dict-style access on repository results ------------------------------

DEPRECATED = "dict-style access to .* is deprecated"


async def test_dlq_entries_still_answer_dict_style_access_with_a_warning(
    repository_backend: str, tmp_path: Path
) -> None:
    async with open_repository("dlq", repository_backend, tmp_path) as repo:
        event_id = uuid4()
        await repo.add_failed_event(event_id, "Parity", "ParityNoted", {}, ValueError("bad"))
        [entry] = await repo.get_failed_events()
    with pytest.warns(DeprecationWarning, match=r"entry\.error_message"):
        assert entry["error_message"] == "bad"
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert "projection_name" in entry
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert "no_such_field" not in entry
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert entry.get("event_id") == event_id
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert entry.get("no_such_field", "fallback") == "fallback"
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        keys = list(entry.keys())
    assert keys[:4] == ["id", "event_id", "projection_name", "event_type"]
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert dict(entry.items())["status"] == "failed"
    with (
        pytest.warns(DeprecationWarning, match=DEPRECATED),
        pytest.raises(KeyError, match="no_such_field"),
    ):
        entry["no_such_field"]


async def test_outbox_entries_still_answer_dict_style_access_with_a_warning(
    repository_backend: str, tmp_path: Path
) -> None:
    event = ParityNoted(aggregate_id=uuid4(), note="n")
    async with open_repository("outbox", repository_backend, tmp_path) as repo:
        await repo.add_event(event)
        [entry] = await repo.get_pending_events()
    with pytest.warns(DeprecationWarning, match=r"entry\.event_type"):
        assert entry["event_type"] == "ParityNoted"
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert entry.get("aggregate_id") == event.aggregate_id
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert "tenant_id" in entry
    with pytest.warns(DeprecationWarning, match=DEPRECATED):
        assert dict(entry.items())["status"] == "pending"
    with pytest.warns(DeprecationWarning, match=DEPRECATED), pytest.raises(KeyError):
        entry["payload"]
