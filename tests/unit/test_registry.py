"""The event registry (API.md §1.2)."""

from __future__ import annotations

import threading

import pytest

import eventsource
import eventsource.events
import eventsource.events.registry as registry_module
from eventsource import (
    DomainEvent,
    DuplicateEventTypeError,
    EventRegistry,
    EventTypeNotFoundError,
    default_registry,
    get_event_class,
    get_event_class_or_none,
    is_event_registered,
    list_registered_events,
    register_event,
)
from eventsource.events.registry import resolve_event_class


@register_event
class RegTaskCreated(DomainEvent):
    event_type: str = "RegTaskCreated"
    aggregate_type: str = "Task"


@register_event()
class RegTaskDone(DomainEvent):
    event_type: str = "RegTaskDone"
    aggregate_type: str = "Task"


class RegNoDefault(DomainEvent):
    aggregate_type: str = "Task"


class RegOther(DomainEvent):
    event_type: str = "RegOther"
    aggregate_type: str = "Task"


class RegImpostor(DomainEvent):
    event_type: str = "RegTaskCreated"
    aggregate_type: str = "Task"


def test_decorator_forms_register_into_the_default_registry() -> None:
    assert is_event_registered("RegTaskCreated")
    assert is_event_registered("RegTaskDone")
    assert get_event_class("RegTaskCreated") is RegTaskCreated
    assert get_event_class_or_none("RegTaskDone") is RegTaskDone
    assert get_event_class_or_none("Nope") is None
    names = list_registered_events()
    assert names == sorted(names)
    assert {"RegTaskCreated", "RegTaskDone"} <= set(names)


def test_keyword_form_with_own_registry_and_name() -> None:
    mine = EventRegistry()
    returned = register_event(event_type="renamed", registry=mine)(RegOther)
    assert returned is RegOther
    assert mine.get("renamed") is RegOther
    assert not is_event_registered("renamed")
    assert not is_event_registered("RegOther")


def test_name_rules() -> None:
    registry = EventRegistry()
    assert registry.register(RegOther) is RegOther
    registry.register(RegNoDefault)
    registry.register(RegTaskDone, "explicit")
    assert registry.list_types() == ["RegNoDefault", "RegOther", "explicit"]
    classes: list[type[DomainEvent]] = [RegNoDefault, RegOther, RegTaskDone]
    assert registry.list_classes() == classes


def test_same_class_twice_is_a_no_op() -> None:
    registry = EventRegistry()
    registry.register(RegOther)
    registry.register(RegOther)
    assert len(registry) == 1
    register_event(RegTaskCreated)  # already in the default registry


def test_another_class_under_a_taken_name_raises() -> None:
    registry = EventRegistry()
    registry.register(RegTaskCreated)
    with pytest.raises(DuplicateEventTypeError) as caught:
        registry.register(RegImpostor)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.event_type == "RegTaskCreated"
    assert error.existing_class is RegTaskCreated
    assert error.new_class is RegImpostor
    assert "RegTaskCreated" in str(error)
    assert "RegImpostor" in str(error)
    assert registry.get("RegTaskCreated") is RegTaskCreated
    with pytest.raises(DuplicateEventTypeError):
        register_event(RegImpostor)
    assert get_event_class("RegTaskCreated") is RegTaskCreated


def test_lookups_and_container_protocol() -> None:
    registry = EventRegistry()
    assert bool(registry) is True  # even when empty
    assert len(registry) == 0
    registry.register(RegOther)
    registry.register(RegTaskDone)
    assert registry.contains("RegOther")
    assert "RegOther" in registry
    assert "Missing" not in registry
    assert registry.get_or_none("Missing") is None
    assert sorted(registry) == ["RegOther", "RegTaskDone"]
    assert len(registry) == 2
    assert registry.unregister("RegOther") is True
    assert registry.unregister("RegOther") is False
    registry.clear()
    assert len(registry) == 0
    assert bool(registry) is True


def test_unknown_type_error() -> None:
    registry = EventRegistry()
    registry.register(RegOther)
    with pytest.raises(EventTypeNotFoundError) as caught:
        registry.get("Missing")
    error = caught.value
    assert isinstance(error, KeyError)
    assert error.event_type == "Missing"
    assert error.available_types == ["RegOther"]
    assert "Missing" in str(error)
    with pytest.raises(EventTypeNotFoundError):
        get_event_class("Missing")


def test_only_event_classes_can_be_registered() -> None:
    with pytest.raises(TypeError):
        EventRegistry().register(int)  # type: ignore[type-var]


def test_lookup_rule_registry_then_default() -> None:
    own = EventRegistry()
    assert resolve_event_class("RegTaskCreated", own) is RegTaskCreated  # falls back
    assert resolve_event_class("RegTaskCreated", None) is RegTaskCreated
    own.register(RegImpostor)  # the component's registry wins over the default one
    assert resolve_event_class("RegTaskCreated", own) is RegImpostor
    own.register(RegOther)
    assert resolve_event_class("RegOther", own) is RegOther
    with pytest.raises(EventTypeNotFoundError) as caught:
        resolve_event_class("Missing", own)
    assert "RegOther" in caught.value.available_types
    assert "RegTaskCreated" in caught.value.available_types


def test_the_autouse_fixture_restores_the_default_registry() -> None:
    default_registry.unregister("RegTaskDone")
    register_event(RegOther)
    assert not is_event_registered("RegTaskDone")


def test_previous_test_changes_were_undone() -> None:
    assert is_event_registered("RegTaskDone")
    assert not is_event_registered("RegOther")


def test_registration_is_thread_safe() -> None:
    registry = EventRegistry()
    classes = [type(f"RegThread{n}", (DomainEvent,), {"__annotations__": {}}) for n in range(40)]
    errors: list[BaseException] = []

    def register_all() -> None:
        try:
            for cls in classes:
                registry.register(cls)
        except BaseException as exc:  # pragma: no cover - only on failure
            errors.append(exc)

    threads = [threading.Thread(target=register_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(registry) == 40


def test_import_paths() -> None:
    for module in (eventsource, eventsource.events, registry_module):
        for name in (
            "EventRegistry",
            "default_registry",
            "register_event",
            "get_event_class",
            "get_event_class_or_none",
            "is_event_registered",
            "list_registered_events",
            "EventTypeNotFoundError",
            "DuplicateEventTypeError",
        ):
            assert getattr(module, name) is getattr(registry_module, name), (module, name)
