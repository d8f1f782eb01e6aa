"""Properties of upcasting on read (issue 15): a chain of v → v+1 steps read from any stored
version applies exactly the steps from that version on, in order, and ends at the class's
version; the codec's cheap version peek agrees with the parsed JSON whenever it answers."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from eventsource import DomainEvent, EventRegistry
from eventsource._compat.pydantic import dump_json
from eventsource.evolution import Upcasters, check_evolution
from eventsource.evolution._reading import at_version, version_needle
from eventsource.stores.codec import decode_event


def _class(version: int) -> type[DomainEvent]:
    class Stepped(DomainEvent):
        event_type: str = "Stepped"
        aggregate_type: str = "Steps"
        event_version: int = version
        steps: list[int] = Field(default_factory=list)

    return Stepped


def _step(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "steps": [*data.get("steps", []), data["event_version"]]}


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=8), st.data())
def test_a_chain_applies_the_steps_from_the_stored_version_on(length: int, data: Any) -> None:
    current = length + 1
    registry = EventRegistry()
    registry.register(_class(current))
    upcasters = Upcasters(registry=registry)
    for version in range(1, current):
        upcasters.register("Stepped", version, _step)
    check_evolution(registry)
    stored = data.draw(st.integers(min_value=1, max_value=current))
    payload = json.dumps({"event_type": "Stepped", "event_version": stored,
                          "aggregate_id": str(uuid4()), "aggregate_type": "Steps"})
    event = decode_event("Stepped", payload, registry)
    assert event.event_version == current
    assert event.model_dump()["steps"] == list(range(stored, current))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**6), st.dictionaries(st.text(max_size=14), _JSON,
                                                                   max_size=3))
def test_the_version_peek_agrees_with_the_parsed_json(version: int, metadata: Any) -> None:
    cls = _class(1)
    event = cls(aggregate_id=uuid4(), event_version=version, metadata=metadata)
    text = dump_json(event)
    assert at_version(text, version_needle(version))  # the codec's own dumps: always found
    for other in (
        json.dumps({"metadata": {"event_version": 7}, **json.loads(text)}),  # nested first
        json.dumps(json.loads(text)),  # spaced
        text,
    ):
        parsed = json.loads(other)["event_version"]
        for asked in (version, version + 1, 7):
            if at_version(other, version_needle(asked)):
                assert parsed == asked
