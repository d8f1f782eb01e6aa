"""The test helpers shipped for users: scenarios, builders and the pytest plugin's fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import BaseModel

from eventsource import (
    AggregateRepository,
    DeclarativeAggregate,
    DomainEvent,
    handles,
    register_event,
)
from eventsource.stores.interface import EventStore
from eventsource.testing import (
    AggregateScenario,
    ScenarioAssertionError,
    build_stream,
    event_factory,
)

pytest_plugins = ["eventsource.testing.pytest_plugin"]


@register_event
class Opened(DomainEvent):
    event_type: str = "HelperOpened"
    aggregate_type: str = "HelperAccount"
    owner: str


@register_event
class Deposited(DomainEvent):
    event_type: str = "HelperDeposited"
    aggregate_type: str = "HelperAccount"
    amount: int


class Balance(BaseModel):
    owner: str = ""
    amount: int = 0


class Account(DeclarativeAggregate[Balance]):
    aggregate_type = "HelperAccount"

    def _get_initial_state(self) -> Balance:
        return Balance()

    @handles(Opened)
    def _opened(self, event: Opened) -> None:
        self._state = Balance(owner=event.owner)

    @handles(Deposited)
    def _deposited(self, event: Deposited) -> None:
        assert self._state is not None
        self._state = Balance(owner=self._state.owner, amount=self._state.amount + event.amount)

    def deposit(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.apply_event(Deposited(
            aggregate_id=self.aggregate_id, amount=amount, aggregate_version=self.get_next_version()
        ))


def test_scenario_checks_events_state_and_errors() -> None:
    make_opened = event_factory(Opened, owner="Ada")
    scenario = AggregateScenario(Account).given(make_opened())
    scenario.when(lambda a: a.deposit(5)).then(Deposited).then_state(lambda s: s.amount == 5)
    AggregateScenario(Account).given(make_opened()).when(lambda a: a.deposit(7)).then(
        Deposited(aggregate_id=uuid4(), amount=7)
    )
    AggregateScenario(Account).when(lambda a: a.deposit(0)).then_raises(ValueError, "positive")


def test_scenario_reports_what_happened_instead() -> None:
    with pytest.raises(ScenarioAssertionError, match=r"HelperDeposited|Deposited"):
        AggregateScenario(Account).given(Opened(aggregate_id=uuid4(), owner="x")).when(
            lambda a: a.deposit(3)
        ).then(Deposited(aggregate_id=uuid4(), amount=4))
    with pytest.raises(ScenarioAssertionError, match="raised ValueError"):
        AggregateScenario(Account).when(lambda a: a.deposit(-1)).then(Deposited)
    with pytest.raises(ScenarioAssertionError, match="no error"):
        AggregateScenario(Account).given(Opened(aggregate_id=uuid4(), owner="x")).when(
            lambda a: a.deposit(1)
        ).then_raises(ValueError)


def test_builders_give_consecutive_versions_and_times() -> None:
    make = event_factory(Deposited, amount=1)
    first, second = make(), make(amount=2)
    assert (first.aggregate_version, second.aggregate_version) == (1, 2)
    assert first.aggregate_id == second.aggregate_id
    assert second.amount == 2
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tenant = uuid4()
    stream = build_stream(
        (Opened, {"owner": "Ada"}), (Deposited, {"amount": 3}), start=start, tenant_id=tenant
    )
    assert [e.aggregate_version for e in stream] == [1, 2]
    assert stream[1].occurred_at - stream[0].occurred_at == timedelta(seconds=1)
    assert {e.tenant_id for e in stream} == {tenant}


async def test_any_event_store_fixture_runs_on_every_backend(any_event_store: EventStore) -> None:
    repo = AggregateRepository(any_event_store, Account, "HelperAccount")
    account = repo.create_new(uuid4())
    account.apply_event(Opened(aggregate_id=account.aggregate_id, owner="Ada"))
    account.deposit(10)
    await repo.save(account)
    loaded = await repo.load(account.aggregate_id)
    assert loaded.state == Balance(owner="Ada", amount=10)
