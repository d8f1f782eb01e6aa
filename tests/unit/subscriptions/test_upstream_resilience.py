"""Issue 20, groups 14-16: `ShutdownCoordinator`, the error-handler classes and the circuit
breaker with `RetryableOperation`, as eventsource-py 0.2.0 documents them. No database is
involved here; `handle_error` dead-lettering on the real stores is in
tests/integration/subscriptions/test_upstream_error_handler.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsource.exceptions import InvalidHandlerError
from eventsource.subscriptions import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
    ErrorCategory,
    ErrorClassification,
    ErrorClassifier,
    ErrorHandlerRegistry,
    ErrorHandlingConfig,
    ErrorInfo,
    ErrorSeverity,
    RetryableOperation,
    RetryConfig,
    RetryError,
    ShutdownCoordinator,
    ShutdownPhase,
    ShutdownReason,
    ShutdownResult,
    SubscriptionErrorHandler,
)

FAST = RetryConfig(max_retries=2, initial_delay=0.001, max_delay=0.002, jitter=0.0)


class Flaky:
    """Fails with `error` the first `failures` calls, then answers `done`."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("down")
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


# -- group 16: circuit breaker -----------------------------------------------------------


async def test_breaker_opens_at_the_threshold_and_refuses_calls() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=2, recovery_timeout=60))
    assert breaker.is_closed
    assert not breaker.is_open
    assert not breaker.is_half_open
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.execute(Flaky(1))
    assert breaker.is_open
    assert breaker.failure_count == 2
    work = Flaky(0)
    with pytest.raises(CircuitBreakerOpenError) as refused:
        await breaker.execute(work, operation_name="load")
    assert work.calls == 0
    assert "load" in str(refused.value)
    assert 0 < refused.value.recovery_time <= 60
    assert breaker.to_dict()["state"] == "open"
    assert breaker.to_dict()["failure_count"] == 2


async def test_breaker_half_open_trial_closes_or_reopens() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=1, recovery_timeout=0.01))
    await breaker.record_failure(ConnectionError("x"))
    assert breaker.is_open
    await asyncio.sleep(0.02)
    assert breaker.is_half_open
    with pytest.raises(ValueError):
        await breaker.execute(Flaky(1, ValueError("still bad")))
    assert breaker.state is CircuitState.OPEN  # the trial failed
    await asyncio.sleep(0.02)
    assert await breaker.execute(Flaky(0)) == "done"
    assert breaker.is_closed
    assert breaker.failure_count == 0


async def test_breaker_record_success_and_reset() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=3))
    await breaker.record_failure()
    await breaker.record_failure()
    await breaker.record_success()  # consecutive failures only
    await breaker.record_failure()
    assert breaker.is_closed
    assert breaker.failure_count == 1
    for _ in range(3):
        await breaker.record_failure()
    assert breaker.is_open
    breaker.reset()
    assert breaker.is_closed
    assert breaker.to_dict()["failure_count"] == 0


@given(st.lists(st.booleans(), max_size=30), st.integers(1, 4))
def test_breaker_follows_its_model(outcomes: list[bool], threshold: int) -> None:
    """Closed until `threshold` consecutive failures, then every call is refused (the recovery
    timeout is never reached here)."""
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=threshold,
                                                  recovery_timeout=3600))
    consecutive, opened, ran, expected_ran = 0, False, 0, 0

    async def drive() -> None:
        nonlocal consecutive, opened, ran, expected_ran
        for succeeds in outcomes:
            work = Flaky(0 if succeeds else 1)
            with contextlib.suppress(ConnectionError, CircuitBreakerOpenError):
                await breaker.execute(work)
            ran += work.calls
            expected_ran += not opened
            if not opened:
                consecutive = 0 if succeeds else consecutive + 1
                opened = consecutive >= threshold
            assert breaker.is_open is opened
            assert breaker.failure_count == consecutive

    asyncio.run(drive())
    assert ran == expected_ran  # refused calls never ran
    assert breaker.to_dict()["state"] == ("open" if opened else "closed")


async def test_retryable_operation_retries_transient_failures() -> None:
    operation = RetryableOperation(FAST, name="fetch")
    work = Flaky(2)
    assert await operation.execute(work) == "done"
    assert work.calls == 3
    stats = operation.stats
    assert (stats.attempts, stats.successes, stats.failures) == (3, 1, 0)
    assert stats.total_delay_seconds == stats.total_delay > 0
    assert stats.to_dict()["total_delay_seconds"] == stats.total_delay


