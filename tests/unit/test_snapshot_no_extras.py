"""The snapshot package without drivers: importable, `SQLITE_AVAILABLE` false, and the SQL stores
refuse to be built with the documented errors (checked in a child interpreter)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = {"sqlalchemy", "asyncpg", "aiosqlite"}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import eventsource.snapshots as snapshots

    assert sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED) == []
    assert snapshots.SQLITE_AVAILABLE is False
    try:
        snapshots.SQLiteSnapshotStore(":memory:")
    except snapshots.SQLiteNotAvailableError as exc:
        assert isinstance(exc, ImportError) and "eventsource-py[sqlite]" in str(exc)
    else:
        raise AssertionError("SQLiteSnapshotStore built without aiosqlite")
    try:
        snapshots.PostgreSQLSnapshotStore(object())
    except ImportError as exc:
        assert "postgresql" in str(exc)
    else:
        raise AssertionError("PostgreSQLSnapshotStore built without SQLAlchemy")
    print("ok")
    """
)


def test_snapshot_stores_without_drivers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
