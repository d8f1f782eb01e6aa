"""The codec: events to stored rows and rows back to events, for every backend and broker.

Encoding (`encode_payload(s)`, `check_payloads`) refuses, before any write, an event whose
JSON its reader would not get back. Decoding (`decode_event`, and per page `decode_rows`,
`decode_prefix`, `stored_prefix`) turns a row into its registered class. `_decoder` is the one
place a row becomes an event: upcasting and field decryption plug in there, as encryption
plugs in at `encode_payload`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple, cast

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from eventsource._compat.pydantic import dump_json, json_validator, python_validator
from eventsource._storable_json import json_problem, lone_surrogate
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EVOLUTION_SEEN, EventRegistry, resolve_event_class
from eventsource.evolution._reading import (
    Parts,
    ReadPlan,
    read_plan,
    retired_plan,
)
from eventsource.evolution.upcasting import splits_registered
from eventsource.exceptions import CorruptEventError, EventTypeNotFoundError, SerializationError
from eventsource.personal._hook import personal_decoder, protect_payload
from eventsource.personal.markers import erased_fields, plan_of
from eventsource.stores._payload_plans import doubtful_classes, non_finite_field
from eventsource.stores.records import StoredEvent, make_stored_event
from eventsource.stores.type_converter import TypeConverter

__all__ = [
    "RowLayout",
    "check_payloads",
    "current_shapes",
    "decode_event",
    "decode_prefix",
    "decode_rows",
    "encode_payload",
    "encode_payloads",
    "gc_paused",
    "stored_prefix",
]


def encode_payload(event: DomainEvent) -> str:
    """The event's full JSON dump; SerializationError (before any write) if it has none, or if
    its reader would not get it back (see `eventsource._storable_json`). Fields marked as
    personal data are sealed (`eventsource.personal`)."""
    payload = _checked_dump(event)
    plan = plan_of(type(event))  # personal data: one cached lookup for unmarked classes
    if plan is not None:
        payload = protect_payload(plan, event.event_type, payload, erased_fields(event))
    return payload


def _checked_dump(event: DomainEvent) -> str:
    try:
        payload = dump_json(event)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise SerializationError(event.event_type, str(exc), event.event_id) from exc
    problem = json_problem(payload) or non_finite_field(event)
    if problem is None and not payload.isascii() and "\ufffd" in payload:
        # pydantic writes a lone surrogate in a dict key as U+FFFD: the key would come back
        # changed. (The U+FFFD may as well be the event's own.)
        problem = lone_surrogate(event.__dict__)
    if problem is not None:
        raise SerializationError(event.event_type, problem, event.event_id)
    return payload


def encode_payloads(events: Sequence[DomainEvent], registry: EventRegistry | None) -> list[str]:
    """What a store writes for a batch, all or nothing: each event's `encode_payload`, after
    checking that its type resolves (in `registry`, then the default one) so reads can rebuild
    it; SerializationError naming the event otherwise."""
    _check_types(events, registry)
    return [encode_payload(event) for event in events]


def check_payloads(events: Sequence[DomainEvent], registry: EventRegistry | None) -> None:
    """`encode_payloads`' verdict for a writer that keeps no dump (the in-memory store).

    Dumping costs several times what the in-memory store's append does, so the events of a
    class whose field values surely meet the rule are passed without one (see
    `_payload_plans`); the others are dumped in order, so every refusal, and its message, is
    the dump's."""
    doubtful = doubtful_classes(events)
    _check_types(events, registry)  # after the look above, which brought the events to cache
    if doubtful:
        for event in events:
            if type(event) in doubtful:
                _checked_dump(event)  # kept in memory: nothing to seal


def current_shapes(
    events: Sequence[DomainEvent], registry: EventRegistry | None
) -> Sequence[DomainEvent]:
    """`events`, with any of an older shape than its class (an object of an old class, under an
    old name or version) as a durable store would read it back: for the in-memory store, which
    keeps the objects it is given. Untouched (the same sequence) until upcasters or old names
    exist; a split's source is kept as given (a split is read from rows, not objects)."""
    if not EVOLUTION_SEEN[0]:
        return events
    current: list[DomainEvent] | None = None
    classes: dict[str, type[DomainEvent]] = {}
    for index, event in enumerate(events):
        name = event.event_type
        cls = classes.get(name)
        if cls is None:
            cls = classes[name] = resolve_event_class(name, registry)  # checked: it resolves
        if type(event) is cls:
            continue
        plan = read_plan(name, cls, registry)
        made = plan.decode(encode_payload(event), event.event_id) if plan is not None else event
        if isinstance(made, DomainEvent) and made is not event:
            if current is None:
                current = list(events)
            current[index] = made
    return events if current is None else current