async def test_retryable_operation_gives_up_and_does_not_retry_permanent_errors() -> None:
    operation = RetryableOperation(FAST)
    with pytest.raises(RetryError) as exhausted:
        await operation.execute(Flaky(10), operation_name="fetch")
    assert exhausted.value.attempts == 3
    assert isinstance(exhausted.value.last_error, ConnectionError)
    permanent = Flaky(10, ValueError("bad"))
    with pytest.raises(ValueError):
        await operation.execute(permanent)
    assert permanent.calls == 1
    assert operation.stats.failures == 2
    assert operation.stats.last_error == "bad"


async def test_retryable_operation_goes_through_its_circuit_breaker() -> None:
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=2, recovery_timeout=60))
    operation = RetryableOperation(FAST, circuit_breaker=breaker)
    work = Flaky(10)
    with pytest.raises(CircuitBreakerOpenError):
        await operation.execute(work)
    assert work.calls == 2  # the third attempt was refused by the open breaker
    assert breaker.is_open


# -- group 15: error handling ------------------------------------------------------------


def test_classifier_defaults_and_custom_rules() -> None:
    classifier = ErrorClassifier()
    assert classifier.is_transient(ConnectionError())
    assert classifier.is_retryable(TimeoutError())
    data = classifier.classify(ValueError("bad amount"))
    assert (data.category, data.retryable) == (ErrorCategory.APPLICATION, False)
    assert classifier.classify(RuntimeError()).category is ErrorCategory.UNKNOWN

    class QuotaError(Exception):
        pass

    quota = ErrorClassification(ErrorCategory.TRANSIENT, ErrorSeverity.LOW, True, "quota")
    classifier.register_classification(QuotaError, quota)
    assert classifier.classify(QuotaError()) is quota
    assert classifier.is_retryable(QuotaError())
    classifier.register_pattern_rule("DEADLOCK", quota)
    assert classifier.classify(RuntimeError("deadlock detected")) is quota
    assert ErrorClassifier().classify(QuotaError()).category is ErrorCategory.UNKNOWN


async def test_handler_counts_reports_and_stops_at_its_budget() -> None:
    handler = SubscriptionErrorHandler("orders", ErrorHandlingConfig(max_errors_before_stop=2))
    seen: list[tuple[str, str]] = []

    async def every(info: ErrorInfo) -> None:
        seen.append(("all", info.error_type))

    def plain(info: ErrorInfo) -> None:
        seen.append(("sync", info.error_type))

    async def transient(info: ErrorInfo) -> None:
        seen.append(("transient", info.error_type))

    async def high(info: ErrorInfo) -> None:
        seen.append(("high", info.error_type))

    handler.on_error(every)
    handler.on_error_sync(plain)
    handler.on_category(ErrorCategory.TRANSIENT, transient)
    handler.on_severity(ErrorSeverity.HIGH, high)
    assert handler.should_continue()
    first = await handler.handle_error(ConnectionError("refused"), retry_count=1)
    assert first.classification.category is ErrorCategory.TRANSIENT
    assert (first.event_id, first.event_type, first.position) == (None, "Unknown", -1)
    await handler.handle_error(TypeError("bug"))
    assert seen == [
        ("all", "ConnectionError"), ("sync", "ConnectionError"), ("transient", "ConnectionError"),
        ("all", "TypeError"), ("sync", "TypeError"), ("high", "TypeError"),
    ]
    stats = handler.stats
    assert (stats.total_errors, stats.transient_errors, stats.permanent_errors) == (2, 1, 1)
    assert stats.retried_errors == 1
    assert stats.errors_by_type == {
        "ConnectionError": 1, "TypeError": 1,
    }
    assert handler.total_errors == 2
    assert len(handler.recent_errors) == 2
    assert not handler.should_continue()
    assert handler.should_retry(ConnectionError())
    assert not handler.should_retry(ValueError())
    health = handler.get_health_status()
    assert health["healthy"]
    assert health["recent_error_count"] == 2
    assert health["warnings"] == ["Approaching error limit: 2/2"]
    await handler.clear_stats()
    assert handler.total_errors == 0
    assert len(handler.recent_errors) == 0


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    registry = ErrorHandlerRegistry()
    seen: list[str] = []

    async def broken(info: ErrorInfo) -> None:
        raise RuntimeError("callback bug")

    async def fine(info: ErrorInfo) -> None:
        seen.append(info.error_message)

    registry.register(broken)
    registry.register_for_category(ErrorCategory.APPLICATION, fine)
    registry.register_for_severity(ErrorSeverity.MEDIUM, fine)
    handler = SubscriptionErrorHandler("orders", callbacks=registry)
    await handler.handle_error(ValueError("bad"))
    assert seen == ["bad", "bad"]
    registry.clear()
    await handler.handle_error(ValueError("again"))
    assert seen == ["bad", "bad"]


