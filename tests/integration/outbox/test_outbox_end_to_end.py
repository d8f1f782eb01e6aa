"""End to end through real brokers (issue 6, acceptance 3): aggregates saved through an
`AggregateRepository` into a PostgreSQL store with its outbox enabled, an `OutboxRelay`
publishing to Redis / RabbitMQ / NATS (and Kafka when EVENTSOURCE_TEST_KAFKA_BOOTSTRAP names
one), and a projection in another process building its read model in an SQLite file from what
it consumes. Every event must be projected, each account's events in order.

The relay is started before the aggregates are saved, so it publishes while they are written.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import uuid4

import pytest
from outbox_brokers import Broker
from outbox_support import Account, Outboxed, backend_env

from brokers import require_kafka, require_nats, require_rabbitmq, require_redis
from eventsource.aggregates.repository import AggregateRepository

HERE = Path(__file__).parent
ACCOUNTS, DEPOSITS = 8, 12
REQUIRE = {
    "redis": require_redis,
    "rabbitmq": require_rabbitmq,
    "nats": require_nats,
    "kafka": require_kafka,  # skipped without a broker, in CI too (none can run here)
}


@pytest.fixture(params=list(REQUIRE))
def broker_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, url); checks the broker here (skips, or fails under CI, if it is missing)."""
    return request.param, REQUIRE[request.param]()


@pytest.fixture
async def broker(broker_url: tuple[str, str]) -> AsyncIterator[Broker]:
    kind, url = broker_url
    made = Broker(kind, url, f"outbox-e2e-{uuid.uuid4().hex[:12]}")
    await made.prepare()
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
async def env(pg_url: str, tmp_path: Path) -> AsyncIterator[Outboxed]:
    async with backend_env("postgresql", tmp_path, pg_url) as opened:
        yield opened


def _read_model(path: Path) -> tuple[dict[str, tuple[int, int]], int, int]:
    """(account -> (version, balance), deliveries, gaps) as the projection wrote them."""
    if not path.exists():
        return {}, 0, 0
    with sqlite3.connect(path) as db:
        try:
            accounts = {
                row[0]: (row[1], row[2])
                for row in db.execute("SELECT aggregate_id, version, balance FROM rm_accounts")
            }
            deliveries = db.execute("SELECT count(*) FROM rm_log").fetchone()[0]
            gaps = db.execute("SELECT count(*) FROM rm_gaps").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return {}, 0, 0
    return accounts, deliveries, gaps


@pytest.mark.postgresql
@pytest.mark.slow
async def test_aggregates_reach_a_projection_in_another_process(
    env: Outboxed, broker: Broker, tmp_path: Path
) -> None:
    read_model, ready = tmp_path / "read_model.db", tmp_path / "ready"
    broker.groups.add("projection")  # the child's consumer group: cleaned up with the rest
    child = subprocess.Popen(  # noqa: ASYNC220 - a real process, stopped at the end
        [
            sys.executable, str(HERE / "projection_child.py"), broker.kind, broker.url,
            broker.name, str(read_model), str(ready),
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    publisher = broker.bus()
    try:
        await _until(ready.exists, child, "the projection to subscribe")
        relay = env.relay(publisher, batch_size=20, poll_interval=0.02)
        await relay.start()
        repository = AggregateRepository(env.store, Account, "OutboxAccount", enable_tracing=False)
        ids = [uuid4() for _ in range(ACCOUNTS)]
        for round_ in range(DEPOSITS // 3):  # accounts take turns; saves of 1 to 3 deposits
            for index, account_id in enumerate(ids):
                account = await repository.load_or_create(account_id)
                for _ in range(1 + (round_ + index) % 3):
                    if account.version < DEPOSITS:
                        account.deposit(account.get_next_version())
                await repository.save(account)
        for account_id in ids:  # top up to DEPOSITS each
            account = await repository.load(account_id)
            while account.version < DEPOSITS:
                account.deposit(account.get_next_version())
            await repository.save(account)

        expected = {str(a): (DEPOSITS, DEPOSITS * (DEPOSITS + 1) // 2) for a in ids}
        await _until(lambda: _read_model(read_model)[0] == expected, child, "every event")
        await relay.stop()
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        shutdown = getattr(publisher, "shutdown", None)
        if shutdown is not None:
            await shutdown(timeout=10)
    accounts, deliveries, gaps = _read_model(read_model)
    assert gaps == 0, "an event reached the projection before an earlier one of its account"
    assert accounts == expected
    assert deliveries >= ACCOUNTS * DEPOSITS
    stats = await env.outbox.get_stats()
    assert (stats.pending_count, stats.published_count, stats.failed_count) == (
        0, ACCOUNTS * DEPOSITS, 0
    )


async def _until(check: Callable[[], bool], child: subprocess.Popen[bytes], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 90
    while not check():
        assert child.poll() is None, f"the projection process exited before {what}"
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