def _check_types(events: Sequence[DomainEvent], registry: EventRegistry | None) -> None:
    if len(events) == 1:  # the single append: no loop
        _check_resolvable(events[0], registry)
        return
    resolved: str | None = None
    for event in events:
        if event.event_type != resolved:  # a batch is mostly one type: look each up once
            _check_resolvable(event, registry)
            resolved = event.event_type


def _check_resolvable(event: DomainEvent, registry: EventRegistry | None) -> None:
    try:
        resolve_event_class(event.event_type, registry)
    except EventTypeNotFoundError as exc:
        raise SerializationError(
            event.event_type,
            f"reads could not rebuild it ({exc}): register {type(event).__qualname__} with "
            "@register_event or in the store's event_registry",
            event.event_id,
        ) from exc


def decode_event(
    event_type: str,
    payload: str | bytes | dict[str, Any],
    registry: EventRegistry | None,
    event_id: object = None,
    converter: TypeConverter | None = None,
) -> DomainEvent:
    """Rebuild a stored event as its registered class (the registry, then the default one).

    pydantic validates straight from the JSON text; a type with upcasters or an old name is
    brought to its class's shape first (`eventsource.evolution`). Any failure raises
    `CorruptEventError` naming the event id and type, so a bad row never surfaces as a bare
    error mid-iteration. One event per payload: a split is read from a store, not decoded alone.
    """
    try:
        cls = resolve_event_class(event_type, registry)
    except EventTypeNotFoundError as exc:
        retired = retired_plan(event_type, registry)  # a split's source, say
        if retired is None:
            raise CorruptEventError(event_id, event_type, f"unknown event type ({exc})") from exc
        return _one(retired, payload, event_id)
    plan = read_plan(event_type, cls, registry, _conversion(cls, converter))
    personal = _personal_decoder(cls, event_type, converter)  # personal data: opens fields
    if personal is not None:
        _refuse_evolving_personal(plan, event_id, event_type)
        return personal(payload, event_id)
    if plan is not None:
        return _one(plan, payload, event_id)
    try:
        if converter is not None and converter.needs_conversion(cls):
            data = json.loads(payload) if not isinstance(payload, dict) else payload
            return cls.model_validate(converter.convert(cls, data))
        if isinstance(payload, dict):
            return cls.model_validate(payload)
        return cls.model_validate_json(payload)
    except (ValidationError, ValueError) as exc:
        raise CorruptEventError(event_id, event_type, str(exc)) from exc


def _one(plan: ReadPlan, payload: Any, event_id: Any) -> DomainEvent:
    """`plan`'s event of a payload that must make one (a message, an outbox row)."""
    made = plan.decode(payload, event_id)
    if isinstance(made, Parts):
        raise CorruptEventError(
            event_id, plan.stored_name, "a split upcaster makes several events of it: read "
            "it from the event store, which delivers the parts"
        )
    return made


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a page of rows becomes events.

    Decoding allocates several container objects per event, none of them cyclic garbage; with
    the collector on, its repeated passes over the growing page cost as much as the decoding
    itself. Callers never await inside, so nothing else on the event loop runs meanwhile.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class RowLayout(NamedTuple):
    """Where a backend's SELECT puts each column a StoredEvent needs."""

    position: int
    event_id: int
    event_type: int
    payload: int
    version: int
    aggregate_id: int
    aggregate_type: int
    stored_at: int


def decode_rows(
    rows: Sequence[Any],
    layout: RowLayout,
    registry: EventRegistry | None,
    converter: TypeConverter | None,
    where: Callable[[Any], str] | None = None,
) -> list[DomainEvent]:
    """A page of rows as events, for every backend; a bad row's error says where it lies."""
    events, corrupt = decode_prefix(rows, layout, registry, converter, where)
    if corrupt is not None:
        raise corrupt
    return events


def decode_prefix(
    rows: Sequence[Any],
    layout: RowLayout,
    registry: EventRegistry | None,
    converter: TypeConverter | None,
    where: Callable[[Any], str] | None = None,
) -> tuple[list[DomainEvent], CorruptEventError | None]:
    """The events of the rows up to the first one that cannot be read, and that row's error
    (None when every row was read), naming its position and keeping its raw payload.

    The same rule as `decode_event`, with the class lookup done once per event type and page:
    a page is mostly a few types, and the lookup costs as much as a small event's validation.
    """
    made, corrupt = _decode_page(rows, layout, registry, converter, where)
    return (_flat(made) if _split_in(made) else made), corrupt  # type: ignore[return-value]


