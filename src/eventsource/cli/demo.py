"""`eventsource demo`: seed a store with a small, fixed sample to try the commands on.

Every id and time is fixed, so the output of the other commands on a demo store is the same
everywhere (the tests compare `streams show --json` with a golden file). The sample's
classes and a projection that handles them come with `--app eventsource.cli.demo:app`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import click

from eventsource.cli._app import CliApp
from eventsource.cli._backend import Backend
from eventsource.cli._context import Settings, yes_option
from eventsource.cli._runner import runs_async
from eventsource.cli._schema import table_states
from eventsource.events.base import DomainEvent
from eventsource.events.registry import EventRegistry
from eventsource.snapshots.interface import Snapshot

__all__ = ["ACCOUNT_1", "ORDER_1", "REGISTRY", "AccountBalances", "app", "command"]

REGISTRY = EventRegistry()  # not the default one: importing the demo registers nothing

ACCOUNT_1 = UUID("a1000000-0000-4000-8000-000000000001")
ACCOUNT_2 = UUID("a1000000-0000-4000-8000-000000000002")
ACCOUNT_3 = UUID("a1000000-0000-4000-8000-000000000003")
ORDER_1 = UUID("0d000000-0000-4000-8000-000000000001")
ORDER_2 = UUID("0d000000-0000-4000-8000-000000000002")
_START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
PROJECTION = "AccountBalances"


class _AccountEvent(DomainEvent):
    aggregate_type: str = "Account"


class _OrderEvent(DomainEvent):
    aggregate_type: str = "Order"


class AccountOpened(_AccountEvent):
    event_type: str = "AccountOpened"
    owner: str


class MoneyDeposited(_AccountEvent):
    event_type: str = "MoneyDeposited"
    amount: float


class MoneyWithdrawn(_AccountEvent):
    event_type: str = "MoneyWithdrawn"
    amount: float


class OrderPlaced(_OrderEvent):
    event_type: str = "OrderPlaced"
    items: int
    total: float


class OrderShipped(_OrderEvent):
    event_type: str = "OrderShipped"
    carrier: str


for _cls in (AccountOpened, MoneyDeposited, MoneyWithdrawn, OrderPlaced, OrderShipped):
    REGISTRY.register(_cls)

# (class, aggregate id, payload), appended one by one in this order: the global log.
_SAMPLE: list[tuple[type[DomainEvent], UUID, dict[str, Any]]] = [
    (AccountOpened, ACCOUNT_1, {"owner": "Ada"}),
    (MoneyDeposited, ACCOUNT_1, {"amount": 100.0}),
    (AccountOpened, ACCOUNT_2, {"owner": "Grace"}),
    (OrderPlaced, ORDER_1, {"items": 2, "total": 30.0}),
    (MoneyDeposited, ACCOUNT_2, {"amount": 200.0}),
    (MoneyDeposited, ACCOUNT_1, {"amount": 50.0}),
    (OrderShipped, ORDER_1, {"carrier": "post"}),
    (MoneyWithdrawn, ACCOUNT_1, {"amount": 30.0}),
    (AccountOpened, ACCOUNT_3, {"owner": "Linus"}),
    (OrderPlaced, ORDER_2, {"items": 1, "total": 12.5}),
    (MoneyWithdrawn, ACCOUNT_2, {"amount": 500.0}),
]
_CHECKPOINT_AT = 7  # the projection's checkpoint: behind the last events
_DEAD_LETTER = 11  # ... and it failed on this one (an overdraft)


class AccountBalances:
    """The sample projection: account balances in memory."""

    projection_name = PROJECTION

    def __init__(self) -> None:
        self.balances: dict[UUID, float] = {}

    def subscribed_to(self) -> list[type[DomainEvent]]:
        return [AccountOpened, MoneyDeposited, MoneyWithdrawn]

    async def handle(self, event: DomainEvent) -> None:
        balance = self.balances.get(event.aggregate_id, 0.0)
        if isinstance(event, MoneyDeposited):
            balance += event.amount
        elif isinstance(event, MoneyWithdrawn):
            balance -= event.amount
        self.balances[event.aggregate_id] = balance

    async def refuse_overdraft(self, event: DomainEvent) -> None:
        """How the sample's dead letter came about: an earlier version of this projection
        refused withdrawals it could not cover."""
        raise ValueError(f"balance would go below zero ({event.event_type} {event.event_id})")


def app() -> CliApp:
    """`--app eventsource.cli.demo:app`: the sample's classes and projection."""
    return CliApp(registry=REGISTRY, projections=[AccountBalances()])


def sample_events() -> list[DomainEvent]:
    """The sample, as events with fixed ids, times and stream versions."""
    versions: dict[UUID, int] = {}
    events = []
    for number, (cls, aggregate_id, payload) in enumerate(_SAMPLE, start=1):
        versions[aggregate_id] = versions.get(aggregate_id, 0) + 1
        events.append(cls(
            event_id=UUID(f"e0000000-0000-4000-8000-{number:012d}"),
            correlation_id=UUID(f"c0000000-0000-4000-8000-{number:012d}"),
            occurred_at=_START + timedelta(minutes=number),
            aggregate_id=aggregate_id,
            aggregate_version=versions[aggregate_id],
            **payload,
        ))
    return events


@click.command("demo")
@yes_option
@click.pass_obj
@runs_async
async def command(settings: Settings, yes: bool) -> None:
    """Seed the store with a small sample (creating the tables; a file if needed)."""
    from eventsource.cli.db import create_tables

    out = settings.out
    async with settings.backend(needs=(), create=True) as db:
        tables = await table_states(db)
        if all(state.ok for state in tables) and await _seeded(db):
            out.note(f"{db.url.shown} already holds the demo sample: nothing to do")
            return
        await settings.act(
            f"Will seed {db.url.shown} with the demo sample ({len(_SAMPLE)} events in 5 "
            "streams, a checkpoint, a dead letter, a snapshot, 2 outbox rows), creating "
            "missing tables",
            yes=yes,
            read=lambda: table_states(db),
            shown=tables,
        )
        await create_tables(db)
        await _seed(db)
    out.note(f"seeded {db.url.shown}; try: eventsource --url {db.url.shown} streams list")
    if out.json_mode:
        out.json({"seeded": True, "events": len(_SAMPLE)})


async def _seeded(db: Backend) -> bool:
    return await db.store.get_stream_version(ACCOUNT_1, "Account") > 0


async def _seed(db: Backend) -> None:
    store = db.store
    events = sample_events()
    for event in events:
        await store.append_events(event.aggregate_id, event.aggregate_type, [event], -1)
    at, failed = events[_CHECKPOINT_AT - 1], events[_DEAD_LETTER - 1]
    cursor = await store.cursor_for_position(_CHECKPOINT_AT)
    await db.checkpoints.save_position(
        PROJECTION, _CHECKPOINT_AT, at.event_id, at.event_type, cursor=cursor
    )
    try:  # raised, so the dead letter carries a stack trace like a real one
        await AccountBalances().refuse_overdraft(failed)
    except ValueError as error:
        await db.dlq.add_failed_event(
            failed.event_id, PROJECTION, failed.event_type, failed.model_dump(mode="json"),
            error, retry_count=3,
        )
    await db.snapshots.save_snapshot(Snapshot(
        aggregate_id=ACCOUNT_1, aggregate_type="Account", version=2,
        state={"owner": "Ada", "balance": 100.0}, schema_version=1, created_at=_START,
    ))
    await db.outbox.add_event(events[-2])
    await db.outbox.mark_failed(await db.outbox.add_event(events[-1]), "broker unreachable")
