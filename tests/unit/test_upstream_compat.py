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
import importlib.util
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


SUBS = "eventsource.subscriptions"
FLOW = "eventsource.subscriptions.flow_control"
FILTERING = "eventsource.subscriptions.filtering"
SUBSCRIBER = "eventsource.subscriptions.subscriber"
METRICS = "eventsource.subscriptions.metrics"
COORDINATION = "eventsource.subscriptions.coordination"
SHUTDOWN = "eventsource.subscriptions.shutdown"
ERRORS = "eventsource.subscriptions.error_handling"
RETRY = "eventsource.subscriptions.retry"
HEALTH = "eventsource.subscriptions.health"
TRANSITION = "eventsource.subscriptions.transition"
ELECTOR = ("identity", "is_leader", "current_leader", "try_acquire", "release", "renew",
           "on_leader_change", "remove_leader_change_callback")
SUBSCRIBER_BASE = ("subscribed_to", "handle", "can_handle")
MESSAGE = ("to_dict", "from_dict")

# Groups 13-16: each class with its documented members, from its module and the package.
_BY_MODULE: dict[str, dict[str, tuple[str, ...]]] = {
    FLOW: {
        "FlowController": (
            "acquire", "release", "is_paused", "is_backpressured", "in_flight",
            "available_capacity", "utilization", "stats", "reset_stats", "wait_for_capacity",
        ),
        "FlowControlStats": (
            "events_in_flight", "peak_in_flight", "pause_count", "total_pause_time_seconds",
            "total_acquisitions", "total_releases", "to_dict",
        ),
        "FlowControlContext": ("__aenter__", "__aexit__"),
    },
    FILTERING: {
        "EventFilter": (
            "event_types", "event_type_patterns", "aggregate_types", "tenant_id", "matches",
            "stats", "is_configured", "event_type_names", "reset_stats", "from_config",
            "from_subscriber", "from_config_and_subscriber", "from_patterns",
        ),
        "FilterStats": (
            "events_evaluated", "events_matched", "events_skipped", "match_rate",
            "record_match", "record_skip", "to_dict",
        ),
    },
    SUBSCRIBER: {
        "Subscriber": ("subscribed_to", "handle"),
        "SyncSubscriber": ("subscribed_to", "handle"),
        "BatchSubscriber": ("subscribed_to", "handle_batch"),
        "BaseSubscriber": SUBSCRIBER_BASE,
        "BatchAwareSubscriber": (
            *SUBSCRIBER_BASE, "handle_batch", "handle_batch_with_error_tracking",
        ),
        "FilteringSubscriber": (*SUBSCRIBER_BASE, "handle_batch", "should_handle"),
    },
    METRICS: {
        "SubscriptionMetrics": (
            "record_event_processed", "record_event_failed", "record_lag", "record_state",
            "time_processing", "get_snapshot", "metrics_enabled", "current_lag",
            "current_state",
        ),
        "MetricSnapshot": (
            "events_processed", "events_failed", "total_processing_time_ms", "current_lag",
            "current_state", "current_state_name", "to_dict",
        ),
        "NoOpCounter": ("add",),
        "NoOpHistogram": ("record",),
        "NoOpGauge": (),
        "StateValue": ("UNKNOWN", "STARTING", "CATCHING_UP", "LIVE", "PAUSED", "STOPPED",
                       "ERROR"),
    },
    COORDINATION: {
        "LeaderElector": ELECTOR,
        "LeaderElectorWithLease": (
            *ELECTOR, "lease_duration_seconds", "lease_remaining_seconds",
            "wait_for_leadership",
        ),
        "InMemoryLeaderElector": (*ELECTOR, "force_lose_leadership"),
        "SharedLeaderState": ("current_leader",),
        "HeartbeatMessage": (
            "instance_id", "timestamp", "subscriptions", "in_flight_count", "is_leader",
            "load_factor", "is_stale", *MESSAGE,
        ),
        "ShutdownNotification": (
            "instance_id", "intent", "initiated_at", "expected_completion_at",
            "subscriptions", "in_flight_count", "metadata", "time_remaining_seconds",
            "is_expired", *MESSAGE,
        ),
        "WorkAssignment": (
            "target_instance_id", "subscriptions", "source_instance_id", "assigned_at",
            "priority", *MESSAGE,
        ),
        "ShutdownIntent": ("GRACEFUL", "PREEMPTION", "HEALTH_FAILURE", "MAINTENANCE"),
        "PeerInfo": ("instance_id", "last_heartbeat", "shutdown_notification", "status",
                     "subscriptions"),
        "WorkRedistributionCoordinator": (
            "is_shutting_down", "shutdown_notification", "known_peers",
            "healthy_peer_count", "draining_peers", "create_shutdown_notification",
            "create_heartbeat", "handle_peer_shutdown", "handle_heartbeat",
            "handle_work_assignment", "check_peer_timeouts", "remove_peer",
            "get_orphaned_subscriptions", "initiate_leadership_handoff",
            "on_peer_shutdown", "on_heartbeat", "on_peer_timeout", "on_work_assignment",
            "remove_peer_shutdown_callback", "remove_heartbeat_callback",
            "remove_peer_timeout_callback", "remove_work_assignment_callback",
        ),
    },
    HEALTH: {
        "SubscriptionHealthChecker": ("check",),
        "ManagerHealthChecker": ("check",),
        "HealthCheckResult": ("overall_status", "subscription_name", "indicators",
                              "to_dict"),
    },
    TRANSITION: {"StartFromResolver": ("resolve",)},
    SHUTDOWN: {
        "ShutdownCoordinator": (
            "register_signals", "unregister_signals", "on_shutdown", "remove_callback",
            "on_pre_shutdown", "on_post_shutdown", "wait_for_shutdown",
            "request_shutdown", "shutdown", "is_shutting_down", "phase", "is_forced",
            "set_in_flight_count",
        ),
        "ShutdownReason": ("SIGNAL_SIGTERM", "SIGNAL_SIGINT", "PROGRAMMATIC",
                           "HEALTH_CHECK", "TIMEOUT", "DOUBLE_SIGNAL"),
        "ShutdownResult": ("phase", "duration_seconds", "forced", "reason",
                           "events_not_drained", "to_dict"),
    },
    ERRORS: {
        "SubscriptionErrorHandler": (
            "handle_error", "on_error", "on_error_sync", "on_category", "on_severity",
            "should_continue", "should_retry", "dlq_count",
            "total_errors", "get_health_status", "clear_stats",
        ),
        "ErrorHandlerRegistry": ("register", "register_sync", "register_for_category",
                                 "register_for_severity", "notify", "clear"),
        "ErrorClassifier": ("classify", "register_classification",
                            "register_pattern_rule", "is_retryable", "is_transient"),
        "ErrorStats": ("total_errors", "transient_errors", "permanent_errors",
                       "record_error", "to_dict"),
    },
    RETRY: {
        "CircuitBreaker": ("execute", "reset", "is_open", "is_closed", "is_half_open",
                           "to_dict", "record_success", "record_failure", "state",
                           "failure_count"),
        "RetryableOperation": ("execute",),
        "RetryStats": ("attempts", "successes", "failures", "total_delay_seconds",
                       "to_dict"),
    },
}
_SUBSCRIPTION_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    name: (module, members)
    for module, classes in _BY_MODULE.items()
    for name, members in classes.items()
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
    **{
        (module, name): members
        for name, (home, members) in _SUBSCRIPTION_GROUPS.items()
        for module in (SUBS, home)
    },
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
    # Group 13: the helpers of the subscriber, filtering and metrics modules.
    (SUBSCRIBER, "supports_batch_handling"): ((object(),), lambda found: found is False),
    (SUBSCRIBER, "get_subscribed_event_types"): (
        (type("Lists", (), {"subscribed_to": lambda self: []})(),), lambda found: found == [],
    ),
    (FILTERING, "matches_pattern"): (("OrderCreated", "Order*"), lambda found: found is True),
    (FILTERING, "matches_event_type"): ((object(), None), lambda found: found is True),
    (METRICS, "get_metrics"): (
        ("compat-probe", False),
        lambda found: type(found).__name__ == "SubscriptionMetrics"
        and found.subscription_name == "compat-probe",
    ),
    (METRICS, "clear_metrics_registry"): ((), lambda found: found is None),
}

