"""The one backoff policy and retry loop (`eventsource._retry`), and the policies built on it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsource._retry import Backoff, Pauses, backoff_delay, retry
from eventsource.bus._kafka_config import KafkaEventBusConfig
from eventsource.bus._nats_config import NATSEventBusConfig
from eventsource.bus._rabbitmq_config import RabbitMQEventBusConfig
from eventsource.projections.retry import ExponentialBackoffRetryPolicy
from eventsource.subscriptions.retry import RetryConfig, calculate_backoff

seconds = st.floats(min_value=0.001, max_value=1000.0)
attempts = st.integers(min_value=0, max_value=5000)
jitters = st.floats(min_value=0.0, max_value=1.0)
bases = st.floats(min_value=1.01, max_value=10.0)


@given(attempts, seconds, seconds, bases, jitters)
def test_a_delay_stays_within_zero_and_the_cap_plus_its_jitter(
    attempt: int, initial: float, cap: float, base: float, jitter: float
) -> None:
    delay = backoff_delay(attempt, initial, cap, base, jitter)
    assert 0.0 <= delay <= cap * (1 + jitter) * (1 + 1e-12)


@given(attempts, seconds, seconds, bases)
def test_without_jitter_delays_never_shrink_and_reach_the_cap(
    attempt: int, initial: float, cap: float, base: float
) -> None:
    now = backoff_delay(attempt, initial, cap, base)
    assert now <= backoff_delay(attempt + 1, initial, cap, base)
    assert now == min(initial * base**attempt, cap) if attempt < 50 else now <= cap
    assert backoff_delay(10_000, initial, cap, base) == cap  # huge attempts do not overflow


@given(attempts, seconds, seconds, jitters)
def test_jitter_spreads_around_the_plain_delay(
    attempt: int, initial: float, cap: float, jitter: float
) -> None:
    plain = backoff_delay(attempt, initial, cap)
    spread = backoff_delay(attempt, initial, cap, jitter=jitter)
    assert plain * (1 - jitter) - 1e-9 <= spread <= plain * (1 + jitter) + 1e-9


@given(st.integers(min_value=0, max_value=60))
def test_the_public_policies_keep_their_attempt_numbering(attempt: int) -> None:
    # subscriptions: 0-based; projections: 0-based, 2 s doubling, no jitter by default;
    # brokers: after n failures (1-based), doubling from retry_base_delay.
    config = RetryConfig(initial_delay=0.5, max_delay=30.0, jitter=0.0)
    assert calculate_backoff(attempt, config) == min(0.5 * 2.0**attempt, 30.0)
    assert ExponentialBackoffRetryPolicy().get_backoff(attempt) == min(2.0 * 2**attempt, 60.0)
    failures = attempt + 1
    nats = NATSEventBusConfig(retry_base_delay=0.5, retry_max_delay=30.0)
    assert nats.retry_delay(failures) == min(0.5 * 2.0**attempt, 30.0)
    for config_class in (RabbitMQEventBusConfig, KafkaEventBusConfig):
        broker = config_class(retry_base_delay=0.5, retry_max_delay=30.0, retry_jitter=0.0)
        assert broker.retry_delay(failures) == nats.retry_delay(failures)
    assert nats.retry_delay(0) == nats.retry_delay(1) == 0.5


def test_broker_jitter_stays_in_its_range() -> None:
    random.seed(7)
    config = RabbitMQEventBusConfig(retry_base_delay=1.0, retry_jitter=0.25)
    delays = [config.retry_delay(3) for _ in range(200)]
    assert all(3.0 <= d <= 5.0 for d in delays)
    assert len(set(delays)) > 1


def test_pauses_grow_and_reset() -> None:
    pauses = Pauses(Backoff(0.05, 0.3))
    assert [pauses.next() for _ in range(4)] == [0.05, 0.1, 0.2, 0.3]
    pauses.reset()
    assert pauses.next() == 0.05


async def test_retry_runs_until_success_pausing_per_attempt() -> None:
    slept: list[float] = []
    seen: list[tuple[int, str, float]] = []
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"down {calls}")
        return "up"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = await retry(
        flaky,
        attempts=5,
        backoff=Backoff(1.0, 10.0),
        retry_on=(ConnectionError,),
        on_retry=lambda n, error, pause: seen.append((n, str(error), pause)),
        sleep=sleep,
    )
    assert (result, calls, slept) == ("up", 3, [1.0, 2.0])
    assert seen == [(0, "down 1", 1.0), (1, "down 2", 2.0)]


async def test_retry_gives_up_with_the_last_error_and_never_retries_others() -> None:
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(str(calls))

    async def no_sleep(_seconds: float) -> None:
        return None

    with pytest.raises(ConnectionError, match=r"^3$"):
        await retry(
            failing, attempts=3, backoff=Backoff(1, 1), retry_on=(ConnectionError,), sleep=no_sleep
        )
    calls = 0
    with pytest.raises(ConnectionError, match=r"^1$"):
        await retry(failing, attempts=3, backoff=Backoff(1, 1), retry_on=(TimeoutError,))
    assert calls == 1
