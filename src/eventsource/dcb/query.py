"""The vocabulary of dynamic consistency boundaries: tags, queries, tokens and conditions.

A *tag* is a string such as `"course:c1"`. An event carries the tags its class declares
(`dcb_tags`, templates filled from the event's fields) plus any given when it is appended.

A `Query` is an OR of `QueryItem`s; an item matches an event whose type is one of the item's
`types` (any type when none are given) AND which carries every one of the item's `tags`.
`matches` is the reference matcher every backend agrees with (the property tests hold each
backend to it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventsource.dcb.exceptions import ForeignTokenError, InvalidQueryError, InvalidTagError
from eventsource.events.base import DomainEvent

__all__ = [
    "AppendCondition",
    "ConsistencyToken",
    "Query",
    "QueryItem",
    "Tagged",
    "TaggedEvents",
    "check_tags",
    "tags_of",
]


def check_tags(tags: object, where: str) -> frozenset[str]:
    """`tags` as a frozenset after checking each is a non-empty str without NUL."""
    if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        raise InvalidTagError(f"{where}: tags must be a collection of str, got {tags!r:.100}")
    checked = frozenset(tags)
    for tag in checked:
        if not isinstance(tag, str):
            raise InvalidTagError(
                f"{where}: every tag must be a str, got {type(tag).__name__} {tag!r:.100}"
            )
        if not tag or "\x00" in tag:
            raise InvalidTagError(f"{where}: a tag must be non-empty and hold no NUL: {tag!r}")
    return checked


@dataclass(frozen=True, slots=True, init=False)
class QueryItem:
    """Events of any of `types` (every type when empty) that carry all of `tags`."""

    types: frozenset[str]
    tags: frozenset[str]

    def __init__(self, types: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        if isinstance(types, str):
            types = (types,)
        checked_types = frozenset(types)
        for name in checked_types:
            if not isinstance(name, str) or not name:
                raise InvalidQueryError(f"an event type must be a non-empty str, got {name!r}")
        checked_tags = check_tags(tags, "QueryItem")
        if not checked_types and not checked_tags:
            raise InvalidQueryError(
                "a QueryItem needs event types or tags (an empty one would match every event)"
            )
        object.__setattr__(self, "types", checked_types)
        object.__setattr__(self, "tags", checked_tags)

    def matches(self, event_type: str, tags: Collection[str]) -> bool:
        """Whether an event of `event_type` carrying `tags` matches this item."""
        return (not self.types or event_type in self.types) and self.tags.issubset(tags)


@dataclass(frozen=True, slots=True, init=False)
class Query:
    """An OR of items; at least one. `Query(QueryItem(...), ...)`."""

    items: tuple[QueryItem, ...]

    def __init__(self, *items: QueryItem) -> None:
        if not items:
            raise InvalidQueryError("a Query needs at least one QueryItem")
        for item in items:
            if not isinstance(item, QueryItem):
                raise InvalidQueryError(f"Query items must be QueryItem, got {item!r:.100}")
        object.__setattr__(self, "items", tuple(dict.fromkeys(items)))

    def matches(self, event_type: str, tags: Collection[str]) -> bool:
        """The reference matcher: whether any item matches."""
        return any(item.matches(event_type, tags) for item in self.items)

    @property
    def type_only_types(self) -> frozenset[str]:
        """The event types of the items without tags (each matches by type alone)."""
        return frozenset(t for item in self.items if not item.tags for t in item.types)

    @property
    def tagged_items(self) -> tuple[QueryItem, ...]:
        """The items with tags."""
        return tuple(item for item in self.items if item.tags)


@dataclass(frozen=True, slots=True)
class ConsistencyToken:
    """What a `read` saw, to pass back as `AppendCondition(after=...)`: the issuing store's
    identity and a backend-specific mark (a position, or a PostgreSQL snapshot)."""

    store: str
    mark: str

    def mark_for(self, store: str) -> str:
        """The mark, after checking the token is `store`'s."""
        if self.store != store:
            raise ForeignTokenError(
                f"this token was issued by store {self.store!r}, not by {store!r}: read from "
                "the store you append to"
            )
        return self.mark


@dataclass(frozen=True, slots=True)
class AppendCondition:
    """Fail the append if any event matching `query` is stored that the read which returned
    `after` had not seen (`after=None`: fail if any matching event is stored at all)."""

    query: Query
    after: ConsistencyToken | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.query, Query):
            raise InvalidQueryError(
                f"AppendCondition.query must be a Query, got {self.query!r:.100}"
            )
        if self.after is not None and not isinstance(self.after, ConsistencyToken):
            raise ForeignTokenError(f"not a ConsistencyToken: {self.after!r:.100}")


@dataclass(frozen=True, slots=True)
class Tagged:
    """An event with tags of its own, beyond those its class derives (`dcb_tags`)."""

    event: DomainEvent
    tags: frozenset[str] = field(default_factory=frozenset)


TaggedEvents = tuple[tuple[DomainEvent, frozenset[str]], ...]

_templates: dict[type[DomainEvent], tuple[str, ...]] = {}


def tags_of(event: DomainEvent | Tagged) -> frozenset[str]:
    """An event's tags: its class's `dcb_tags` templates filled from its fields
    (`"course:{course_id}"`), plus a `Tagged` wrapper's own."""
    extra: frozenset[str] = frozenset()
    if isinstance(event, Tagged):
        extra = check_tags(event.tags, f"tags of {event.event.event_type}")
        event = event.event
    if not isinstance(event, DomainEvent):
        raise TypeError(f"expected a DomainEvent or Tagged, got {type(event).__name__}")
    cls = type(event)
    templates = _templates.get(cls)
    if templates is None:
        declared: Any = getattr(cls, "dcb_tags", ())
        templates = _templates[cls] = tuple(check_tags(declared, f"{cls.__name__}.dcb_tags"))
    if not templates:
        return extra
    values: Mapping[str, Any] = {name: getattr(event, name) for name in cls.model_fields}
    derived = frozenset(template.format_map(values) for template in templates)
    return extra | check_tags(derived, f"tags derived for {event.event_type}")


def split(events: Iterable[DomainEvent | Tagged]) -> TaggedEvents:
    """Checked (event, tags) pairs for an append; a non-empty list."""
    pairs = tuple((e.event if isinstance(e, Tagged) else e, tags_of(e)) for e in events)
    if not pairs:
        raise ValueError("append needs at least one event")
    return pairs

