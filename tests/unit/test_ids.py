"""Ids: time-ordered version-7 UUIDs for events, random version-4 ones for the rest; unique
across threads and forked processes."""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable
from uuid import UUID

import pytest

from eventsource._ids import new_uuid4, new_uuid7
from eventsource.events.base import DomainEvent


def test_ids_are_rfc_4122_version_4() -> None:
    ids = [new_uuid4() for _ in range(1000)]
    assert all(isinstance(i, UUID) and i.version == 4 for i in ids)
    assert all(i.variant == "specified in RFC 4122" for i in ids)
    assert all(UUID(str(i)) == i for i in ids)
    assert len(set(ids)) == len(ids)


def test_event_ids_are_rfc_9562_version_7_in_time_order() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_uuid7() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert all(i.version == 7 and i.variant == "specified in RFC 4122" for i in ids)
    assert all(before <= i.int >> 80 <= after for i in ids)  # the Unix time in milliseconds
    assert len(set(ids)) == len(ids)
    # Ids made a millisecond apart are ordered, as numbers and as the text the stores index.
    first = new_uuid7()
    time.sleep(0.002)
    second = new_uuid7()
    assert first < second
    assert str(first) < str(second)
    # Within a millisecond the 12-bit fraction keeps them (almost always) in order too.
    in_order = sum(a < b for a, b in itertools.pairwise(ids))
    assert in_order > 0.9 * (len(ids) - 1)


def test_events_get_version_7_ids_and_random_correlation_ids() -> None:
    class Happened(DomainEvent):
        event_type: str = "IdsHappened"
        aggregate_type: str = "Ids"

    event = Happened(aggregate_id=new_uuid4())
    assert event.event_id.version == 7
    assert event.correlation_id.version == 4


@pytest.mark.parametrize("mint", [new_uuid4, new_uuid7])
def test_threads_never_share_an_id(mint: Callable[[], UUID]) -> None:
    results: list[list[UUID]] = []
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:

        def take() -> None:
            results.append([mint() for _ in range(20_000)])

        threads = [threading.Thread(target=take) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    every = [i for batch in results for i in batch]
    assert len(set(every)) == len(every) == 8 * 20_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("mint", [new_uuid4, new_uuid7])
def test_a_forked_child_does_not_repeat_the_parent_ids(mint: Callable[[], UUID]) -> None:
    mint()  # fill the parent's buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, "".join(str(mint()) for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    child = {text[i : i + 36] for i in range(0, len(text), 36)}
    parent = {str(mint()) for _ in range(50)}
    assert len(child) == 50
    assert child.isdisjoint(parent)
