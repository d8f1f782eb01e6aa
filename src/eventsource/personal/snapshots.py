"""`PersonalSnapshotStore`: snapshots whose state holds personal data, sealed like events.

An aggregate's state model marks its fields with the same `SubjectId` / `Personal` markers as
events. Wrap the snapshot store, naming the state model of each aggregate type:

    snapshots = PersonalSnapshotStore(SQLiteSnapshotStore(path), personal, {"Order": OrderState})

Saves seal the marked fields of the state (one key-store query at most), loads open them; once
a subject is forgotten its fields load as their replacements, so the aggregate still loads.
The associated data names the snapshot's aggregate type in place of an event type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from uuid import UUID

from pydantic import BaseModel

from eventsource.exceptions import PersonalDataDeclarationError
from eventsource.personal._hook import reveal, seal_fields
from eventsource.personal.markers import PersonalPlan, plan_of
from eventsource.personal.protection import PersonalData
from eventsource.snapshots.interface import Snapshot, SnapshotStore

__all__ = ["PersonalSnapshotStore"]


class PersonalSnapshotStore(SnapshotStore):
    """A snapshot store that seals personal data in the state of `states`' aggregate types."""

    def __init__(
        self,
        inner: SnapshotStore,
        personal: PersonalData,
        states: Mapping[str, type[BaseModel]],
    ) -> None:
        self._inner = inner
        self._personal = personal
        self._plans: dict[str, PersonalPlan] = {}
        for aggregate_type, model in states.items():
            plan = plan_of(model)
            if plan is None:
                raise PersonalDataDeclarationError(
                    f"{model.__qualname__} (state of {aggregate_type}) marks no personal data"
                )
            self._plans[aggregate_type] = plan

    @property
    def inner(self) -> SnapshotStore:
        """The wrapped snapshot store, which holds only sealed state."""
        return self._inner

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Seal, then save."""
        plan = self._plans.get(snapshot.aggregate_type)
        if plan is not None:
            state = dict(snapshot.state)
            with (await self._personal.keys_to_seal(_needs(plan, state))).active():
                seal_fields(plan, _place(snapshot.aggregate_type), state, None)
            snapshot = replace(snapshot, state=state)
        await self._inner.save_snapshot(snapshot)

    async def get_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> Snapshot | None:
        """Load, then open (erased fields as their replacements)."""
        snapshot = await self._inner.get_snapshot(aggregate_id, aggregate_type)
        plan = self._plans.get(aggregate_type)
        if snapshot is None or plan is None:
            return snapshot
        with (await self._personal.keys_for_subjects(_subjects(plan, snapshot.state))).active():
            state, _ = reveal(plan, _place(aggregate_type), snapshot.state, aggregate_id, "")
        return replace(snapshot, state=state)

    async def close(self) -> None:
        """Close the wrapped store (if it has anything to close)."""
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()

    async def delete_snapshot(self, aggregate_id: UUID, aggregate_type: str) -> bool:
        """Delete in the wrapped store."""
        return await self._inner.delete_snapshot(aggregate_id, aggregate_type)

    async def delete_snapshots_by_type(
        self, aggregate_type: str, schema_version_below: int | None = None
    ) -> int:
        """Delete in the wrapped store."""
        return await self._inner.delete_snapshots_by_type(aggregate_type, schema_version_below)


def _place(aggregate_type: str) -> str:
    return f"snapshot:{aggregate_type}"


def _subjects(plan: PersonalPlan, state: Mapping[str, object]) -> set[str]:
    return {str(state[f.subject_key]) for f in plan.fields if state.get(f.subject_key) is not None}


def _needs(plan: PersonalPlan, state: Mapping[str, object]) -> dict[str, set[str]]:
    needs: dict[str, set[str]] = {}
    for field in plan.fields:
        subject = state.get(field.subject_key)
        if subject is not None and state.get(field.key) is not None:
            needs.setdefault(str(subject), set()).add(field.group)
    return needs