def _decode_page(
    rows: Sequence[Any],
    layout: RowLayout,
    registry: EventRegistry | None,
    converter: TypeConverter | None,
    where: Callable[[Any], str] | None,
) -> tuple[list[DomainEvent | Parts], CorruptEventError | None]:
    """`decode_prefix` with one item per row: a split row's item is its `Parts`."""
    t, p, i = layout.event_type, layout.payload, layout.event_id
    decoders: dict[str, Callable[[Any, Any], DomainEvent | Parts]] = {}
    events: list[DomainEvent | Parts] = []
    add = events.append
    try:
        with gc_paused():
            for row in rows:
                event_type = row[t]
                decode = decoders.get(event_type)
                if decode is None:
                    decode = decoders[event_type] = _decoder(event_type, registry, converter)
                add(decode(row[p], row[i]))
    except CorruptEventError as exc:
        return events, _located(exc, rows[len(events)], layout, where)  # one item per row
    return events, None


def _split_in(items: list[DomainEvent | Parts]) -> bool:
    """Whether a page holds a split (the common page has none: one pass, no copy)."""
    return any(type(item) is Parts for item in items) if splits_registered() else False


def _flat(items: list[DomainEvent | Parts]) -> list[DomainEvent]:
    flat: list[DomainEvent] = []
    for item in items:
        if type(item) is Parts:
            flat.extend(item)
        else:
            flat.append(cast(DomainEvent, item))
    return flat


def _located(
    error: CorruptEventError, row: Any, layout: RowLayout, where: Callable[[Any], str] | None
) -> CorruptEventError:
    """`error` again, with the row's global position (when the read selects it) in its message
    and the row's raw payload."""
    position = row[layout.position] if layout.position >= 0 else None
    located = type(error)(
        error.event_id, error.event_type, error.reason, position, row[layout.payload]
    )
    for name, value in vars(error).items():  # a subclass's own attributes (the upcaster...)
        located.__dict__.setdefault(name, value)
    located.__cause__ = error.__cause__
    if where is not None:
        located.add_note(where(row))
    return located


def _decoder(
    event_type: str, registry: EventRegistry | None, converter: TypeConverter | None
) -> Callable[[Any, Any], DomainEvent | Parts]:
    """`decode_event` for rows of one event type: `(payload, event_id) -> event` (or a split's
    `Parts`). Upcasting is resolved here, once per type and page (see `_evolving`)."""
    try:
        cls = resolve_event_class(event_type, registry)
    except EventTypeNotFoundError:
        retired = retired_plan(event_type, registry)  # a split's source, say
        return retired.decode if retired else partial(_decode_with, event_type, registry, converter)
    convert = _conversion(cls, converter)
    plan = read_plan(event_type, cls, registry, convert)
    personal = _personal_decoder(cls, event_type, converter)  # personal data: opens fields
    if personal is not None:
        _refuse_evolving_personal(plan, None, event_type)
        return personal
    if plan is not None:
        return _evolving(plan, None if convert is not None else _plain(event_type, cls))
    if convert is not None:
        return partial(_decode_with, event_type, registry, converter)
    return _plain(event_type, cls)


def _refuse_evolving_personal(plan: ReadPlan | None, event_id: Any, event_type: str) -> None:
    """Personal fields are sealed under the stored type and field names, and opened before
    validation; upcasting them (which may rename both) is not supported yet: say so rather than
    hand back a sealed field or a half-upcast event."""
    if plan is not None and not plan.plain:
        raise CorruptEventError(
            event_id, event_type, f"{plan.cls.__qualname__ if plan.cls else event_type} has "
            "personal data fields and upcasters or old names: upcasting events with personal "
            "data is not supported yet (docs/personal-data.md)",
        )


def _conversion(
    cls: type[DomainEvent], converter: TypeConverter | None
) -> Callable[[type[DomainEvent], dict[str, Any]], dict[str, Any]] | None:
    return converter.convert if converter is not None and converter.needs_conversion(cls) else None


