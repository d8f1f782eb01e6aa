"""Issue 12 item 10: an append to an SQLite database whose file was deleted, moved or replaced
since the store opened it fails typed, naming the path, and nothing is acknowledged.

SQLite keeps writing to the file it holds open; in WAL mode it never needs to create a file, so
before this check appends were acknowledged into a file nobody could open again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pytest

from eventsource import DomainEvent, register_event
from eventsource.exceptions import DatabaseFileChangedError, EventStoreError
from eventsource.stores.sqlite import SQLiteEventStore


@register_event
class FileTick(DomainEvent):
    event_type: str = "FileTick"
    aggregate_type: str = "FileClock"


def _delete_directory(path: Path) -> None:
    shutil.rmtree(path.parent)


def _replace_file(path: Path) -> None:
    other = path.with_name("other.db")
    shutil.copyfile(path, other)
    os.replace(other, path)


def _move_file(path: Path) -> None:
    path.rename(path.with_name("moved.db"))


@pytest.mark.parametrize("change", [_delete_directory, _replace_file, _move_file])
@pytest.mark.parametrize(("wal_mode", "inline"), [(True, True), (True, False), (False, True)])
async def test_append_to_a_changed_database_file_fails_typed(
    tmp_path: Path, change: Callable[[Path], None], wal_mode: bool, inline: bool
) -> None:
    path = tmp_path / "data" / "events.db"
    path.parent.mkdir()
    clock = uuid4()
    async with SQLiteEventStore(str(path), wal_mode=wal_mode, inline=inline) as store:
        await store.initialize()
        await store.append_events(clock, "FileClock", [FileTick(aggregate_id=clock)], 0)
        change(path)
        for expected in (1, 1):  # and again: the store does not forget
            with pytest.raises(DatabaseFileChangedError) as caught:
                await store.append_events(
                    clock, "FileClock", [FileTick(aggregate_id=clock)], expected
                )
            assert isinstance(caught.value, EventStoreError)
            assert str(path) in str(caught.value)
            assert caught.value.path == str(path)
        assert await store.get_stream_version(clock, "FileClock") == 1  # nothing written


async def test_an_unchanged_file_reached_through_another_path_is_fine(tmp_path: Path) -> None:
    """The check compares files, not spellings of their path."""
    (tmp_path / "data").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "data")
    clock = uuid4()
    async with SQLiteEventStore(str(link / "events.db")) as store:
        await store.initialize()
        for version in range(3):
            await store.append_events(clock, "FileClock", [FileTick(aggregate_id=clock)], version)
        assert await store.get_stream_version(clock, "FileClock") == 3
