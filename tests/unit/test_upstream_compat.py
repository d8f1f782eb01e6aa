"""Issue 20: code written for eventsource-py 0.2.0 finds every public name its API reference
documents at the documented module path, and the name is the working object: a class with its
documented members, a function that runs, a constant with its value.

The tables are data, copied by hand from the upstream reference (`docs/api/*.md`, 0.2.0), one
row per (module, name); later slices add their groups' rows. What each name does is tested
where it is implemented (see docs/compatibility.md for the map).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHECKPOINT_REPO = (
    "get_checkpoint", "update_checkpoint", "get_lag_metrics", "reset_checkpoint",
    "get_position", "save_position", "get_all_checkpoints",
)
DLQ_REPO = (
    "add_failed_event", "get_failed_events", "get_failed_event_by_id", "mark_resolved",
    "mark_retrying", "get_failure_stats", "get_projection_failure_counts",
    "delete_resolved_events",
)
OUTBOX_REPO = (
    "add_event", "get_pending_events", "mark_published", "mark_failed", "increment_retry",
    "cleanup_published", "get_stats",
)
DICT_STYLE = ("__getitem__", "__contains__", "get", "keys", "items")  # deprecated upstream
DLQ_ENTRY = (
    "id", "event_id", "projection_name", "event_type", "event_data", "error_message",
    "error_stacktrace", "retry_count", "first_failed_at", "last_failed_at", "status",
    "resolved_at", "resolved_by", *DICT_STYLE,
)
OUTBOX_ENTRY = (
    "id", "event_id", "event_type", "aggregate_id", "aggregate_type", "tenant_id", "event_data",
    "created_at", "status", "published_at", "retry_count", "last_error", *DICT_STYLE,
)
STRATEGY = ("should_snapshot", "execute_snapshot")

# Group 1: the repository families, each from its own module (and the package root).
_FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "eventsource.repositories.checkpoint": {
        "CheckpointRepository": CHECKPOINT_REPO,
        "CheckpointRepositoryProtocol": CHECKPOINT_REPO,
        "InMemoryCheckpointRepository": (*CHECKPOINT_REPO, "clear"),
        "PostgreSQLCheckpointRepository": CHECKPOINT_REPO,
        "SQLiteCheckpointRepository": CHECKPOINT_REPO,
        "CheckpointData": (
            "projection_name", "last_event_id", "last_event_type", "last_processed_at",
            "events_processed", "global_position",
        ),
        "LagMetrics": (
            "projection_name", "last_event_id", "latest_event_id", "lag_seconds",
            "events_processed", "last_processed_at",
        ),
    },
    "eventsource.repositories.dlq": {
        "DLQRepository": DLQ_REPO,
        "DLQRepositoryProtocol": DLQ_REPO,
        "InMemoryDLQRepository": (*DLQ_REPO, "clear"),
        "PostgreSQLDLQRepository": DLQ_REPO,
        "SQLiteDLQRepository": DLQ_REPO,
        "DLQEntry": DLQ_ENTRY,
        "DLQStats": ("total_failed", "total_retrying", "affected_projections", "oldest_failure"),
        "ProjectionFailureCount": (
            "projection_name", "failure_count", "oldest_failure", "most_recent_failure",
        ),
    },
    "eventsource.repositories.outbox": {
        "OutboxRepository": OUTBOX_REPO,
        "OutboxRepositoryProtocol": OUTBOX_REPO,
        "InMemoryOutboxRepository": (*OUTBOX_REPO, "clear"),
        "PostgreSQLOutboxRepository": OUTBOX_REPO,
        "SQLiteOutboxRepository": OUTBOX_REPO,
        "OutboxEntry": OUTBOX_ENTRY,
        "OutboxStats": (
            "pending_count", "published_count", "failed_count", "oldest_pending", "avg_retries",
        ),
    },
}

CLASSES: dict[tuple[str, str], tuple[str, ...]] = {
    **{
        (module, name): members
        for family, names in _FAMILIES.items()
        for module in (family, "eventsource.repositories")
        for name, members in names.items()
    },
    # Group 4: the store contract a custom store subclasses.
    ("eventsource.stores.interface", "EventStore"): (
        "append_events", "get_events", "get_events_by_type", "event_exists",
        "get_stream_version", "get_global_position", "read_stream", "read_all",
    ),
    ("eventsource.stores.interface", "EventStream"): (
        "aggregate_id", "aggregate_type", "events", "version", "is_empty", "latest_event", "empty",
    ),
    # Group 5: snapshot strategies.
    ("eventsource.snapshots.strategies", "SnapshotStrategy"): STRATEGY,
    ("eventsource.snapshots.strategies", "BaseSnapshotStrategy"): (*STRATEGY, "threshold"),
    ("eventsource.snapshots.strategies", "ThresholdSnapshotStrategy"): (*STRATEGY, "threshold"),
    ("eventsource.snapshots.strategies", "BackgroundSnapshotStrategy"): (
        *STRATEGY, "threshold", "pending_count", "await_pending",
    ),
    ("eventsource.snapshots.strategies", "NoSnapshotStrategy"): (*STRATEGY, "threshold"),
    # Group 7: the bus contract and its handler protocols.
    ("eventsource.bus.interface", "EventBus"): (
        "publish", "subscribe", "unsubscribe", "subscribe_all", "subscribe_to_all_events",
        "unsubscribe_from_all_events",
    ),
    ("eventsource.bus.interface", "EventSubscriber"): ("subscribed_to", "handle"),
    ("eventsource.bus.interface", "EventHandler"): ("handle",),
    ("eventsource.bus.interface", "AsyncEventHandler"): ("handle", "event_types", "can_handle"),
    ("eventsource.bus.memory", "InMemoryEventBus"): (
        "publish", "subscribe", "unsubscribe", "subscribe_all", "subscribe_to_all_events",
        "unsubscribe_from_all_events", "get_stats", "get_subscriber_count",
        "get_wildcard_subscriber_count", "shutdown", "clear_subscribers",
    ),
    # Groups 10 and 17: start() results, get_health() read as a dict.
    ("eventsource.subscriptions", "SubscriptionManager"): ("start", "get_health"),
    ("eventsource.subscriptions.manager", "SubscriptionManager"): ("start", "get_health"),
    ("eventsource.subscriptions", "ManagerHealth"): (*DICT_STYLE, "__iter__", "__len__", "to_dict"),
    ("eventsource.subscriptions.health", "ManagerHealth"): (*DICT_STYLE, "to_dict"),
}

SCHEMAS = ("checkpoints", "dlq", "events", "outbox", "snapshots")

# Group 5 and 6: functions, each called as the reference shows, with what it must return.
FUNCTIONS: dict[tuple[str, str], tuple[tuple[Any, ...], Callable[[Any], bool]]] = {
    ("eventsource.snapshots.strategies", "create_snapshot_strategy"): (
        ("background", 10),
        lambda s: type(s).__name__ == "BackgroundSnapshotStrategy" and s.threshold == 10,
    ),
    ("eventsource.migrations", "get_schema"): (
        ("snapshots", "sqlite"), lambda sql: "CREATE TABLE IF NOT EXISTS snapshots" in sql,
    ),
    ("eventsource.migrations", "get_all_schemas"): (
        ("sqlite",), lambda sql: "CREATE TABLE IF NOT EXISTS events" in sql,
    ),
    ("eventsource.migrations", "get_template_path"): (
        ("events", "sqlite"), lambda path: isinstance(path, Path) and path.is_file(),
    ),
    ("eventsource.migrations", "list_schemas"): (
        (), lambda names: names == sorted((*SCHEMAS, "events_partitioned", "retention")),
    ),
    ("eventsource.migrations", "list_backends"): ((), lambda b: b == ["postgresql", "sqlite"]),
    # Group 11: the config helpers' documented shapes.
    ("eventsource.subscriptions", "create_catch_up_config"): (
        (), lambda c: (c.start_from, c.batch_size, c.checkpoint_strategy.value)
        == ("checkpoint", 1000, "every_batch"),
    ),
    ("eventsource.subscriptions.config", "create_live_only_config"): (
        (), lambda c: (c.start_from, c.batch_size, c.checkpoint_strategy.value)
        == ("end", 100, "every_event"),
    ),
}

# Group 6: the schema-name constants.
CONSTANTS: dict[tuple[str, str], object] = {
    ("eventsource.migrations", f"{name.upper()}_SCHEMA"): name
    for name in (*SCHEMAS, "events_partitioned")
}

# Type aliases that must import (they have no runtime behaviour to call).
TYPE_ALIASES = [("eventsource.migrations", "SchemaName"), ("eventsource.migrations", "BackendName")]


def _imported(module: str, name: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(f"from {module} import {name}", namespace)  # the statement a user writes
    return namespace[name]


def _has(cls: type, member: str) -> bool:
    if hasattr(cls, member):
        return True
    return dataclasses.is_dataclass(cls) and member in {f.name for f in dataclasses.fields(cls)}


def _ids(rows: Any) -> list[str]:
    return [f"{module}:{name}" for module, name in rows]


@pytest.mark.parametrize(("path", "members"), CLASSES.items(), ids=_ids(CLASSES))
def test_class_has_its_documented_members(path: tuple[str, str], members: tuple[str, ...]) -> None:
    cls = _imported(*path)
    assert isinstance(cls, type)
    assert [m for m in members if not _has(cls, m)] == []


@pytest.mark.parametrize(("path", "call"), FUNCTIONS.items(), ids=_ids(FUNCTIONS))
def test_function_runs(
    path: tuple[str, str], call: tuple[tuple[Any, ...], Callable[[Any], bool]]
) -> None:
    args, check = call
    assert check(_imported(*path)(*args))


@pytest.mark.parametrize(("path", "value"), CONSTANTS.items(), ids=_ids(CONSTANTS))
def test_constant_has_its_documented_value(path: tuple[str, str], value: object) -> None:
    assert _imported(*path) == value


@pytest.mark.parametrize("path", TYPE_ALIASES, ids=_ids(TYPE_ALIASES))
def test_type_alias_imports(path: tuple[str, str]) -> None:
    assert _imported(*path) is not None


@pytest.mark.parametrize(
    ("alias", "target"),
    [
        ("CheckpointRepositoryProtocol", "CheckpointRepository"),
        ("DLQRepositoryProtocol", "DLQRepository"),
        ("OutboxRepositoryProtocol", "OutboxRepository"),
    ],
)
def test_protocol_aliases_are_the_protocols(alias: str, target: str) -> None:
    package = importlib.import_module("eventsource.repositories")
    assert getattr(package, alias) is getattr(package, target)


def test_the_family_modules_give_the_package_root_objects() -> None:
    package = importlib.import_module("eventsource.repositories")
    for module, names in _FAMILIES.items():
        for name in names:
            assert _imported(module, name) is getattr(package, name), (module, name)
