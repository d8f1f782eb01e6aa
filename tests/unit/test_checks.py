"""The shared range checks of settings: where each bound lies, and the message it gives."""

from __future__ import annotations

import pytest

from eventsource._checks import at_least, greater_than, within_unit
from eventsource.bus.memory import InMemoryEventBus
from eventsource.repositories.outbox import InMemoryOutboxRepository
from eventsource.repositories.outbox_relay import OutboxRelay


def test_at_least_accepts_the_minimum_and_names_the_setting_below_it() -> None:
    at_least("batch_size", 1, 1)
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0$"):
        at_least("batch_size", 0, 1)


def test_greater_than_rejects_the_bound_itself() -> None:
    greater_than("poll_interval", 0.001, 0)
    with pytest.raises(ValueError, match=r"^poll_interval must be > 0, got 0$"):
        greater_than("poll_interval", 0, 0)


@pytest.mark.parametrize("value", [0, 0.5, 1])
def test_within_unit_accepts_both_ends(value: float) -> None:
    within_unit("jitter", value)


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_within_unit_rejects_values_outside(value: float) -> None:
    with pytest.raises(ValueError, match=rf"^jitter must be within \[0, 1\], got {value}$"):
        within_unit("jitter", value)


def test_the_outbox_relay_names_the_setting_it_refuses() -> None:
    outbox, bus = InMemoryOutboxRepository(), InMemoryEventBus()
    OutboxRelay(outbox, bus, cleanup_after_days=None)  # no cleanup: nothing to check
    OutboxRelay(outbox, bus, cleanup_after_days=0)
    with pytest.raises(ValueError, match=r"^cleanup_after_days must be >= 0, got -1$"):
        OutboxRelay(outbox, bus, cleanup_after_days=-1)
    with pytest.raises(ValueError, match=r"^poll_interval must be > 0, got 0$"):
        OutboxRelay(outbox, bus, poll_interval=0)
