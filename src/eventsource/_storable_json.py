"""The one rule for JSON the library stores: what a writer produces, its reader must accept.

Stored events are read back by pydantic's JSON parser, snapshots, dead letters and outbox rows
by `json.loads`, and PostgreSQL keeps most of them as JSONB. A value one of those refuses or
alters would be written without complaint and then break every read of its row (and of every
read passing over it), so the writers check what they produce here, before anything is written.
The rule is the same on every backend, so the in-memory store refuses what PostgreSQL would:

* NaN and ±Infinity: JSON has no such numbers (pydantic writes them as `null`, which reads back
  as `None` or not at all);
* nesting deeper than `MAX_DEPTH` containers, and integers of more than `MAX_INT_DIGITS` digits:
  pydantic's parser refuses both;
* lone surrogates: they have no UTF-8 form;
* the NUL character (`\\u0000`) in strings and keys: PostgreSQL refuses it in JSONB and text.

The checks of the text are scans in C (`str.count`, `in`, and a look at every
`MAX_INT_DIGITS`-th character); only a text that might break a limit is parsed, by pydantic's
own parser, to decide. NaN is no longer visible in pydantic's text, so `non_finite` looks for
it in the values.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from math import isfinite
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from pydantic_core import from_json

__all__ = [
    "INERT_TYPES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "PLAIN_TYPES",
    "SCALAR_TYPES",
    "dumps_storable",
    "has_lone_surrogate",
    "json_problem",
    "lone_surrogate",
    "non_finite",
    "plain_ints",
    "plain_text",
    "plainly_storable",
]

MAX_DEPTH = 200
"""Containers a value may sit in: pydantic's JSON parser refuses a value inside a 201st."""
MAX_INT_DIGITS = 4300
"""Digits an integer may have: pydantic's parser refuses more ("number out of range"), whatever
`sys.set_int_max_str_digits` allows; `json.loads` refuses more by default too."""
INERT_TYPES: frozenset[type] = frozenset(
    {bool, type(None), UUID, datetime, date, time, timedelta, Decimal}
)
"""Types whose values always meet the rule: pydantic writes them as fixed-form text or literals
(a Decimal as a string, even its NaN)."""
SCALAR_TYPES: frozenset[type] = INERT_TYPES | {str, int, bytes}
"""Types whose values hold no float."""
_LEAVES = SCALAR_TYPES | {float}
PLAIN_TYPES: frozenset[type] = INERT_TYPES | {str, int, float, dict, list, tuple}
"""The types `plainly_storable` judges by their values alone."""
_TOO_BIG: int = 10**MAX_INT_DIGITS
"""The smallest integer with more than `MAX_INT_DIGITS` digits."""
_TOO_SMALL: int = -_TOO_BIG  # named, not negated per check: that copies 1,800 bytes

_DIGITS = "0123456789"
_DIGIT_RUN = re.compile("[0-9]*")


def json_problem(text: str) -> str | None:
    """Why JSON `text` (made by pydantic or `json.dumps`) would not be stored or read back as
    it is, or None."""
    if "\\" in text and _holds_nul(text):  # one memchr in the common case: no escapes
        return "a string holds the NUL character (\\u0000), which PostgreSQL cannot store"
    containers = text.count("{") + (text.count("[") if "[" in text else 0)
    if containers > MAX_DEPTH or (len(text) > MAX_INT_DIGITS and _long_digit_run(text)):
        try:
            from_json(text)
        except ValueError as exc:
            return (
                f"it would not read back ({exc}): stored JSON may nest {MAX_DEPTH} levels deep "
                f"and hold integers of up to {MAX_INT_DIGITS} digits"
            )
    return None


def _holds_nul(text: str) -> bool:
    """Whether JSON `text` has the escape `\\u0000`: one not preceded by an odd number of
    backslashes (`\\\\u0000` is an escaped backslash, then the letters "u0000")."""
    at = text.find("\\u0000")
    while at != -1:
        start = at
        while start and text[start - 1] == "\\":
            start -= 1
        if (at - start) % 2 == 0:
            return True
        at = text.find("\\u0000", at + 1)
    return False


def _long_digit_run(text: str) -> bool:
    """Whether `text` has more than `MAX_INT_DIGITS` digits in a row. Such a run covers an index
    that is a multiple of `MAX_INT_DIGITS`: only the characters there are looked at, and the run
    around each one that is a digit is measured."""
    step = MAX_INT_DIGITS
    for at in range(step, len(text), step):
        if text[at] in _DIGITS:
            end = _DIGIT_RUN.match(text, at).end()  # type: ignore[union-attr]  # "*" matches
            before = text[at - step : at]
            if end - at + len(before) - len(before.rstrip(_DIGITS)) > step:
                return True
    return False


def non_finite(value: object, where: str = "") -> str | None:
    """Where a NaN or infinite float lies in `value` (looking into containers, pydantic models,
    dataclasses and enums): `<where>['key'][0] holds nan, which JSON cannot hold`; or None."""
    if not _holds_non_finite(value):
        return None
    return _describe(_path_to(value, _is_non_finite), where, "JSON cannot hold")


