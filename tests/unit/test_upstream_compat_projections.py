"""Issue 20, groups 3 and 12: the projection fan-out helpers and protocols, and the subscription
state machine, imported from the module paths eventsource-py 0.2.0 documents and checked to be
the working objects.

Data, as in test_upstream_compat.py (whose helpers this uses). The behaviour is tested in
tests/unit/test_projection_coordinator.py (group 3) and
tests/unit/subscriptions/test_subscription_state_machine.py (group 12).
"""

from __future__ import annotations

import inspect

import pytest
from test_upstream_compat import _has, _ids, _imported

PROJECTIONS = "eventsource.projections"
COORDINATOR = "eventsource.projections.coordinator"
PROTOCOLS = "eventsource.projections.protocols"
SUBS = "eventsource.subscriptions"
SUBSCRIPTION = "eventsource.subscriptions.subscription"

DISPATCH = ("dispatch", "dispatch_many")
_GROUP_3 = {
    "ProjectionRegistry": (
        "register_projection", "register_handler", "unregister_projection",
        "unregister_handler", *DISPATCH, "reset_all", "projections", "handlers",
        "get_projection_count", "get_handler_count",
    ),
    "ProjectionCoordinator": (
        "dispatch_events", "rebuild_all", "rebuild_projection", "catchup",
        "get_projection_info", "health_check",
    ),
    "SubscriberRegistry": ("register", "unregister", "get_subscribers_for", *DISPATCH),
    "SyncProjection": ("handle", "reset"),
    "EventHandlerBase": ("can_handle", "handle"),
}
_PROTOCOLS = {
    "EventHandler": ("handle",),
    "SyncEventHandler": ("handle",),
    "EventSubscriber": ("subscribed_to", "handle"),
    "AsyncEventHandler": ("handle", "event_types", "can_handle"),
}
_GROUP_12 = {
    "Subscription": (
        "transition_to", "pause", "resume", "wait_if_paused", "state_before_pause",
        "paused_at", "pause_reason", "is_paused", "record_event_processed",
        "record_event_failed", "set_error", "recent_errors", "state", "previous_state",
        "is_running", "is_terminal", "get_status",
    ),
    "SubscriptionState": ("STARTING", "CATCHING_UP", "LIVE", "PAUSED", "STOPPED", "ERROR"),
    "PauseReason": ("MANUAL",),
}

CLASSES: dict[tuple[str, str], tuple[str, ...]] = {
    **{(module, name): members
       for module in (PROJECTIONS, COORDINATOR) for name, members in _GROUP_3.items()},
    **{(module, name): members
       for module in (PROJECTIONS, PROTOCOLS) for name, members in _PROTOCOLS.items()},
    **{(module, name): members
       for module in (SUBS, SUBSCRIPTION) for name, members in _GROUP_12.items()},
}


@pytest.mark.parametrize(("path", "members"), CLASSES.items(), ids=_ids(CLASSES))
def test_class_has_its_documented_members(path: tuple[str, str], members: tuple[str, ...]) -> None:
    cls = _imported(*path)
    assert isinstance(cls, type)
    assert [m for m in members if not _has(cls, m)] == []


def test_every_path_gives_the_same_object() -> None:
    for name in _GROUP_3:
        assert _imported(PROJECTIONS, name) is _imported(COORDINATOR, name), name
    for name in _PROTOCOLS:
        assert _imported(PROTOCOLS, name) is _imported("eventsource.protocols", name), name
        assert _imported(PROJECTIONS, name) is _imported(PROTOCOLS, name), name
    for name in (*_GROUP_12, "VALID_TRANSITIONS", "is_valid_transition", "EventHandler",
                 "BatchHandler"):
        assert _imported(SUBS, name) is _imported(SUBSCRIPTION, name), name


def test_the_abstract_contracts_cannot_be_instantiated() -> None:
    for name in ("SyncProjection", "EventHandlerBase"):
        assert inspect.isabstract(_imported(PROJECTIONS, name)), name


def test_the_transition_table_and_its_check() -> None:
    """Group 12's module-level names: the table of legal moves and the function reading it."""
    state = _imported(SUBS, "SubscriptionState")
    table = _imported(SUBS, "VALID_TRANSITIONS")
    valid = _imported(SUBS, "is_valid_transition")
    assert set(table) == set(state)
    for source in state:
        for target in state:
            assert valid(source, target) == (target in table[source]), (source, target)
    assert valid(state.STARTING, state.CATCHING_UP)
    assert valid(state.LIVE, state.PAUSED)
    assert not valid(state.STOPPED, state.LIVE)  # a stopped subscription starts again first
    for alias in ("EventHandler", "BatchHandler"):
        assert _imported(SUBSCRIPTION, alias) is not None
