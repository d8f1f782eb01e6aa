"""Broker reachability for tests, like `require_postgres`: skip locally, FAIL under CI.

Redis: `EVENTSOURCE_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0). Probes are synchronous
so they work from async fixtures too.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

REDIS_URL = os.environ.get("EVENTSOURCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_HINT = (
    "Redis is not reachable at {url}: start it with `redis-server --daemonize yes` "
    "(or `service redis-server start`), or set EVENTSOURCE_TEST_REDIS_URL"
)

_problems: dict[str, str | None] = {}


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


def _require(name: str, url: str, probe: Callable[[str], str | None]) -> str:
    """`url` once `probe` found the server; otherwise skip, or fail under CI."""
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
