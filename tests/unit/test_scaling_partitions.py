"""Partition assignment, fair shares and cursor order of `eventsource.scaling` (no database)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsource.events.base import DomainEvent
from eventsource.scaling import PartitionedWorker, ScalingConfigurationError, partition_of
from eventsource.scaling.leases import fair_share
from eventsource.scaling.partitions import cursor_key, cursor_position
from eventsource.scaling.worker import _Held
from eventsource.stores.records import CommittedPage, StoredEvent
from extras import import_extra

ONE = uuid.UUID("00000000-0000-0000-0000-000000000001")
OTHER = uuid.UUID("6f1c0f4e-2a55-4c1e-9a7e-0d3c5b8e9f10")


def test_partition_of_is_pinned_so_it_never_changes_between_releases() -> None:
    assert [partition_of(ONE, 16), partition_of(ONE, 7)] == [2, 4]
    assert [partition_of(OTHER, 16), partition_of(OTHER, 7)] == [9, 3]


def test_partition_of_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = f"import uuid; from eventsource.scaling import partition_of; " \
           f"print(partition_of(uuid.UUID('{OTHER}'), 16))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "12345"}, check=True)
    assert out.stdout.strip() == str(partition_of(OTHER, 16))


@given(st.uuids(), st.integers(min_value=1, max_value=4096))
def test_partition_of_is_in_range_and_deterministic(stream: uuid.UUID, partitions: int) -> None:
    p = partition_of(stream, partitions)
    assert 0 <= p < partitions
    assert partition_of(uuid.UUID(str(stream)), partitions) == p


def test_partition_of_refuses_no_partitions() -> None:
    with pytest.raises(ValueError, match="partitions"):
        partition_of(ONE, 0)


@given(st.integers(min_value=1, max_value=256),
       st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=20, unique=True))
def test_fair_shares_cover_every_partition_and_differ_by_at_most_one(
    partitions: int, workers: list[str]
) -> None:
    ordered = sorted(workers)
    shares = [fair_share(partitions, ordered, w) for w in ordered]
    assert sum(shares) == partitions
    assert max(shares) - min(shares) <= 1


def test_a_worker_not_yet_seen_live_counts_itself() -> None:
    assert fair_share(16, ["a"], "b") == 8


@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(1, 2**40)), min_size=2, max_size=2))
def test_cursor_keys_order_like_the_postgresql_commit_order(pair: list[tuple[int, int]]) -> None:
    (t1, p1), (t2, p2) = pair
    assert (cursor_key(f"{t1}:{p1}") < cursor_key(f"{t2}:{p2}")) == ((t1, p1) < (t2, p2))
    assert cursor_position(f"{t1}:{p1}") == p1
    assert cursor_key(None) < cursor_key(f"{t1}:{p1}")
    assert cursor_position("") == 0


@pytest.mark.parametrize(("ttl", "beat"), [(1.0, 1.0), (0.5, 1.0), (1.0, 0.0)])
def test_a_lease_no_longer_than_the_heartbeat_is_refused(ttl: float, beat: float) -> None:
    with pytest.raises(ScalingConfigurationError, match="heartbeat"):
        PartitionedWorker(None, None, "s", _noop, partitions=4,  # type: ignore[arg-type]
                          lease_ttl=ttl, heartbeat=beat)


@pytest.mark.parametrize("partitions", [0, -1, 2.0])
def test_a_partition_count_below_one_is_refused(partitions: int) -> None:
    with pytest.raises(ScalingConfigurationError, match="partitions"):
        PartitionedWorker(None, None, "s", _noop, partitions=partitions)  # type: ignore[arg-type]


async def _noop(events: object) -> None:
    del events



POOL = [uuid.UUID(int=n * 7919 + 1) for n in range(6)]


class Ping(DomainEvent):
    event_type: str = "Ping"
    aggregate_type: str = "Pinger"


@given(
    st.integers(0, 50),
    st.lists(st.sampled_from(POOL), min_size=1, max_size=30),
    st.dictionaries(st.integers(0, 3), st.integers(0, 29), min_size=1),
)
def test_a_page_goes_to_each_partition_from_just_after_its_own_checkpoint(
    start: int, streams: list[uuid.UUID], offsets: dict[int, int]
) -> None:
    """The model: a partition gets the page's events of its streams past its own checkpoint,
    in page order, whether it stands at the page's start or inside the page."""
    page = [
        StoredEvent(Ping(aggregate_id=stream), str(stream), 1, start + i + 1, datetime.now(UTC))
        for i, stream in enumerate(streams)
    ]
    lowest = min(offsets.values())
    checkpoints = {  # positions inside the page; the lowest is where the reader started
        p: start + min(offset, len(page) - 1) - min(lowest, len(page) - 1)
        for p, offset in offsets.items()
    }
    reader_at = min(checkpoints.values())
    targets = {p: _Held(1, str(c) if c else None, c) for p, c in checkpoints.items()}
    engines: Any = import_extra("sqlalchemy.ext.asyncio")  # the core run has no SQLAlchemy
    worker = PartitionedWorker(
        None, engines.create_async_engine("sqlite+aiosqlite://"), "s", _noop,  # type: ignore[arg-type]
        partitions=4,
    )
    chosen = worker._select(CommittedPage(page, str(start + len(page))),
                            str(reader_at) if reader_at else None, targets)
    assert chosen == [
        s for s in page
        if (p := partition_of(s.aggregate_id, 4)) in targets and s.global_position > checkpoints[p]
    ]
