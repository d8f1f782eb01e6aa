"""Opaque page cursors: what a page hands out for "the next page", and takes back.

A cursor is the keyset the next page starts after, as base64url JSON: the pages and `/api/`
hand it back unchanged, and nothing outside this module reads its inside. A cursor that does
not decode is a `CliUsageError` (HTTP 400), never a crash.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from uuid import UUID

from eventsource.cli._errors import CliUsageError

__all__ = ["decode_cursor", "decode_position", "decode_stream_key", "encode_cursor"]


def encode_cursor(kind: str, value: Any) -> str:
    """The cursor of `kind` (`streams`, `log`, ...) continuing after `value` (JSON-ready)."""
    raw = json.dumps([kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> Any:
    """The value `encode_cursor(kind, value)` was made from; `CliUsageError` if it was not."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found_kind, value = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise _refuse(cursor) from None
    if found_kind != kind:
        raise CliUsageError(f"cursor {cursor!r} is a {found_kind} cursor, not a {kind} one")
    return value


def _refuse(cursor: str) -> CliUsageError:
    return CliUsageError(f"cursor {cursor!r} is not a cursor this server handed out")


def decode_position(kind: str, cursor: str) -> int:
    """A cursor holding a position or version (a whole number)."""
    value = decode_cursor(kind, cursor)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _refuse(cursor)
    return value


def decode_stream_key(cursor: str) -> tuple[UUID, str]:
    """A streams cursor: the (aggregate id, aggregate type) the page continues after."""
    value = decode_cursor("streams", cursor)
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise _refuse(cursor)
    try:
        return UUID(value[0]), value[1]
    except ValueError:
        raise _refuse(cursor) from None