# Group 6: the schema-name constants.
CONSTANTS: dict[tuple[str, str], object] = {
    ("eventsource.migrations", f"{name.upper()}_SCHEMA"): name
    for name in (*SCHEMAS, "events_partitioned")
}

CONSTANTS.update({
    (COORDINATION, "COORDINATION_TOPIC_PREFIX"): "__eventsource_coordination",
    (COORDINATION, "SHUTDOWN_NOTIFICATIONS_TOPIC"): "__eventsource_coordination.shutdown",
    (COORDINATION, "HEARTBEAT_TOPIC"): "__eventsource_coordination.heartbeat",
    (COORDINATION, "WORK_ASSIGNMENT_TOPIC"): "__eventsource_coordination.work_assignment",
    (METRICS, "STATE_MAPPING"): {
        "starting": 1, "catching_up": 2, "live": 3, "paused": 4, "stopped": 5, "error": 6,
    },
    # True where OpenTelemetry is installed (the main run), False in the core run
    (METRICS, "OTEL_METRICS_AVAILABLE"): importlib.util.find_spec("opentelemetry") is not None,
})

# Type aliases that must import (they have no runtime behaviour to call).
TYPE_ALIASES = [
    ("eventsource.migrations", "SchemaName"),
    ("eventsource.migrations", "BackendName"),
    *((COORDINATION, name) for name in (
        "LeaderChangeCallback", "PeerShutdownCallback", "HeartbeatCallback",
        "WorkAssignmentCallback", "PeerTimeoutCallback",
    )),
]


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