def _holds_non_finite(value: object) -> bool:
    """`non_finite`'s question without the path: the common shapes at C speed, the rest
    through the general walk."""
    kind = type(value)
    if kind is float:
        return not isfinite(value)  # type: ignore[arg-type]
    if kind in SCALAR_TYPES:
        return False
    if kind is dict:
        return any(map(_holds_non_finite, value.values()))  # type: ignore[attr-defined]
    if kind is list:
        return any(map(_holds_non_finite, value))  # type: ignore[call-overload]
    return _path_to(value, _is_non_finite) is not None


def lone_surrogate(value: object, where: str = "") -> str | None:
    """Where a string or key with a lone surrogate lies in `value`, as `non_finite` says."""
    return _describe(_path_to(value, has_lone_surrogate), where, "has no UTF-8 form")


def has_lone_surrogate(text: object) -> bool:
    """True for a string no UTF-8 encoder takes (SQLite's and PostgreSQL's drivers neither)."""
    if not isinstance(text, str) or text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _is_non_finite(leaf: object) -> bool:
    return isinstance(leaf, float) and not isfinite(leaf)


def _describe(path: list[Any] | None, where: str, why: str) -> str | None:
    if path is None:
        return None
    found, keys = path[0], path[:0:-1]
    return f"{where}{''.join(f'[{key!r}]' for key in keys)} holds {found!r}, which {why}"


def _path_to(value: object, refused: Callable[[object], bool]) -> list[Any] | None:
    """[the first leaf (or key) `refused` is true of, its key, ..., the outermost key]."""
    if refused(value):
        return [value]
    if type(value) in _LEAVES:
        return None
    keyed = isinstance(value, dict)
    for key, item in _children(value):
        if keyed and refused(key):
            return [key]
        path = _path_to(item, refused)
        if path is not None:
            path.append(key)
            return path
    return None


def _children(value: object) -> Iterable[tuple[object, object]]:
    """(key, value) of what `value` holds, for the containers JSON is made of."""
    if isinstance(value, dict):
        return value.items()
    if isinstance(value, list | tuple | set | frozenset):
        return enumerate(value)
    if isinstance(value, BaseModel):
        return (*value.__dict__.items(), *(value.__pydantic_extra__ or {}).items())
    if isinstance(value, Enum):
        return (("value", value.value),)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    return ()


def plainly_storable(value: object, enclosed: int = 1) -> bool:
    """True when `value`, sitting inside `enclosed` containers, surely meets the rule, judged
    from the value alone (plain JSON shapes: str keys, lists, tuples, enums, the leaves above);
    False when it breaks the rule or is of a kind whose JSON only its dump shows.

    A fast pre-check for writers that keep no dump: False never refuses anything by itself,
    it sends the value to the dump and the text checks, which decide."""
    if type(value) is str:
        return plain_text(value)
    if type(value) is int:
        return _TOO_SMALL < value < _TOO_BIG
    if type(value) is float:
        return isfinite(value)
    if type(value) in INERT_TYPES:
        return True
    return enclosed < MAX_DEPTH and _plain_container(value, enclosed + 1)


def _plain_container(value: object, enclosed: int) -> bool:
    """`plainly_storable` for a value that is a container (the `enclosed`-th), or an enum."""
    if type(value) is dict:
        return all(type(key) is str and plain_text(key) for key in value) and all(
            plainly_storable(item, enclosed) for item in value.values()
        )
    if type(value) is list or type(value) is tuple:
        return all(plainly_storable(item, enclosed) for item in value)
    if isinstance(value, Enum):  # written as its value, in the same place
        return plainly_storable(value.value, enclosed - 1)
    return False


def plain_text(text: str) -> bool:
    """True for a string (or several joined) that holds neither NUL nor a surrogate."""
    return "\x00" not in text and (text.isascii() or not has_lone_surrogate(text))


def plain_ints(numbers: Iterable[int]) -> bool:
    """True for ints that all have at most `MAX_INT_DIGITS` digits: their sizes' sum does (one
    C-speed pass, cheaper than `min` and `max`)."""
    try:
        return sum(map(abs, numbers)) < _TOO_BIG  # a NaN (not an int after all) fails too
    except TypeError:  # not numbers after all
        return False


def dumps_storable(value: object, encoder: type[json.JSONEncoder] | None = None) -> str:
    """`json.dumps(value, cls=encoder)` for storing; `ValueError` (or `TypeError` for a value
    without a JSON form) saying what breaks the rule."""
    try:
        text = json.dumps(value, cls=encoder, allow_nan=False, ensure_ascii=False)
    except RecursionError:
        raise ValueError(f"it nests deeper than the {MAX_DEPTH} levels JSON may have") from None
    except ValueError as exc:
        try:
            where = non_finite(value, "the value")
        except RecursionError:  # a circular value, which `json.dumps` refused as such
            where = None
        raise ValueError(where or str(exc)) from exc
    if has_lone_surrogate(text):
        where = lone_surrogate(value, "the value")
        raise ValueError(where or "a string holds a lone surrogate, which has no UTF-8 form")
    problem = json_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text
