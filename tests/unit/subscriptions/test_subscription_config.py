"""Subscription configuration, error and health types (API.md §7.1, §7.4, §7.5, §14)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from subs_helpers import OrderPlaced

from eventsource.subscriptions import (
    CheckpointNotFoundError,
    CheckpointStrategy,
    ErrorCategory,
    ErrorClassification,
    ErrorHandlingConfig,
    ErrorHandlingStrategy,
    ErrorInfo,
    ErrorSeverity,
    ErrorStats,
    EventBusConnectionError,
    EventStoreConnectionError,
    HealthCheckConfig,
    PauseReason,
    RetryConfig,
    ShutdownPhase,
    ShutdownResult,
    SubscriptionAlreadyExistsError,
    SubscriptionConfig,
    SubscriptionConfigError,
    SubscriptionError,
    SubscriptionState,
    SubscriptionStateError,
    TransitionError,
    create_catch_up_config,
    create_live_only_config,
    get_default_classifier,
)


def test_defaults_match_the_api() -> None:
    config = SubscriptionConfig()
    assert config.start_from == "checkpoint"
    assert config.batch_size == 100
    assert config.max_in_flight == 1000
    assert config.backpressure_threshold == 0.8
    assert config.checkpoint_strategy is CheckpointStrategy.EVERY_BATCH
    assert config.checkpoint_interval_seconds == 5.0
    assert config.processing_timeout == 30.0
    assert config.shutdown_timeout == 30.0
    assert config.event_types is None
    assert config.aggregate_types is None
    assert config.continue_on_error is True
    assert config.max_retries == 5
    assert (config.initial_retry_delay, config.max_retry_delay) == (1.0, 60.0)
    assert (config.retry_exponential_base, config.retry_jitter) == (2.0, 0.1)
    assert config.circuit_breaker_enabled is True
    assert config.circuit_breaker_failure_threshold == 5
    assert config.circuit_breaker_recovery_timeout == 30.0


def test_config_echoes_its_fields_and_strategy_value() -> None:
    """§15 item 37."""
    config = SubscriptionConfig(
        start_from="beginning", batch_size=50, checkpoint_strategy=CheckpointStrategy.EVERY_BATCH
    )
    assert config.start_from == "beginning"
    assert config.batch_size == 50
    assert config.checkpoint_strategy.value == "every_batch"


def test_string_strategy_is_coerced_to_the_enum() -> None:
    config = SubscriptionConfig(checkpoint_strategy="every_batch")  # type: ignore[arg-type]
    assert config.checkpoint_strategy is CheckpointStrategy.EVERY_BATCH
    assert SubscriptionConfig(checkpoint_strategy="periodic").checkpoint_strategy is (  # type: ignore[arg-type]
        CheckpointStrategy.PERIODIC
    )
    with pytest.raises(ValueError, match="sometimes"):
        SubscriptionConfig(checkpoint_strategy="sometimes")  # type: ignore[arg-type]


def test_config_is_frozen() -> None:
    config = SubscriptionConfig()
    with pytest.raises(AttributeError):
        config.batch_size = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"max_in_flight": 0},
        {"start_from": -1},
        {"start_from": "middle"},
        {"processing_timeout": 0},
        {"shutdown_timeout": -1.0},
        {"checkpoint_interval_seconds": 0},
        {"backpressure_threshold": 1.5},
        {"retry_jitter": -0.1},
        {"max_retries": -1},
        {"initial_retry_delay": 0},
        {"max_retry_delay": 0.5},
        {"retry_exponential_base": 1.0},
        {"circuit_breaker_failure_threshold": 0},
        {"circuit_breaker_recovery_timeout": 0},
    ],
)
def test_invalid_values_raise_value_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SubscriptionConfig(**kwargs)  # type: ignore[arg-type]


def test_retry_and_breaker_helpers() -> None:
    config = SubscriptionConfig(max_retries=2, initial_retry_delay=0.5, max_retry_delay=4.0,
                                retry_exponential_base=3.0, retry_jitter=0.0,
                                circuit_breaker_failure_threshold=7,
                                circuit_breaker_recovery_timeout=9.0)
    assert config.get_retry_config() == RetryConfig(2, 0.5, 4.0, 3.0, 0.0)
    breaker = config.get_circuit_breaker_config()
    assert (breaker.failure_threshold, breaker.recovery_timeout) == (7, 9.0)


def test_factory_configs() -> None:
    catch_up = create_catch_up_config()
    assert (catch_up.start_from, catch_up.batch_size) == ("checkpoint", 1000)
    assert catch_up.checkpoint_strategy is CheckpointStrategy.EVERY_BATCH
    assert create_catch_up_config(10, False).checkpoint_strategy is CheckpointStrategy.PERIODIC
    live = create_live_only_config()
    assert (live.start_from, live.checkpoint_strategy) == ("end", CheckpointStrategy.EVERY_EVENT)


def test_event_types_are_kept_as_a_tuple() -> None:
    config = SubscriptionConfig(event_types=[OrderPlaced], aggregate_types=["Order"])  # type: ignore[arg-type]
    assert config.event_types == (OrderPlaced,)
    assert config.aggregate_types == ("Order",)


def test_enum_values_are_lower_case() -> None:
    assert SubscriptionState.CATCHING_UP.value == "catching_up"
    assert [s.value for s in SubscriptionState] == [
        "starting", "catching_up", "live", "paused", "stopped", "error"
    ]
    assert [c.value for c in ErrorCategory] == [
        "transient", "permanent", "infrastructure", "application", "unknown"
    ]
    assert [s.value for s in ErrorSeverity] == ["low", "medium", "high", "critical"]
    assert [p.value for p in ShutdownPhase] == [
        "running", "stopping", "draining", "checkpointing", "stopped", "forced"
    ]
    assert {r.name for r in PauseReason} == {"MANUAL", "BACKPRESSURE", "MAINTENANCE"}
    assert {s.name for s in ErrorHandlingStrategy} == {
        "STOP", "CONTINUE", "RETRY_THEN_CONTINUE", "RETRY_THEN_DLQ", "DLQ_ONLY"
    }


@pytest.mark.parametrize(
    ("error", "category", "severity", "retryable"),
    [
        (ConnectionError("x"), ErrorCategory.TRANSIENT, ErrorSeverity.MEDIUM, True),
        (TimeoutError(), ErrorCategory.TRANSIENT, ErrorSeverity.MEDIUM, True),
        (FileNotFoundError(), ErrorCategory.TRANSIENT, ErrorSeverity.MEDIUM, True),
        (ValueError(), ErrorCategory.APPLICATION, ErrorSeverity.MEDIUM, False),
        (KeyError("k"), ErrorCategory.APPLICATION, ErrorSeverity.MEDIUM, False),
        (TypeError(), ErrorCategory.APPLICATION, ErrorSeverity.HIGH, False),
        (AttributeError(), ErrorCategory.APPLICATION, ErrorSeverity.HIGH, False),
        (MemoryError(), ErrorCategory.INFRASTRUCTURE, ErrorSeverity.CRITICAL, False),
        (SystemError(), ErrorCategory.INFRASTRUCTURE, ErrorSeverity.CRITICAL, False),
        (RuntimeError(), ErrorCategory.UNKNOWN, ErrorSeverity.MEDIUM, False),
    ],
)
def test_default_classification_by_mro(
    error: BaseException, category: ErrorCategory, severity: ErrorSeverity, retryable: bool
) -> None:
    found = get_default_classifier().classify(error)
    assert (found.category, found.severity, found.retryable) == (category, severity, retryable)


def test_error_info_to_dict_flattens_the_classification() -> None:
    event_id = uuid4()
    classification = ErrorClassification(ErrorCategory.TRANSIENT, ErrorSeverity.MEDIUM, True)
    def fail() -> None:
        raise ConnectionError("db gone")

    try:
        fail()
    except ConnectionError as exc:
        info = ErrorInfo.from_exception(
            exc, classification, event_id=event_id, event_type="OrderPlaced", position=7,
            subscription_name="orders", retry_count=2,
        )
    data = info.to_dict()
    assert data["event_id"] == str(event_id)
    assert data["error_type"] == "ConnectionError"
    assert data["error_message"] == "db gone"
    assert "ConnectionError" in data["error_stacktrace"]
    assert (data["category"], data["severity"], data["retryable"]) == ("transient", "medium", True)
    assert data["position"] == 7
    assert data["retry_count"] == 2
    assert data["sent_to_dlq"] is False
    assert data["dlq_id"] is None
    assert isinstance(data["timestamp"], str)


def test_error_handling_and_health_defaults() -> None:
    config = ErrorHandlingConfig()
    assert config.strategy is ErrorHandlingStrategy.RETRY_THEN_CONTINUE
    assert (config.max_recent_errors, config.max_errors_before_stop) == (100, None)
    assert (config.error_rate_threshold, config.dlq_enabled) == (None, True)
    assert config.notify_on_severity is ErrorSeverity.HIGH
    health = HealthCheckConfig()
    assert health.max_error_rate_per_minute == 10.0
    assert (health.max_errors_warning, health.max_errors_critical) == (10, 100)
    assert (health.max_lag_events_warning, health.max_lag_events_critical) == (1000, 10000)
    assert health.circuit_open_is_unhealthy is True
    assert (health.max_dlq_events_warning, health.max_dlq_events_critical) == (10, 100)
    assert ErrorStats().to_dict()["total_errors"] == 0


def test_shutdown_result_defaults() -> None:
    result = ShutdownResult(ShutdownPhase.STOPPED, 0.5, 2, 10)
    assert (result.checkpoints_saved, result.forced, result.error, result.reason) == (
        0, False, None, None
    )
    assert (result.in_flight_at_start, result.events_not_drained) == (0, 0)


def test_exception_hierarchy() -> None:
    for kind in (SubscriptionConfigError, SubscriptionStateError, EventStoreConnectionError,
                 EventBusConnectionError, TransitionError):
        assert issubclass(kind, SubscriptionError)
    assert issubclass(SubscriptionError, Exception)
    assert SubscriptionAlreadyExistsError("orders").name == "orders"
    assert CheckpointNotFoundError("Dashboard").projection_name == "Dashboard"