# -- group 14: shutdown coordinator ------------------------------------------------------


async def test_shutdown_runs_the_phases_in_order_with_hooks() -> None:
    coordinator = ShutdownCoordinator(timeout=5, checkpoint_interval=0)
    steps: list[str] = []
    results: list[ShutdownResult] = []

    async def pre() -> None:
        steps.append(f"pre:{coordinator.phase.value}")

    async def stop() -> None:
        steps.append(f"stop:{coordinator.phase.value}")

    async def drain() -> int:
        steps.append(f"drain:{coordinator.phase.value}")
        return 7

    async def checkpoint() -> int:
        steps.append(f"checkpoint:{coordinator.phase.value}")
        return 2

    async def close() -> None:
        steps.append("close")

    async def post(result: ShutdownResult) -> None:
        results.append(result)

    coordinator.on_pre_shutdown(pre, timeout=1)
    coordinator.on_post_shutdown(post)
    coordinator.set_in_flight_count(9)
    coordinator.request_shutdown()
    assert coordinator.is_shutting_down
    assert coordinator.reason == ShutdownReason.PROGRAMMATIC
    result = await coordinator.shutdown(stop, drain, checkpoint, close)
    assert steps == ["pre:running", "stop:stopping", "drain:draining",
                     "checkpoint:checkpointing", "close"]
    assert coordinator.phase is ShutdownPhase.STOPPED
    assert results == [result]
    assert (result.events_drained, result.checkpoints_saved, result.events_not_drained) == (7, 2, 2)
    assert not result.forced
    assert result.reason == ShutdownReason.PROGRAMMATIC
    assert result.to_dict()["phase"] == "stopped"


async def test_a_drain_over_its_time_forces_the_shutdown_but_checkpoints() -> None:
    coordinator = ShutdownCoordinator(timeout=5, drain_timeout=0.05, checkpoint_interval=0.01)
    saved: list[int] = []

    async def stop() -> None:
        pass

    async def drain() -> int:
        await asyncio.sleep(10)
        return 1

    async def checkpoint() -> int:
        saved.append(1)
        return 1

    result = await coordinator.shutdown(stop, drain, checkpoint)
    assert result.forced
    assert result.phase is ShutdownPhase.FORCED
    assert coordinator.is_forced
    assert result.reason == ShutdownReason.TIMEOUT
    assert len(saved) >= 2
    assert result.checkpoints_saved == len(saved)


async def test_hooks_that_fail_or_hang_do_not_stop_the_shutdown() -> None:
    coordinator = ShutdownCoordinator()

    async def hangs() -> None:
        await asyncio.sleep(10)

    async def fails() -> None:
        raise RuntimeError("hook bug")

    async def stop() -> None:
        pass

    coordinator.on_pre_shutdown(hangs, timeout=0.01)
    coordinator.on_pre_shutdown(fails)
    assert (await coordinator.shutdown(stop)).phase is ShutdownPhase.STOPPED
    with pytest.raises(InvalidHandlerError):
        coordinator.on_pre_shutdown(lambda: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(ValueError, match="timeout"):
        coordinator.on_pre_shutdown(stop, timeout=0)


async def test_signals_request_then_force_the_shutdown() -> None:
    coordinator = ShutdownCoordinator()
    called = asyncio.Event()

    async def on_signal() -> None:
        called.set()

    coordinator.on_shutdown(on_signal)
    coordinator.register_signals()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(coordinator.wait_for_shutdown(), 5)
        await asyncio.wait_for(called.wait(), 5)
        assert coordinator.reason == ShutdownReason.SIGNAL_SIGTERM
        assert coordinator.phase is ShutdownPhase.RUNNING
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100):
            if coordinator.is_forced:
                break
            await asyncio.sleep(0.01)
        assert coordinator.is_forced
        assert coordinator.reason == ShutdownReason.DOUBLE_SIGNAL
    finally:
        coordinator.unregister_signals()
    assert coordinator.remove_callback(on_signal)
    assert not coordinator.remove_callback(on_signal)


def test_results_compare_with_reasons_as_strings() -> None:
    result = ShutdownResult(ShutdownPhase.STOPPED, 0.1, 1, 0, reason=ShutdownReason.HEALTH_CHECK)
    assert replace(result, reason="health_check") == result
