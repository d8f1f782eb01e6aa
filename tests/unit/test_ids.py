"""Event ids: random version-4 UUIDs, unique across threads and forked processes."""

from __future__ import annotations

import os
import sys
import threading
from uuid import UUID

import pytest

from eventsource._ids import new_uuid4


def test_ids_are_rfc_4122_version_4() -> None:
    ids = [new_uuid4() for _ in range(1000)]
    assert all(isinstance(i, UUID) and i.version == 4 for i in ids)
    assert all(i.variant == "specified in RFC 4122" for i in ids)
    assert all(UUID(str(i)) == i for i in ids)
    assert len(set(ids)) == len(ids)


def test_threads_never_share_an_id() -> None:
    results: list[list[UUID]] = []
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:

        def mint() -> None:
            results.append([new_uuid4() for _ in range(20_000)])

        threads = [threading.Thread(target=mint) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    every = [i for batch in results for i in batch]
    assert len(set(every)) == len(every) == 8 * 20_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_the_parent_ids() -> None:
    new_uuid4()  # fill the parent's buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, "".join(str(new_uuid4()) for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    child = {text[i : i + 36] for i in range(0, len(text), 36)}
    parent = {str(new_uuid4()) for _ in range(50)}
    assert len(child) == 50
    assert child.isdisjoint(parent)
