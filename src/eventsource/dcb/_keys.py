"""What a query and a batch send to a backend: the query as arrays, and the lock keys."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from eventsource.dcb.query import AppendCondition, Query, TaggedEvents

__all__ = ["lock_keys", "query_arrays"]


def query_arrays(query: Query) -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    """(want_tags, want_items, kind_types, kind_items, type_only): see `_sql.dcb_postgresql`."""
    want_tags: list[str] = []
    want_items: list[int] = []
    kind_types: list[str] = []
    kind_items: list[int] = []
    for index, item in enumerate(query.tagged_items):
        for tag in sorted(item.tags):
            want_tags.append(tag)
            want_items.append(index)
        for name in sorted(item.types):
            kind_types.append(name)
            kind_items.append(index)
    return want_tags, want_items, kind_types, kind_items, sorted(query.type_only_types)


@lru_cache(maxsize=65536)  # a decision locks the tags it read: hashed once, not per append
def _key(kind: str, name: str) -> int:
    digest = hashlib.blake2b(f"eventsource.dcb.{kind}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(
    events: TaggedEvents, condition: AppendCondition | None
) -> tuple[list[int], list[bool]]:
    """The advisory locks an append takes, sorted by key (so two appends never wait for each
    other in a cycle), each exclusive or shared.

    Exclusive: the condition's semantic keys, every tag of each tagged item and the types of
    each type-only item. Shared: each appended event's tags and type. An event matching an
    item carries all the item's tags (or has one of a type-only item's types), so its writer
    asks for a key the checker holds exclusively: the two never overlap. Writers alone share.
    """
    modes: dict[int, bool] = {}
    for event, tags in events:
        modes[_key("type", event.event_type)] = False
        for tag in tags:
            modes[_key("tag", tag)] = False
    if condition is not None:
        for item in condition.query.items:
            if item.tags:
                for tag in item.tags:
                    modes[_key("tag", tag)] = True
            else:
                for name in item.types:
                    modes[_key("type", name)] = True
    keys = sorted(modes)
    return keys, [modes[key] for key in keys]
