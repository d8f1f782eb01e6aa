"""A tour of eventsource on its embedded default store: a SQLite file, no server.

Run it twice: the second run finds the events of the first in the same file.
    python examples/demo.py [path/to/events.db]      (default: ./eventsource-demo.db)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from uuid import UUID, uuid4

from pydantic import BaseModel

from eventsource import (
    AggregateRepository,
    DeclarativeAggregate,
    DomainEvent,
    OptimisticLockError,
    SQLiteEventStore,
    handles,
    register_event,
)


@register_event
class AccountOpened(DomainEvent):
    event_type: str = "AccountOpened"
    aggregate_type: str = "Account"
    owner: str


@register_event
class MoneyDeposited(DomainEvent):
    event_type: str = "MoneyDeposited"
    aggregate_type: str = "Account"
    amount: int


class AccountState(BaseModel):
    owner: str = ""
    balance: int = 0


class Account(DeclarativeAggregate[AccountState]):
    aggregate_type = "Account"

    def _get_initial_state(self) -> AccountState:
        return AccountState()

    @handles(AccountOpened)
    def _on_opened(self, event: AccountOpened) -> None:
        self._state = AccountState(owner=event.owner)

    @handles(MoneyDeposited)
    def _on_deposited(self, event: MoneyDeposited) -> None:
        assert self._state is not None
        self._state = self._state.model_copy(update={"balance": self._state.balance + event.amount})

    def open(self, owner: str) -> None:
        self.apply_event(AccountOpened(
            aggregate_id=self.aggregate_id, owner=owner, aggregate_version=self.get_next_version()
        ))

    def deposit(self, amount: int) -> None:
        self.apply_event(MoneyDeposited(
            aggregate_id=self.aggregate_id, amount=amount, aggregate_version=self.get_next_version()
        ))


async def main(path: str) -> None:
    async with SQLiteEventStore(path) as store:
        await store.initialize()
        before = await store.get_global_position()
        print(f"Store {path}: {before} events from earlier runs")

        accounts = AggregateRepository(store, Account, "Account")
        account_id: UUID = uuid4()
        account = accounts.create_new(account_id)
        account.open("Ada")
        account.deposit(100)
        account.deposit(50)
        await accounts.save(account)
        print(f"Opened account {account_id} for Ada; saved at version {account.version}")

        loaded = await accounts.load(account_id)
        assert loaded.state is not None
        print(f"Reloaded: owner={loaded.state.owner} balance={loaded.state.balance} "
              f"version={loaded.version}")

        first, second = await accounts.load(account_id), await accounts.load(account_id)
        first.deposit(10)
        second.deposit(20)
        await accounts.save(first)
        try:
            await accounts.save(second)
        except OptimisticLockError as exc:
            print(f"Concurrent save refused: expected v{exc.expected_version}, "
                  f"store is at v{exc.actual_version}")
            retry = await accounts.load(account_id)
            retry.deposit(20)
            await accounts.save(retry)
            assert retry.state is not None
            print(f"Retried after reload: balance={retry.state.balance} version={retry.version}")

        print("All events in the store, in global order:")
        async for stored in store.read_all():
            event = stored.event
            detail = getattr(event, "owner", None) or getattr(event, "amount", "")
            stream = stored.stream_id[:8]
            print(f"  #{stored.global_position:<4} {stream}… v{stored.stream_position} "
                  f"{event.event_type} {detail}")
        print(f"{await store.get_global_position() - before} events added by this run")


if __name__ == "__main__":
    db = sys.argv[1] if len(sys.argv) > 1 else str(Path.cwd() / "eventsource-demo.db")
    asyncio.run(main(db))
