"""`import eventsource` needs only pydantic: checked in a child interpreter where every optional
driver is made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = {"sqlalchemy", "asyncpg", "aiosqlite", "redis", "aio_pika", "aiokafka", "nats",
               "opentelemetry", "pytest", "hypothesis"}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import eventsource
    from eventsource.exceptions import SQLiteNotAvailableError

    for name in sorted(eventsource._EXPORTS):
        getattr(eventsource, name)
    assert eventsource.SQLITE_AVAILABLE is False
    assert not hasattr(eventsource, "SQLiteEventStore")
    try:
        eventsource.RedisEventBus()
    except eventsource.RedisNotAvailableError as exc:
        assert isinstance(exc, ImportError) and "eventsource-py[redis]" in str(exc)
    else:
        raise AssertionError("RedisEventBus() built without redis")
    from eventsource.stores.sqlite import SQLiteEventStore
    try:
        SQLiteEventStore(":memory:")
    except SQLiteNotAvailableError as exc:
        assert "eventsource-py[sqlite]" in str(exc)
    else:
        raise AssertionError("SQLiteEventStore() built without aiosqlite")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert loaded == [], loaded
    print("ok")
    """
)


def test_core_imports_without_any_driver() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
