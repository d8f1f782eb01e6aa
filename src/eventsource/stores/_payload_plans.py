"""Which events plainly meet the storable-JSON rule without being dumped (the in-memory store
keeps no dump, and dumping costs several times its append), and where an event holds a
non-finite float. See `eventsource._storable_json` for the rule itself."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from enum import Enum
from itertools import chain
from operator import attrgetter, itemgetter
from types import UnionType
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin

from annotated_types import BaseMetadata
from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainValidator,
    StringConstraints,
    WrapValidator,
)

from eventsource._compat.pydantic import has_custom_serialization
from eventsource._storable_json import (
    INERT_TYPES,
    PLAIN_TYPES,
    SCALAR_TYPES,
    non_finite,
    plain_ints,
    plain_text,
    plainly_storable,
)
from eventsource.events.base import DomainEvent

__all__ = ["doubtful_classes", "non_finite_field"]


def doubtful_classes(events: Sequence[DomainEvent]) -> list[type[DomainEvent]]:
    """The classes among `events` whose values do not surely meet the rule (their events must
    be dumped to know); each check runs once per class and batch."""
    classes = {type(events[0])} if len(events) == 1 else set(map(type, events))
    doubtful: list[type[DomainEvent]] = []
    for cls in classes:
        plan = _plans[cls] if cls in _plans else _plans.setdefault(cls, _plan(cls))
        group = events if len(classes) == 1 else [e for e in events if type(e) is cls]
        if plan is None or not _plainly_storable(group, plan):
            doubtful.append(cls)
    return doubtful


_float_fields: dict[type[DomainEvent], tuple[str, ...]] = {}


def non_finite_field(event: DomainEvent) -> str | None:
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
    if has_custom_serialization(cls):
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