def test_documented_instance_attributes_and_defaults() -> None:
    """Members set per instance, with 0.2.0's defaults (groups 14-16)."""
    shutdown = _imported(SHUTDOWN, "ShutdownCoordinator")()
    assert (shutdown.timeout, shutdown.drain_timeout, shutdown.checkpoint_timeout,
            shutdown.checkpoint_interval) == (30.0, 10.0, 5.0, 5.0)
    assert shutdown.phase.value == "running"
    handler = _imported(ERRORS, "SubscriptionErrorHandler")("sub")
    assert (handler.stats.total_errors, len(handler.recent_errors)) == (0, 0)
    breaker = _imported(RETRY, "CircuitBreaker")()
    operation = _imported(RETRY, "RetryableOperation")(circuit_breaker=breaker)
    assert operation.circuit_breaker is breaker
    assert operation.stats.total_delay_seconds == 0.0
    assert operation.config.max_retries == 5
    assert _imported(COORDINATION, "InMemoryLeaderElector")("w1").shared_state is None


# Names 0.2.0 documents that this package leaves out on purpose (docs/compatibility.md says
# why): they must not import, so that no stub stands in for machinery that is not there.
LEFT_OUT = [
    ("eventsource.subscriptions.runners", "CatchUpRunner"),
    ("eventsource.subscriptions.runners", "LiveRunner"),
    (TRANSITION, "TransitionCoordinator"),
    (TRANSITION, "TransitionPhase"),
    (TRANSITION, "TransitionResult"),
    (SUBS, "CatchUpRunner"),
    (SUBS, "TransitionCoordinator"),
]


@pytest.mark.parametrize("path", LEFT_OUT, ids=_ids(LEFT_OUT))
def test_names_left_out_do_not_import(path: tuple[str, str]) -> None:
    with pytest.raises(ImportError):
        _imported(*path)
