"""`resolve_stored` (what `events types` and the web event page say a stored type and version
read as) against a simple model: walk the registered steps from the stored version; short of
the class's version is "no_path", past it "newer", at it "upcast" (or "current" if no step
and no rename was taken)."""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import given
from hypothesis import strategies as st

from eventsource.cli._evolution import current_shape, resolve_stored
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.evolution import Upcasters

CURRENT = 5


class Measured(DomainEvent):
    """At v5; once stored as `OldMeasured`."""

    event_type: str = "Measured"
    aggregate_type: str = "Thing"
    event_version: int = CURRENT
    renamed_from: ClassVar[tuple[str, ...]] = ("OldMeasured",)
    steps: tuple[int, ...] = ()


def _app(steps: set[int], accept_newer: bool = False) -> EventRegistry:
    registry = EventRegistry()
    registry.register(Measured)
    upcasters = Upcasters(registry=registry, accept_newer_versions=accept_newer)
    for version in steps:
        def step(data: dict[str, Any], version: int = version) -> dict[str, Any]:
            return {**data, "steps": [*data.get("steps", []), version]}

        upcasters.register("Measured", version, step)
    return registry


def _model(steps: set[int], stored: int, renamed: bool) -> str:
    reached = stored
    while reached in steps:
        reached += 1
    if reached < CURRENT:
        return "no_path"
    if reached > CURRENT:
        return "newer"
    return "upcast" if reached != stored or renamed else "current"


@given(
    steps=st.sets(st.integers(1, 6)),
    stored=st.integers(1, 7),
    renamed=st.booleans(),
)
def test_status_follows_the_chain_model(steps: set[int], stored: int, renamed: bool) -> None:
    name = "OldMeasured" if renamed else "Measured"
    found = resolve_stored(name, stored, _app(steps))
    assert found["status"] == _model(steps, stored, renamed)
    assert (found["current_type"], found["current_version"]) == ("Measured", CURRENT)
    assert len(found["upcasters"]) == len(range(stored, max(stored, _reached(steps, stored))))


def _reached(steps: set[int], stored: int) -> int:
    while stored in steps:
        stored += 1
    return stored


@given(stored=st.integers(1, CURRENT))
def test_a_full_chain_reads_every_older_version_through_each_step(stored: int) -> None:
    registry = _app(set(range(1, CURRENT)))
    payload = {"event_version": stored, "aggregate_id": "00000000-0000-4000-8000-000000000001",
               "event_id": "00000000-0000-4000-8000-000000000002"}
    shape = current_shape("OldMeasured", payload, payload["event_id"], registry)
    assert shape is not None
    assert shape["error"] is None
    [event] = shape["events"]
    assert event["data"]["steps"] == list(range(stored, CURRENT))
    assert (event["event_type"], event["event_version"]) == ("Measured", CURRENT)


def test_newer_versions_are_accepted_when_the_upcasters_say_so() -> None:
    assert resolve_stored("Measured", 9, _app(set()))["status"] == "newer"
    assert resolve_stored("Measured", 9, _app(set(), accept_newer=True))["status"] == "current"


def test_a_missing_version_field_reads_as_v1() -> None:
    assert resolve_stored("Measured", None, _app(set()))["status"] == "no_path"
    assert resolve_stored("Measured", None, _app({1, 2, 3, 4}))["status"] == "upcast"
