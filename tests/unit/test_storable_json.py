"""The JSON rule's text checks at their edges (the property test in tests/contract covers
whole events on every store)."""

from __future__ import annotations

import json

import pytest
from pydantic_core import from_json

from eventsource._storable_json import MAX_INT_DIGITS, dumps_storable, json_problem


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("\x00", True),
        ("\\u0000", False),  # the letters, after an escaped backslash
        ("\\\x00", True),  # an escaped backslash, then NUL
        ("\\\\u0000", False),
        ("ok \\u0000 then \x00", True),
    ],
)
def test_only_a_real_nul_escape_is_refused(value: str, refused: bool) -> None:
    assert (json_problem(json.dumps({value: value})) is not None) is refused


@pytest.mark.parametrize("offset", [0, 1, 2150, 4299, 4300, 4301])
def test_a_long_integer_is_found_wherever_it_starts(offset: int) -> None:
    """Digit runs are measured only around every 4,300th character: a run must be found
    whatever its alignment, and one digit shorter must pass."""
    pad = "x" * offset
    too_long = f'["{pad}", 1{"0" * MAX_INT_DIGITS}]'
    longest = f'["{pad}", {"9" * MAX_INT_DIGITS}]'
    assert json_problem(too_long) is not None
    assert json_problem(longest) is None
    from_json(longest)


def test_digits_in_a_string_are_not_a_number() -> None:
    assert json_problem(json.dumps(["1" * 9000])) is None


@pytest.mark.parametrize(("levels", "refused"), [(199, False), (200, True)])
def test_depth_is_what_the_reader_takes(levels: int, refused: bool) -> None:
    value: object = 1
    for _ in range(levels):
        value = {"k": value}
    text = json.dumps({"outer": value})  # the leaf sits in levels + 1 containers
    assert (json_problem(text) is not None) is refused


def test_dumps_storable_says_where_nan_is_and_refuses_recursion_typed() -> None:
    with pytest.raises(ValueError, match=r"\['a'\]\[1\] holds nan"):
        dumps_storable({"a": [1.0, float("nan")]})
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nests deeper"):
        dumps_storable(deep)
