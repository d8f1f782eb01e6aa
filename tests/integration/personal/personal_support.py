"""Shared pieces of the personal-data tests: marked events, an aggregate, and an opened store
with its key store on a real SQLite file or the real PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel

from eventsource import AggregateRoot, DomainEvent, register_event
from eventsource.personal import (
    LocalKEK,
    Personal,
    PersonalData,
    PostgreSQLKeyStore,
    SQLiteKeyStore,
    SubjectId,
)
from eventsource.stores.base import RowEventStore

NAME, STREET, SELLER_NAME = "Alice Plaintextname", "12 Secretstreet", "Bob Sellerplain"
PLAINTEXTS = (NAME, STREET, SELLER_NAME)


@register_event
class OrderPlaced(DomainEvent):
    """Two subjects: the buyer (name, and an address group) and the seller (name)."""

    event_type: str = "PersonalOrderPlaced"  # the default registry is shared: not the demo's name
    aggregate_type: str = "Order"
    buyer_id: Annotated[str, SubjectId("buyer")]
    seller_id: Annotated[str, SubjectId("seller")]
    buyer_name: Annotated[str, Personal(subject="buyer", replacement="[erased]")]
    buyer_street: Annotated[str | None, Personal(subject="buyer", group="address")] = None
    seller_name: Annotated[str, Personal(subject="seller", replacement="[erased]")]
    total: int = 0


@register_event
class OrderPaid(DomainEvent):
    """No marked field: the unprotected path."""

    event_type: str = "PersonalOrderPaid"
    aggregate_type: str = "Order"
    amount: int


class OrderState(BaseModel):
    """Marked like the events, so snapshots seal it (`PersonalSnapshotStore`)."""

    buyer_id: Annotated[str, SubjectId("buyer")] = ""
    seller_id: Annotated[str, SubjectId("seller")] = ""
    buyer_name: Annotated[str, Personal(subject="buyer", replacement="")] = ""
    seller_name: Annotated[str, Personal(subject="seller", replacement="")] = ""
    paid: int = 0


class Order(AggregateRoot[OrderState]):
    aggregate_type = "Order"

    def _get_initial_state(self) -> OrderState:
        return OrderState()

    def _apply(self, event: DomainEvent) -> None:
        state = self._state if self._state is not None else self._get_initial_state()
        if isinstance(event, OrderPlaced):
            state = state.model_copy(update={
                "buyer_id": event.buyer_id, "seller_id": event.seller_id,
                "buyer_name": event.buyer_name, "seller_name": event.seller_name,
            })
        elif isinstance(event, OrderPaid):
            state = state.model_copy(update={"paid": state.paid + event.amount})
        self._state = state

    def pay(self, amount: int) -> None:
        self.apply_event(OrderPaid(
            aggregate_id=self.aggregate_id, amount=amount,
            aggregate_version=self.get_next_version(),
        ))


def placed(order_id: UUID, buyer: str = "buyer-1", seller: str = "seller-1") -> OrderPlaced:
    return OrderPlaced(
        aggregate_id=order_id, aggregate_version=1, buyer_id=buyer, seller_id=seller,
        buyer_name=NAME, buyer_street=STREET, seller_name=SELLER_NAME, total=42,
    )


@dataclass
class Backend:
    """An opened store with `personal` attached, and raw access to its tables."""

    kind: str
    store: RowEventStore[Any]
    personal: PersonalData
    kek: LocalKEK
    kek_bytes: bytes
    path: Path | None = None  # SQLite
    pg_url: str | None = None  # PostgreSQL
    schema: str | None = None
    engine: Any = None
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def dump(self, *tables: str) -> str:
        """Every row of the tables, as text."""
        found: list[str] = []
        for table in tables or ("events", "event_outbox", "snapshots"):
            found.extend(str(row) for row in await self.query(f"SELECT * FROM {table}"))
        return "\n".join(found)

    async def query(self, sql: str, *args: object) -> list[Any]:
        """Run raw SQL (`?` placeholders on SQLite, `$n` on PostgreSQL), committed."""
        if self.path is not None:
            db = sqlite3.connect(self.path)
            try:
                rows = db.execute(sql, args).fetchall()
                db.commit()
                return rows
            finally:
                db.close()
        import asyncpg

        conn = await asyncpg.connect(self.pg_url, server_settings={"search_path": str(self.schema)})
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    def placeholder(self, n: int) -> str:
        return "?" if self.path is not None else f"${n}"

    async def new_personal(self, kek: LocalKEK | None = None, **options: Any) -> PersonalData:
        """Another `PersonalData` on the same key tables (as another process would have)."""
        key_store: Any = (
            SQLiteKeyStore(self.path) if self.path is not None else PostgreSQLKeyStore(self.engine)
        )
        return PersonalData(key_store, kek or self.kek, **options)


@asynccontextmanager
async def open_backend(kind: str, tmp_path: Path, *, attach: bool = True) -> AsyncIterator[Backend]:
    """A store with its outbox on `kind` ("sqlite": a file; "postgresql": a fresh schema,
    dropped afterwards), and a `PersonalData` on the same database."""
    kek_bytes = LocalKEK.generate()
    kek = LocalKEK(kek_bytes, "kek-1")
    if kind == "sqlite":
        from eventsource.stores.sqlite import SQLiteEventStore

        path = tmp_path / "events.db"
        sqlite_store = SQLiteEventStore(str(path), outbox_enabled=True)
        await sqlite_store.initialize()
        personal = PersonalData(SQLiteKeyStore(path), kek)
        backend = Backend(kind, sqlite_store, personal, kek, kek_bytes, path=path)
        async with _opened(backend, attach) as b:
            yield b
        return
    import asyncpg
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from conftest import require_postgres
    from eventsource.stores.postgresql import PostgreSQLEventStore

    url = require_postgres()
    schema = f"p_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1),
        connect_args={"server_settings": {"search_path": schema}},
    )
    try:
        pg_store = PostgreSQLEventStore(
            async_sessionmaker(engine, expire_on_commit=False), outbox_enabled=True
        )
        await pg_store.initialize()
        personal = PersonalData(PostgreSQLKeyStore(engine), kek)
        backend = Backend(
            kind, pg_store, personal, kek, kek_bytes, pg_url=url, schema=schema, engine=engine
        )
        async with _opened(backend, attach) as b:
            yield b
    finally:
        await engine.dispose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@asynccontextmanager
async def _opened(backend: Backend, attach: bool) -> AsyncIterator[Backend]:
    if attach:
        backend.personal.attach(backend.store)
    try:
        yield backend
    finally:
        for close in backend.closing:
            await close()
        await backend.personal.close()
        await backend.store.close()
