"""Rules every event store follows, written once: argument checks, the expected-version check,
and turning events into rows and rows back into events."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from functools import partial
from itertools import chain
from operator import attrgetter, itemgetter
from types import UnionType
from typing import Any, Literal, NamedTuple, Union, cast, get_args, get_origin
from uuid import UUID

from annotated_types import BaseMetadata
from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainValidator,
    StringConstraints,
    ValidationError,
    WrapValidator,
)
from pydantic_core import PydanticSerializationError

from eventsource._storable_json import (
    INERT_TYPES,
    PLAIN_TYPES,
    SCALAR_TYPES,
    has_lone_surrogate,
    json_problem,
    lone_surrogate,
    non_finite,
    plain_ints,
    plain_text,
    plainly_storable,
)
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry, resolve_event_class
from eventsource.exceptions import (
    CorruptEventError,
    EventTypeNotFoundError,
    OptimisticLockError,
    SerializationError,
    TenantMismatchError,
)
from eventsource.stores._codec import TypeConverter
from eventsource.stores.interface import (
    ExpectedVersion,
    StoredEvent,
    make_stored_event,
)
from eventsource.tenancy import _bound_tenant

__all__ = [
    "CorruptEventError",
    "bound_tenant",
    "check_append_args",
    "check_expected_version",
    "check_payloads",
    "check_stream_owner",
    "decode_event",
    "encode_payload",
    "scope_filter",
    "stamp_events",
    "tenant_clause",
    "tenant_variants",
]

bound_tenant: Callable[[], UUID | None] = _bound_tenant.get
"""The tenant bound by `tenant_scope`, or None: the ContextVar's own `get`, the cheapest call
there is, since every store call outside a scope pays it (and nothing else for tenancy)."""


def check_append_args(
    aggregate_id: object, aggregate_type: object, events: Sequence[object], expected_version: object
) -> None:
    """Reject bad input to `append_events` before anything is written; errors name the culprit."""
    if not isinstance(aggregate_id, UUID):
        raise TypeError(f"aggregate_id must be a UUID, got {type(aggregate_id).__name__}: "
                        f"{aggregate_id!r}")
    if not isinstance(aggregate_type, str) or not aggregate_type:
        raise TypeError(f"aggregate_type must be a non-empty str, got {aggregate_type!r}")
    if "\x00" in aggregate_type or has_lone_surrogate(aggregate_type):
        raise ValueError(
            "aggregate_type must not hold the NUL character or lone surrogates (no database "
            f"stores them), got {aggregate_type!r}"
        )
    if type(expected_version) is not int and (
        isinstance(expected_version, bool) or not isinstance(expected_version, int)
    ):
        raise TypeError(f"expected_version must be an int, got {expected_version!r}")
    if expected_version < ExpectedVersion.STREAM_EXISTS:
        raise ValueError(
            "expected_version must be >= -2 (ExpectedVersion.STREAM_EXISTS), "
            f"got {expected_version}"
        )
    # `type(...) is list` first: the Sequence ABC check is slow and this runs on every append.
    if type(events) is not list and (
        isinstance(events, str | bytes) or not isinstance(events, Sequence)
    ):
        raise TypeError(f"events must be a list of DomainEvent, got {type(events).__name__}")
    for event in events:
        if not isinstance(event, DomainEvent) or (
            event.aggregate_id is not aggregate_id and event.aggregate_id != aggregate_id
        ):
            _reject_event(events, event, aggregate_id)


def _reject_event(events: Sequence[object], event: object, aggregate_id: UUID) -> None:
    index = next(i for i, candidate in enumerate(events) if candidate is event)
    if not isinstance(event, DomainEvent):
        raise TypeError(
            f"events[{index}] is a {type(event).__name__}, not a DomainEvent: {event!r:.200}"
        )
    raise ValueError(
        f"events[{index}] ({event.event_type} {event.event_id}) belongs to aggregate "
        f"{event.aggregate_id}, not to {aggregate_id} given to append_events"
    )


def stamp_events(events: Sequence[DomainEvent], tenant: UUID) -> Sequence[DomainEvent]:
    """The events to store inside `tenant_scope(tenant)`: a tenant-less event becomes a copy
    stamped with `tenant`; an event of another tenant raises `TenantMismatchError` (naming the
    event, not its tenant) before anything is written. Events already carrying `tenant` are
    kept as they are, so a batch with nothing to stamp is returned unchanged."""
    stamped: list[DomainEvent] | None = None
    for index, event in enumerate(events):
        owner = event.tenant_id
        if owner is None:
            if stamped is None:
                stamped = list(events[:index])
            stamped.append(event.model_copy(update={"tenant_id": tenant}))
            continue
        if owner != tenant:
            raise TenantMismatchError(tenant, f"Event {event.event_id} ({event.event_type})")
        if stamped is not None:
            stamped.append(event)
    return events if stamped is None else stamped


def check_stream_owner(
    aggregate_id: UUID, aggregate_type: str, tenant: UUID, owner: UUID | None
) -> None:
    """Inside `tenant_scope(tenant)`, only the tenant's own streams may be appended to.

    A stream belongs to the tenant of its latest event (streams written inside a scope hold
    only that tenant's events). Appending to another tenant's stream, or to one whose latest
    event has no tenant, raises `TenantMismatchError` instead of forking the stream.
    """
    if owner != tenant:
        raise TenantMismatchError(tenant, f"Stream {aggregate_id}:{aggregate_type}")


def tenant_clause(placeholder: str, column: str = "tenant_id") -> str:
    """The SQL condition a tenant-scoped read adds: `<column> = <placeholder>`.

    Plain equality on purpose: it implies `tenant_id IS NOT NULL`, so the partial tenant
    indexes of the shipped schemas apply, and tenant-less rows never match.
    """
    return f"{column} = {placeholder}"


def scope_filter(clauses: list[str], params: list[object], placeholder: str = "?") -> UUID | None:
    """Add the bound tenant's condition (value as text) to a list-built WHERE clause, if a
    tenant is bound; returns that tenant."""
    tenant = bound_tenant()
    if tenant is not None:
        clauses.append(tenant_clause(placeholder))
        params.append(str(tenant))
    return tenant


def tenant_variants(template: str, placeholder: str, column: str = "tenant_id") -> tuple[str, str]:
    """A statement with a `{tenant}` slot as (unscoped, scoped): the slot becomes nothing, or
    ` AND <column> = <placeholder>`. Index the pair with `tenant is not None`."""
    return (
        template.format(tenant=""),
        template.format(tenant=f" AND {tenant_clause(placeholder, column)}"),
    )


def check_expected_version(aggregate_id: UUID, expected: int, current: int) -> None:
    """Raise OptimisticLockError unless a stream at `current` may be appended to."""
    if expected == ExpectedVersion.ANY:
        return
    ok = current > 0 if expected == ExpectedVersion.STREAM_EXISTS else current == expected
    if not ok:  # NO_STREAM is 0, so the exact comparison covers it
        raise OptimisticLockError(aggregate_id, expected, current)


def version_matches(expected: int, current: int) -> bool:
    """The same rule as a predicate (for backends that check inside SQL and re-check here)."""
    if expected == ExpectedVersion.ANY:
        return True
    if expected == ExpectedVersion.STREAM_EXISTS:
        return current > 0
    return current == expected


def encode_payload(event: DomainEvent) -> str:
    """The event's full JSON dump; SerializationError (before any write) if it has none, or if
    its reader would not get it back (see `eventsource._storable_json`)."""
    try:
        # What `model_dump_json()` does with its defaults, without its keyword plumbing.
        payload = event.__pydantic_serializer__.to_json(event).decode()
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise SerializationError(event.event_type, str(exc), event.event_id) from exc
    problem = json_problem(payload) or _non_finite_field(event)
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
    class whose field values surely meet the rule (see `_plainly_storable`) are passed without
    one; the others are dumped in order, so every refusal, and its message, is the dump's."""
    classes = {type(events[0])} if len(events) == 1 else set(map(type, events))
    doubtful: list[type[DomainEvent]] = []
    for cls in classes:
        plan = _plans[cls] if cls in _plans else _plans.setdefault(cls, _plan(cls))
        group = events if len(classes) == 1 else [e for e in events if type(e) is cls]
        if plan is None or not _plainly_storable(group, plan):
            doubtful.append(cls)
    _check_types(events, registry)  # after the look above, which brought the events to cache
    if doubtful:
        for event in events:
            if type(event) in doubtful:
                encode_payload(event)


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


_float_fields: dict[type[DomainEvent], tuple[str, ...]] = {}


def _non_finite_field(event: DomainEvent) -> str | None:
    """Where the event holds NaN or an infinity (its JSON shows them as null), or None."""
    cls = type(event)
    names = _float_fields.get(cls)
    if names is None:  # only fields not declared as plain scalars can hold a float
        names = _float_fields[cls] = tuple(
            name for name, info in cls.model_fields.items() if not _is_scalar(info.annotation)
        )
    values = event.__dict__
    for name in names:
        value = values[name]
        if value is None or (type(value) is dict and not value):  # the usual `metadata: {}`
            continue
        found = non_finite(value, name)
        if found is not None:
            return found
    extra = event.__pydantic_extra__
    return non_finite(extra) if extra else None


_Getter = Callable[[dict[str, Any]], tuple[Any, ...]]


class _Plan(NamedTuple):
    """How `_plainly_storable` looks at an event class: getters of the values of the fields it
    checks (as tuples, from the instance `__dict__`; fields of `INERT_TYPES` are left out).

    A field's value is taken to be of its declared type, as pydantic validated it (a `str` or
    `int` field found holding something else is dumped); what a container holds is walked."""

    texts: _Getter  # `str` fields: joined, and the text scanned once
    ints: _Getter  # `int` fields: the sum of their sizes compared once
    rest: _Getter  # the others: `plainly_storable` each
    typed_rest: bool  # no `Any` or enum among the others: their falsy values are None, {}, ...
    fields: _Getter  # all three at once, for a batch: one pass over its events
    columns: tuple[tuple[slice, ...], ...]  # where each kind's values lie in `fields`' output
    extra: bool  # `extra="allow"`: undeclared fields too


_plans: dict[type[DomainEvent], _Plan | None] = {}
_dict_of = attrgetter("__dict__")


def _plainly_storable(events: Sequence[DomainEvent], plan: _Plan) -> bool:
    """Whether the values of these events (all of `plan`'s class) surely meet the rule. Each
    check runs once for the batch, at C speed: all the strings joined and scanned, all the ints
    summed, and only the truthy other values walked."""
    texts: Iterable[Any]
    ints: Iterable[Any]
    rest: Iterable[Any]
    if len(events) == 1:  # the common single append: no iterators to build
        values = events[0].__dict__
        texts, ints, rest = plan.texts(values), plan.ints(values), plan.rest(values)
    else:  # the batch's values end to end, and each kind's columns of them
        column = list(chain.from_iterable(map(plan.fields, map(_dict_of, events)))).__getitem__
        texts, ints, rest = (chain.from_iterable(map(column, kind)) for kind in plan.columns)
    try:
        text = "".join(texts)
    except TypeError:  # not all str after all (`model_construct`, `model_copy(update=)`)
        return False
    if not plain_text(text) or not plain_ints(ints):
        return False
    if plan.typed_rest:  # validated as builtin types, whose `bool()` is known: skip None, {}
        rest = filter(None, rest)
    if not all(map(plainly_storable, rest)):
        return False
    return not plan.extra or all(plainly_storable(e.__pydantic_extra__ or {}) for e in events)


def _plan(cls: type[DomainEvent]) -> _Plan | None:
    """The fields `_plainly_storable` looks at for `cls`, or None when only the dump shows what
    `cls` writes: custom serializers, computed fields, aliases, annotations other than plain
    JSON shapes (nested models, custom types)."""
    decorators = cls.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers:
        return None
    if cls.model_computed_fields:
        return None
    texts: list[str] = []
    ints: list[str] = []
    rest: list[str] = []
    for name, info in cls.model_fields.items():
        if info.alias or info.serialization_alias:
            return None
        if not all(isinstance(item, _CONSTRAINTS) for item in info.metadata):
            return None
        annotation = info.annotation
        if not _plain_annotation(annotation):
            return None
        if annotation is str:
            texts.append(name)
        elif annotation is int:
            ints.append(name)
        elif not _is_scalar(annotation, INERT_TYPES):
            rest.append(name)
    names = [*texts, *ints, *rest]
    columns = [slice(at, None, len(names)) for at in range(len(names))]
    ints_at, rest_at = len(texts), len(texts) + len(ints)
    return _Plan(
        _getter(texts),
        _getter(ints),
        _getter(rest),
        all(_builtin_only(cls.model_fields[name].annotation) for name in rest),
        _getter(names),
        (tuple(columns[:ints_at]), tuple(columns[ints_at:rest_at]), tuple(columns[rest_at:])),
        cls.model_config.get("extra") == "allow",
    )


_CONSTRAINTS = (
    BaseMetadata,
    StringConstraints,
    AfterValidator,
    BeforeValidator,
    PlainValidator,
    WrapValidator,
)
"""Field metadata that constrains or validates values, and so leaves their JSON as it is."""


def _plain_annotation(annotation: Any) -> bool:
    """True for the annotations whose values pydantic writes as they are: the scalar types,
    `Any`, enums, and lists, tuples, sets, dicts, unions and literals of those."""
    origin = get_origin(annotation)
    if origin is None:
        return (
            annotation is Any
            or annotation is Ellipsis
            or annotation in SCALAR_TYPES
            or annotation is float
            or (isinstance(annotation, type) and issubclass(annotation, Enum))
        )
    if origin is Literal:
        return True
    if origin not in _PLAIN_ORIGINS:
        return False
    return all(_plain_annotation(arg) for arg in get_args(annotation))


_PLAIN_ORIGINS = (Union, UnionType, list, tuple, set, frozenset, dict, Sequence, Mapping)


def _builtin_only(annotation: Any) -> bool:
    """True when pydantic validates every value of `annotation` to one of `PLAIN_TYPES` (as a
    whole: what a container holds is walked anyway), so none is an object of unknown truth."""
    if get_origin(annotation) in (Union, UnionType):
        return all(map(_builtin_only, get_args(annotation)))
    return (get_origin(annotation) or annotation) in PLAIN_TYPES


def _getter(names: list[str]) -> _Getter:
    """A getter of `names`' values as a tuple (`itemgetter` of one name gives it bare)."""
    if len(names) > 1:
        return itemgetter(*names)
    return lambda values: tuple(values[name] for name in names)


def _is_scalar(annotation: Any, types: frozenset[type] = SCALAR_TYPES) -> bool:
    """True for `str`, `int`, `UUID`, ... (or `types`) and unions of them (`str | None`)."""
    if get_origin(annotation) in (Union, UnionType):
        return all(arg in types for arg in get_args(annotation))
    return annotation in types


def decode_event(
    event_type: str,
    payload: str | bytes | dict[str, Any],
    registry: EventRegistry | None,
    event_id: object = None,
    converter: TypeConverter | None = None,
) -> DomainEvent:
    """Rebuild a stored event as its registered class (the registry, then the default one).

    pydantic validates straight from the JSON text. Any failure raises `CorruptEventError`
    naming the event id and type, so a bad row never surfaces as a bare error mid-iteration.
    """
    try:
        cls = resolve_event_class(event_type, registry)
    except EventTypeNotFoundError as exc:
        raise CorruptEventError(event_id, event_type, f"unknown event type ({exc})") from exc
    try:
        if converter is not None and converter.needs_conversion(cls):
            data = json.loads(payload) if not isinstance(payload, dict) else payload
            return cls.model_validate(converter.convert(cls, data))
        if isinstance(payload, dict):
            return cls.model_validate(payload)
        return cls.model_validate_json(payload)
    except (ValidationError, ValueError) as exc:
        raise CorruptEventError(event_id, event_type, str(exc)) from exc


def in_time_range(occurred_at: datetime, start: datetime | None, end: datetime | None) -> bool:
    """Inclusive timestamp bounds."""
    return (start is None or occurred_at >= start) and (end is None or occurred_at <= end)


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
    t, p, i = layout.event_type, layout.payload, layout.event_id
    decoders: dict[str, Callable[[Any, Any], DomainEvent]] = {}
    events: list[DomainEvent] = []
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
        return events, _located(exc, rows[len(events)], layout, where)  # one event per row
    return events, None


def _located(
    error: CorruptEventError, row: Any, layout: RowLayout, where: Callable[[Any], str] | None
) -> CorruptEventError:
    """`error` again, with the row's global position (when the read selects it) in its message
    and the row's raw payload."""
    position = row[layout.position] if layout.position >= 0 else None
    located = CorruptEventError(
        error.event_id, error.event_type, error.reason, position, row[layout.payload]
    )
    located.__cause__ = error.__cause__
    if where is not None:
        located.add_note(where(row))
    return located


def _decoder(
    event_type: str, registry: EventRegistry | None, converter: TypeConverter | None
) -> Callable[[Any, Any], DomainEvent]:
    """`decode_event` for rows of one event type: `(payload, event_id) -> event`."""
    try:
        cls = resolve_event_class(event_type, registry)
    except EventTypeNotFoundError:
        return partial(_decode_with, event_type, registry, converter)
    if converter is not None and converter.needs_conversion(cls):
        return partial(_decode_with, event_type, registry, converter)
    validate_json = cls.__pydantic_validator__.validate_json
    validate = cls.__pydantic_validator__.validate_python

    def decode(payload: Any, event_id: Any) -> DomainEvent:
        # `model_validate_json` / `model_validate` minus their keyword plumbing.
        try:
            if isinstance(payload, dict):
                return cast(DomainEvent, validate(payload))
            return cast(DomainEvent, validate_json(payload))
        except (ValidationError, ValueError) as exc:
            raise CorruptEventError(event_id, event_type, str(exc)) from exc

    return decode


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
    events, corrupt = decode_prefix(rows, layout, registry, converter, where)
    if corrupt is not None:
        rows = rows[: len(events)]
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
            stored.append(make_stored_event(event, stream_id, row[v], row[g], stamp))
    return stored, corrupt
