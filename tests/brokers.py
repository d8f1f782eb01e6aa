"""Broker reachability for tests, like `require_postgres`: skip locally, FAIL under CI.

Redis: `EVENTSOURCE_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0). Probes are synchronous
so they work from async fixtures too.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from extras import require_extra

REDIS_URL = os.environ.get("EVENTSOURCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_HINT = (
    "Redis is not reachable at {url}: start it with `redis-server --daemonize yes` "
    "(or `service redis-server start`), or set EVENTSOURCE_TEST_REDIS_URL"
)

_problems: dict[str, str | None] = {}

# What a redis client without `decode_responses` returns from XRANGE (its stubs allow more).
RedisEntries = list[tuple[bytes, dict[bytes, bytes]]]


def redis_text(value: object) -> str:
    """A value read by a redis client without `decode_responses` (bytes), as text."""
    assert isinstance(value, bytes), value
    return value.decode()


def _redis_problem(url: str) -> str | None:
    try:
        import redis
    except ImportError:
        return "redis is not installed (pip install -e '.[dev,redis]')"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{REDIS_HINT.format(url=url)} ({exc})"
    return None


_DRIVERS = {"redis": "redis", "nats": "nats", "rabbitmq": "aio_pika", "kafka": "aiokafka"}


def _require(name: str, url: str, probe: Callable[[str], str | None]) -> str:
    """`url` once `probe` found the server; otherwise skip, or fail under CI."""
    require_extra(_DRIVERS[name])
    if name not in _problems:
        _problems[name] = probe(url)
    problem = _problems[name]
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    return url


def require_redis() -> str:
    """The Redis URL, after checking the server once per session."""
    return _require("redis", REDIS_URL, _redis_problem)


NATS_URL = os.environ.get("EVENTSOURCE_TEST_NATS_URL", "nats://127.0.0.1:4222")
NATS_HINT = (
    "NATS with JetStream is not reachable at {url}: start it with `start-stop-daemon --start "
    "--oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js "
    "-sd /var/lib/nats-server` (or `nats-server -js`), or set EVENTSOURCE_TEST_NATS_URL"
)


def _nats_problem(url: str) -> str | None:
    """Connect and ask for the JetStream account info: a server without -js fails here."""
    try:
        import nats
    except ImportError:
        return "nats-py is not installed (pip install -e '.[dev,nats]')"
    import asyncio

    async def probe() -> None:
        client = await nats.connect(
            url, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False
        )
        try:
            await client.jetstream().account_info()
        finally:
            await client.close()

    def run() -> None:  # in a thread of its own: the caller may be inside a running loop
        asyncio.run(asyncio.wait_for(probe(), 10))

    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(run).result()
    except Exception as exc:
        return f"{NATS_HINT.format(url=url)} ({type(exc).__name__}: {exc})"
    return None


def require_nats() -> str:
    """The NATS URL, after checking the server (with JetStream) once per session."""
    return _require("nats", NATS_URL, _nats_problem)


KAFKA_BOOTSTRAP_VAR = "EVENTSOURCE_TEST_KAFKA_BOOTSTRAP"


def require_kafka() -> str:
    """The Kafka bootstrap servers from `EVENTSOURCE_TEST_KAFKA_BOOTSTRAP`; without it the test
    is skipped, in CI too: no Kafka broker can be installed on the CI machine."""
    bootstrap = os.environ.get(KAFKA_BOOTSTRAP_VAR)
    if not bootstrap:
        pytest.skip(
            f"no Kafka broker: set {KAFKA_BOOTSTRAP_VAR}=host:port to run the Kafka bus tests "
            "(none can be installed on this machine, so this skip is allowed under CI)"
        )
    return bootstrap
# RabbitMQ: `EVENTSOURCE_TEST_RABBITMQ_URL` (default amqp://guest:guest@127.0.0.1:5672/).
RABBITMQ_URL = os.environ.get("EVENTSOURCE_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_HINT = (
    "RabbitMQ is not reachable at {url}: start it with `rabbitmq-server -detached` "
    "(it takes ~20-40 s to accept connections), or set EVENTSOURCE_TEST_RABBITMQ_URL"
)


def _rabbitmq_problem(url: str) -> str | None:
    try:
        import aio_pika
    except ImportError:
        return "aio-pika is not installed (pip install -e '.[dev,rabbitmq]')"
    import asyncio
    import threading

    async def probe() -> None:
        connection = await aio_pika.connect(url, timeout=5)
        await connection.close()

    errors: list[Exception] = []

    def run() -> None:
        try:
            asyncio.run(probe())
        except Exception as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=run)  # a loop of its own, even from inside a running one
    thread.start()
    thread.join()
    if errors:
        return f"{RABBITMQ_HINT.format(url=url)} ({errors[0]!r})"
    return None


def require_rabbitmq() -> str:
    """The RabbitMQ URL, after checking the broker once per session."""
    return _require("rabbitmq", RABBITMQ_URL, _rabbitmq_problem)
