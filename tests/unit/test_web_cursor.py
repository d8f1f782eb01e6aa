"""The web app's opaque cursors: what is encoded decodes back, of its own kind only, and
anything else is a clear usage error (HTTP 400), never a crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventsource.cli._errors import CliUsageError
from eventsource.web._cursor import (
    decode_cursor,
    decode_position,
    decode_stream_key,
    encode_cursor,
)

_VALUES = st.one_of(
    st.integers(min_value=0, max_value=2**63),
    st.lists(st.text(max_size=40), max_size=3),
)


@given(kind=st.sampled_from(["streams", "stream", "log"]), value=_VALUES)
def test_a_cursor_decodes_to_what_it_was_made_from(kind: str, value: object) -> None:
    cursor = encode_cursor(kind, value)
    assert cursor.isascii()
    assert not set("=/+") & set(cursor)
    assert decode_cursor(kind, cursor) == value


@given(text=st.text(max_size=60), value=st.one_of(_VALUES, st.none(), st.floats()))
def test_whatever_comes_back_is_a_position_a_key_or_a_usage_error(
    text: str, value: object
) -> None:
    """Typed or refused: a forged cursor (any text, or any JSON in a real-looking cursor)
    never reaches a query as something else."""
    for cursor in (text, encode_cursor("log", value), encode_cursor("streams", value)):
        position = _or_refused(decode_position, "log", cursor)
        assert position is None or (isinstance(position, int) and position >= 0)
        key = _or_refused(decode_stream_key, cursor)
        assert key is None or isinstance(key[1], str)


def _or_refused(decode: Any, *args: str) -> Any:
    """What `decode` returns, or None when it refuses with the cursor usage error."""
    try:
        return decode(*args)
    except CliUsageError as error:
        if "cursor" not in str(error):
            raise
        return None


def test_a_cursor_of_another_kind_is_refused() -> None:
    with pytest.raises(CliUsageError, match="is a streams cursor, not a log one"):
        decode_cursor("log", encode_cursor("streams", ["x", "y"]))