def _evolving(
    plan: ReadPlan, plain: Callable[[Any, Any], DomainEvent] | None
) -> Callable[[Any, Any], DomainEvent | Parts]:
    """The decoder of a type that takes part in evolution. Rows already at the current
    version go through `plain` (when there is no conversion); the others through the plan
    (`ReadPlan.fast_decoder`)."""
    if plain is None:
        return plan.decode
    current = plan.current
    upgrade = plan.decode
    if plan.plain:  # no upcasters: only a newer stored version needs the plan (to refuse it)

        def checked(payload: Any, event_id: Any) -> DomainEvent | Parts:
            event = plain(payload, event_id)
            return event if event.event_version <= current else upgrade(payload, event_id)

        return checked
    return plan.fast_decoder(plain)


def _plain(event_type: str, cls: type[DomainEvent]) -> Callable[[Any, Any], DomainEvent]:
    """The decoder of rows read as they are: pydantic straight from the JSON text."""
    validate_json = json_validator(cls)
    validate = python_validator(cls)

    def decode(payload: Any, event_id: Any) -> DomainEvent:
        # `model_validate_json` / `model_validate` minus their keyword plumbing.
        try:
            if isinstance(payload, dict):
                return cast(DomainEvent, validate(payload))
            return cast(DomainEvent, validate_json(payload))
        except (ValidationError, ValueError) as exc:
            raise CorruptEventError(event_id, event_type, str(exc)) from exc

    return decode


def _personal_decoder(
    cls: type[DomainEvent], event_type: str, converter: TypeConverter | None
) -> Callable[[Any, Any], DomainEvent] | None:
    """`personal_decoder` with the store's type converter, when it has work for `cls`."""
    if plan_of(cls) is None:
        return None
    convert = partial(converter.convert, cls) if converter is not None and (
        converter.needs_conversion(cls)
    ) else None
    return personal_decoder(cls, event_type, convert)


def _decode_with(
    event_type: str,
    registry: EventRegistry | None,
    converter: TypeConverter | None,
    payload: Any,
    event_id: Any,
) -> DomainEvent:
    return decode_event(event_type, payload, registry, event_id, converter)


def stored_prefix(
    rows: Sequence[Any],
    layout: RowLayout,
    registry: EventRegistry | None,
    converter: TypeConverter | None,
    stored_at: Callable[[Any], datetime] = lambda value: value,
    where: Callable[[Any], str] | None = None,
) -> tuple[list[StoredEvent], CorruptEventError | None]:
    """A page of rows as StoredEvents up to the first one that cannot be read, and that row's
    error (see `decode_prefix`); `stored_at` turns the column into a datetime.

    Readers hand the events over, then raise the error: the rows before a bad one still arrive.
    """
    events, corrupt = _decode_page(rows, layout, registry, converter, where)
    if corrupt is not None:
        rows = rows[: len(events)]
    if _split_in(events):
        return _stored_parts(rows, events, layout, stored_at), corrupt
    stream_ids: dict[tuple[Any, str], str] = {}
    stamps: dict[Any, datetime] = {}
    stored: list[StoredEvent] = []
    a, k, v, g, s = (
        layout.aggregate_id, layout.aggregate_type, layout.version, layout.position,
        layout.stored_at,
    )
    with gc_paused():
        for row, event in zip(rows, events, strict=True):
            key = (row[a], row[k])
            stream_id = stream_ids.get(key)
            if stream_id is None:
                stream_id = stream_ids[key] = f"{row[a]}:{row[k]}"
            stamp = stamps.get(row[s])
            if stamp is None:
                stamp = stamps[row[s]] = stored_at(row[s])
            stored.append(make_stored_event(event, stream_id, row[v], row[g], stamp))  # type: ignore[arg-type]
    return stored, corrupt


def _stored_parts(
    rows: Sequence[Any],
    items: list[DomainEvent | Parts],
    layout: RowLayout,
    stored_at: Callable[[Any], datetime],
) -> list[StoredEvent]:
    """`stored_prefix` for a page holding a split: each part keeps its row's stream version
    and global position."""
    a, k, v, g, s = (
        layout.aggregate_id, layout.aggregate_type, layout.version, layout.position,
        layout.stored_at,
    )
    stored: list[StoredEvent] = []
    for row, item in zip(rows, items, strict=True):
        stream_id, stamp = f"{row[a]}:{row[k]}", stored_at(row[s])
        for event in item if type(item) is Parts else (cast(DomainEvent, item),):
            stored.append(make_stored_event(event, stream_id, row[v], row[g], stamp))
    return stored
