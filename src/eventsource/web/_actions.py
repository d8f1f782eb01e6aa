"""The changes the web app can make (with `--allow-writes`): retry or resolve a dead letter,
reset a projection's checkpoint.

Each is two steps, like the command line's `act`: `plan_*` reads the state and says what will
be done (the confirmation page shows it, with the state it saw as `expect`); `do_*` re-reads
the state and changes nothing (`ConflictError`, HTTP 409) if it is no longer `expect`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsource.cli._errors import CliUsageError, ConflictError, NotFoundError
from eventsource.web._state import WebState

__all__ = ["KINDS", "apply", "plan", "target"]

BY = "eventsource-web"
KINDS = {"dlq": ("retry", "resolve"), "subscriptions": ("reset",)}


def target(kind: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """(action, key) of a change's URL (`/dlq/7/retry`); `NotFoundError` for no such change."""
    action, key = str(params["action"]), str(params["key"])
    if action not in KINDS.get(kind, ()):
        raise NotFoundError(f"there is no {action!r} for {kind}")
    return action, key


async def _dlq_status(state: WebState, key: str) -> tuple[str, Any]:
    """(status, entry) of dead letter `key`; `NotFoundError` if there is none."""
    entry = None
    if "dlq" in state.tables and key.isdigit():
        entry = await state.db.dlq.get_failed_event_by_id(int(key))
    if entry is None:
        raise NotFoundError(f"no dead letter with id {key}")
    return entry.status, entry


async def _checkpoint_position(state: WebState, key: str) -> str:
    data = None
    if "checkpoints" in state.tables:
        data = await state.db.checkpoints.get_checkpoint_data(key)
    if data is None:
        raise NotFoundError(f"no checkpoint named {key!r}")
    return str(data.global_position)


async def plan(state: WebState, action: str, key: str) -> tuple[str, str]:
    """(what `action` on `key` will do, the state it was planned on)."""
    if action == "reset":
        position = await _checkpoint_position(state, key)
        return (
            f"Reset the checkpoint of {key} (now at position {position}): the projection "
            "will handle every event again from the start",
            position,
        )
    status, entry = await _dlq_status(state, key)
    if status == "resolved" or (action == "retry" and status != "failed"):
        raise ConflictError(f"dead letter {key} is {status}: nothing to {action}")
    if action == "retry":
        if entry.projection_name not in state.app.projection_map():
            raise CliUsageError(
                f"retrying needs the projection {entry.projection_name}: start the app with "
                "--app module:factory returning CliApp(projections=[...]) with it"
            )
        return (
            f"Hand dead letter {key} ({entry.event_type} {entry.event_id}) to "
            f"{entry.projection_name} again",
            status,
        )
    return f"Mark dead letter {key} ({entry.event_type} {entry.event_id}) resolved", status


async def apply(state: WebState, action: str, key: str, expect: str) -> dict[str, Any]:
    """Do `action` on `key` if its state is still `expect`; what happened."""
    from eventsource.subscriptions.dead_letters import retry_dead_letters

    if action == "reset":
        if await _checkpoint_position(state, key) != expect:
            raise ConflictError(_CHANGED)
        await state.db.checkpoints.reset_checkpoint(key)
        return {"reset": key}
    status, entry = await _dlq_status(state, key)
    if status != expect:
        raise ConflictError(_CHANGED)
    if action == "resolve":
        await state.db.dlq.mark_resolved(int(key), BY)
        return {"resolved": [int(key)]}
    projection = state.app.projection_map().get(entry.projection_name)
    if projection is None:
        raise CliUsageError(f"retrying needs the projection {entry.projection_name}")
    result = await retry_dead_letters(
        state.db.dlq, projection, projection_name=entry.projection_name, resolved_by=BY,
        registry=state.app.registry, dlq_ids=[int(key)],
    )
    return {"resolved": result.resolved, "failed": result.failed,
            "undecodable": result.undecodable}


_CHANGED = "the state changed since it was shown; nothing was changed: look again"
