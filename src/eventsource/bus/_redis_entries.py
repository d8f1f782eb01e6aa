"""Redis stream entries without the driver: the fast-read script, its reply, dead letters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventsource.bus._dead_letters import Failure, is_redis_dead_letter_field, redis_fields

__all__ = [
    "READ_SCRIPT",
    "DeadLetter",
    "Entry",
    "dead_letter_fields",
    "replay_fields",
    "text",
    "unpack_read",
]

Fields = Mapping[bytes, bytes]
Entry = tuple[str, Fields | None]
"""A message id and its fields (None: deleted from the stream while pending)."""

# Pure-Python RESP parsing costs per string, and an entry has a dozen of them. This script does
# the XREADGROUP server-side and returns 6 values per entry: id, present?, event_type, event_id,
# payload, trace -- several times faster to read. `trace` holds the fields named in ARGV[5..]
# (the trace-context headers, when tracing) as a flat name/value list, or false when none are
# asked for or present. The full entry is fetched only for dead letters.
READ_SCRIPT = """
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                         'STREAMS', KEYS[1], ARGV[4])
local out = {}
if not reply then return out end
local wanted = {}
for i = 5, #ARGV do wanted[ARGV[i]] = true end
local tracing = #ARGV >= 5
for _, entry in ipairs(reply[1][2]) do
  local fields = entry[2]
  local event_type, event_id, payload, trace = false, false, false, false
  if fields then
    for i = 1, #fields, 2 do
      local key = fields[i]
      if key == 'event_type' then event_type = fields[i + 1]
      elseif key == 'event_id' then event_id = fields[i + 1]
      elseif key == 'payload' then payload = fields[i + 1]
      elseif tracing and wanted[key] then
        if not trace then trace = {} end
        trace[#trace + 1] = key
        trace[#trace + 1] = fields[i + 1]
      end
    end
  end
  out[#out + 1] = entry[1]
  out[#out + 1] = fields and 1 or 0
  out[#out + 1] = event_type
  out[#out + 1] = event_id
  out[#out + 1] = payload
  out[#out + 1] = trace
end
return out
"""


def text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def unpack_read(reply: Sequence[Any]) -> list[Entry]:
    """The script's flat reply as entries holding only the fields it returned."""
    entries: list[Entry] = []
    for index in range(0, len(reply), 6):
        message_id, present, event_type, event_id, payload, trace = reply[index : index + 6]
        if not present:
            entries.append((text(message_id), None))
            continue
        fields: dict[bytes, bytes] = {}
        if event_type is not None:
            fields[b"event_type"] = event_type
        if event_id is not None:
            fields[b"event_id"] = event_id
        if payload is not None:
            fields[b"payload"] = payload
        if trace:
            for name, value in zip(trace[::2], trace[1::2], strict=True):
                fields[name if isinstance(name, bytes) else name.encode()] = value
        entries.append((text(message_id), fields))
    return entries


@dataclass
class DeadLetter:
    """A message given up on, with why and after how many failures."""

    message_id: str
    fields: Fields
    failure: Failure


def dead_letter_fields(letter: DeadLetter, original: Fields | None) -> dict[bytes | str, Any]:
    """The DLQ entry: the original fields plus where it came from and why it is here."""
    data: dict[bytes | str, Any] = {}
    data.update((original or letter.fields).items())
    data.update(redis_fields(letter.failure, letter.message_id))
    return data


def replay_fields(fields: Mapping[Any, Any]) -> dict[Any, Any]:
    """A dead letter's fields as the original entry had them."""
    return {k: v for k, v in fields.items() if not is_redis_dead_letter_field(text(k))}
