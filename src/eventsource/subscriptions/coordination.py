"""Coordination between instances of one deployment (0.2.0's
`eventsource.subscriptions.coordination`): leader election, heartbeats, shutdown notices and
work assignments, and a coordinator that tracks peers from them.

Nothing here moves messages between processes: publish what `create_heartbeat()` and
`create_shutdown_notification()` return on a channel of your own (the `*_TOPIC` names are the
agreed ones; `to_dict()`/`from_dict()` give JSON), and feed what arrives to `handle_heartbeat`,
`handle_peer_shutdown` and `handle_work_assignment`. `InMemoryLeaderElector` elects within one
process (tests, single-instance deployments); an elector across processes implements the
`LeaderElector` protocol. The subscription manager does not use these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol, TypeVar, get_type_hints, runtime_checkable

from eventsource.types import JSON

__all__ = [
    "COORDINATION_TOPIC_PREFIX",
    "HEARTBEAT_TOPIC",
    "SHUTDOWN_NOTIFICATIONS_TOPIC",
    "WORK_ASSIGNMENT_TOPIC",
    "HeartbeatCallback",
    "HeartbeatMessage",
    "InMemoryLeaderElector",
    "LeaderChangeCallback",
    "LeaderElector",
    "LeaderElectorWithLease",
    "PeerInfo",
    "PeerShutdownCallback",
    "PeerTimeoutCallback",
    "SharedLeaderState",
    "ShutdownIntent",
    "ShutdownNotification",
    "WorkAssignment",
    "WorkAssignmentCallback",
    "WorkRedistributionCoordinator",
]

logger = logging.getLogger(__name__)

COORDINATION_TOPIC_PREFIX = "__eventsource_coordination"
SHUTDOWN_NOTIFICATIONS_TOPIC = f"{COORDINATION_TOPIC_PREFIX}.shutdown"
HEARTBEAT_TOPIC = f"{COORDINATION_TOPIC_PREFIX}.heartbeat"
WORK_ASSIGNMENT_TOPIC = f"{COORDINATION_TOPIC_PREFIX}.work_assignment"

_Message = TypeVar("_Message")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _dump(message: object) -> JSON:
    return {f.name: _plain(getattr(message, f.name)) for f in fields(message)}  # type: ignore[arg-type]


def _load(cls: type[_Message], data: JSON) -> _Message:
    """Build `cls` from `_dump`'s output: ISO times, enum values and lists turned back."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value, kind = data[f.name], hints[f.name]
        if kind is datetime:
            value = datetime.fromisoformat(value)
        elif isinstance(kind, type) and issubclass(kind, Enum):
            value = kind(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return cls(**values)


class ShutdownIntent(Enum):
    """Why an instance is going away."""

    GRACEFUL = "graceful"
    PREEMPTION = "preemption"
    HEALTH_FAILURE = "health_failure"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class ShutdownNotification:
    """An instance telling its peers it is shutting down, with the subscriptions it had."""

    instance_id: str
    intent: ShutdownIntent
    initiated_at: datetime
    expected_completion_at: datetime
    subscriptions: tuple[str, ...] = ()
    in_flight_count: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> JSON:
        return _dump(self)

    @classmethod
    def from_dict(cls, data: JSON) -> ShutdownNotification:
        return _load(cls, data)

    @property
    def time_remaining_seconds(self) -> float:
        """Seconds until the expected completion (0 once past it)."""
        return max(0.0, (self.expected_completion_at - datetime.now(UTC)).total_seconds())

    @property
    def is_expired(self) -> bool:
        return self.time_remaining_seconds <= 0.0


@dataclass(frozen=True)
class HeartbeatMessage:
    """An instance saying it is alive, what it runs and how loaded it is."""

    instance_id: str
    timestamp: datetime
    subscriptions: tuple[str, ...] = ()
    in_flight_count: int = 0
    is_leader: bool = False
    load_factor: float = 0.0

    def to_dict(self) -> JSON:
        return _dump(self)

    @classmethod
    def from_dict(cls, data: JSON) -> HeartbeatMessage:
        return _load(cls, data)

    def is_stale(self, max_age_seconds: float = 15.0) -> bool:
        """Older than `max_age_seconds`."""
        return (datetime.now(UTC) - self.timestamp).total_seconds() > max_age_seconds


@dataclass(frozen=True)
class WorkAssignment:
    """The leader handing subscriptions from one instance to another."""

    target_instance_id: str
    subscriptions: tuple[str, ...]
    source_instance_id: str
    assigned_at: datetime
    priority: int = 0

    def to_dict(self) -> JSON:
        return _dump(self)

    @classmethod
    def from_dict(cls, data: JSON) -> WorkAssignment:
        return _load(cls, data)


LeaderChangeCallback = Callable[[bool], Awaitable[None]]
PeerShutdownCallback = Callable[[ShutdownNotification], Awaitable[None]]
HeartbeatCallback = Callable[[HeartbeatMessage], Awaitable[None]]
WorkAssignmentCallback = Callable[[WorkAssignment], Awaitable[None]]
PeerTimeoutCallback = Callable[[str], Awaitable[None]]


@runtime_checkable
class LeaderElector(Protocol):
    """What a leader-election backend provides."""

    @property
    def identity(self) -> str: ...

    @property
    def is_leader(self) -> bool: ...

    @property
    def current_leader(self) -> str | None: ...

    async def try_acquire(self, timeout: float = 10.0) -> bool: ...

    async def release(self) -> None: ...

    async def renew(self) -> bool: ...

    def on_leader_change(self, callback: LeaderChangeCallback) -> None: ...

    def remove_leader_change_callback(self, callback: LeaderChangeCallback) -> bool: ...


@runtime_checkable
class LeaderElectorWithLease(LeaderElector, Protocol):
    """A `LeaderElector` whose leadership is a lease of limited duration."""

    @property
    def lease_duration_seconds(self) -> float: ...

    @property
    def lease_remaining_seconds(self) -> float | None: ...

    async def wait_for_leadership(self, timeout: float | None = None) -> bool: ...


@dataclass
class SharedLeaderState:
    """Who leads, shared by the `InMemoryLeaderElector`s that compete."""

    current_leader: str | None = None


async def _notify_all(what: str, callbacks: list[Callable[[Any], Awaitable[None]]],
                      value: object) -> None:
    """Run each callback with `value`; a failing one is logged and the others still run."""
    for callback in list(callbacks):
        try:
            await callback(value)
        except Exception:
            logger.exception("%s callback %r failed", what, callback)


class InMemoryLeaderElector:
    """Leader election inside one process. Alone it always wins; electors sharing a
    `SharedLeaderState` compete and the first to `try_acquire()` leads until it releases."""

    def __init__(
        self,
        identity: str | None = None,
        shared_state: SharedLeaderState | None = None,
        *,
        _identity: str | None = None,
    ) -> None:
        name = identity if identity is not None else _identity
        if not name:
            raise ValueError("InMemoryLeaderElector needs an identity")
        self._identity = name
        self.shared_state = shared_state
        self._is_leader = False
        self._callbacks: list[LeaderChangeCallback] = []
        self._lock = asyncio.Lock()

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    @property
    def current_leader(self) -> str | None:
        if self.shared_state is not None:
            return self.shared_state.current_leader
        return self._identity if self._is_leader else None

    async def try_acquire(self, timeout: float = 10.0) -> bool:
        """Lead if nobody does; True when this elector leads afterwards."""
        async with self._lock:
            state = self.shared_state
            if state is not None:
                if state.current_leader not in (None, self._identity):
                    return False
                state.current_leader = self._identity
            await self._become(True)
            return True

    async def release(self) -> None:
        """Give leadership up (nothing happens when not leading)."""
        async with self._lock:
            await self._step_down()

    async def renew(self) -> bool:
        """An in-memory lease never expires: True while leading."""
        return self._is_leader

    async def force_lose_leadership(self) -> None:
        """Lose leadership as if the backend had revoked it (for tests)."""
        await self.release()

    def on_leader_change(self, callback: LeaderChangeCallback) -> None:
        """Call `callback(is_leader)` whenever leadership is won or lost."""
        self._callbacks.append(callback)

    def remove_leader_change_callback(self, callback: LeaderChangeCallback) -> bool:
        return _remove(self._callbacks, callback)

    async def _step_down(self) -> None:
        if not self._is_leader:
            return
        state = self.shared_state
        if state is not None and state.current_leader == self._identity:
            state.current_leader = None
        await self._become(False)

    async def _become(self, leader: bool) -> None:
        if self._is_leader != leader:
            self._is_leader = leader
            logger.info("%s %s leadership", self._identity, "won" if leader else "lost")
            await _notify_all("Leader change", self._callbacks, leader)


def _remove(callbacks: list[Any], callback: object) -> bool:
    if callback in callbacks:
        callbacks.remove(callback)
        return True
    return False


@dataclass
class PeerInfo:
    """What this instance knows of a peer: its last heartbeat and shutdown notice."""

    instance_id: str
    last_heartbeat: HeartbeatMessage | None = None
    shutdown_notification: ShutdownNotification | None = None
    stale_after_seconds: float = 15.0
    """Heartbeat age past which the peer is `stale` (the coordinator's timeout)."""

    @property
    def status(self) -> str:
        """`draining` (notice given), `terminated` (its deadline passed), `unknown` (no
        heartbeat yet), `stale` (last heartbeat older than `stale_after_seconds`) or
        `healthy`."""
        if self.shutdown_notification is not None:
            return "terminated" if self.shutdown_notification.is_expired else "draining"
        if self.last_heartbeat is None:
            return "unknown"
        return "stale" if self.last_heartbeat.is_stale(self.stale_after_seconds) else "healthy"

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The subscriptions its shutdown notice, else its last heartbeat, named."""
        if self.shutdown_notification is not None:
            return self.shutdown_notification.subscriptions
        return self.last_heartbeat.subscriptions if self.last_heartbeat is not None else ()


class WorkRedistributionCoordinator:
    """Tracks peers from the messages it is given and tells callbacks when a peer shuts
    down, beats, times out, or when work is assigned to this instance (see the module)."""

    def __init__(
        self,
        instance_id: str,
        leader_elector: LeaderElector | None = None,
        heartbeat_timeout_seconds: float = 15.0,
    ) -> None:
        self.instance_id = instance_id
        self.leader_elector = leader_elector
        self.heartbeat_timeout_seconds = heartbeat_timeout_seconds
        self._peers: dict[str, PeerInfo] = {}
        self._on_shutdown: list[PeerShutdownCallback] = []
        self._on_heartbeat: list[HeartbeatCallback] = []
        self._on_timeout: list[PeerTimeoutCallback] = []
        self._on_assignment: list[WorkAssignmentCallback] = []
        self._notification: ShutdownNotification | None = None

    @property
    def is_shutting_down(self) -> bool:
        return self._notification is not None

    @property
    def shutdown_notification(self) -> ShutdownNotification | None:
        return self._notification

    @property
    def known_peers(self) -> dict[str, PeerInfo]:
        return dict(self._peers)

    @property
    def healthy_peer_count(self) -> int:
        return sum(1 for peer in self._peers.values() if peer.status == "healthy")

    @property
    def draining_peers(self) -> list[PeerInfo]:
        return [peer for peer in self._peers.values() if peer.status == "draining"]

    def create_shutdown_notification(
        self,
        intent: ShutdownIntent,
        subscriptions: list[str] | tuple[str, ...],
        in_flight_count: int = 0,
        drain_timeout_seconds: float = 30.0,
        metadata: dict[str, Any] | None = None,
    ) -> ShutdownNotification:
        """This instance's shutdown notice, to publish; marks it shutting down."""
        now = datetime.now(UTC)
        self._notification = ShutdownNotification(
            self.instance_id, intent, now, now + timedelta(seconds=drain_timeout_seconds),
            tuple(subscriptions), in_flight_count, dict(metadata or {}),
        )
        return self._notification

    def create_heartbeat(
        self,
        subscriptions: list[str] | tuple[str, ...],
        in_flight_count: int = 0,
        load_factor: float = 0.0,
    ) -> HeartbeatMessage:
        """This instance's heartbeat, to publish (`is_leader` from the elector)."""
        elector = self.leader_elector
        return HeartbeatMessage(
            self.instance_id, datetime.now(UTC), tuple(subscriptions), in_flight_count,
            elector is not None and elector.is_leader, load_factor,
        )

    def _peer(self, instance_id: str) -> PeerInfo:
        peer = self._peers.get(instance_id)
        if peer is None:
            peer = self._peers[instance_id] = PeerInfo(
                instance_id, stale_after_seconds=self.heartbeat_timeout_seconds
            )
        return peer

    async def handle_peer_shutdown(self, notification: ShutdownNotification) -> None:
        """Record a peer's shutdown notice and run the callbacks (this instance's own is
        ignored)."""
        if notification.instance_id == self.instance_id:
            return
        self._peer(notification.instance_id).shutdown_notification = notification
        await _notify_all("Peer shutdown", self._on_shutdown, notification)

    async def handle_heartbeat(self, heartbeat: HeartbeatMessage) -> None:
        """Record a peer's heartbeat and run the callbacks (this instance's own is ignored)."""
        if heartbeat.instance_id == self.instance_id:
            return
        self._peer(heartbeat.instance_id).last_heartbeat = heartbeat
        await _notify_all("Heartbeat", self._on_heartbeat, heartbeat)

    async def handle_work_assignment(self, assignment: WorkAssignment) -> None:
        """Run the callbacks when `assignment` is for this instance."""
        if assignment.target_instance_id == self.instance_id:
            await _notify_all("Work assignment", self._on_assignment, assignment)

    async def check_peer_timeouts(self) -> list[str]:
        """The peers (with no shutdown notice) whose last heartbeat is older than
        `heartbeat_timeout_seconds`; the timeout callbacks run for each. Call it
        periodically."""
        late = [
            peer.instance_id for peer in self._peers.values()
            if peer.shutdown_notification is None and peer.last_heartbeat is not None
            and peer.last_heartbeat.is_stale(self.heartbeat_timeout_seconds)
        ]
        for instance_id in late:
            logger.warning("Peer %s missed its heartbeats", instance_id)
            await _notify_all("Peer timeout", self._on_timeout, instance_id)
        return late

    def remove_peer(self, instance_id: str) -> bool:
        return self._peers.pop(instance_id, None) is not None

    def get_orphaned_subscriptions(self) -> dict[str, tuple[str, ...]]:
        """The subscriptions of peers draining, terminated or stale, by peer."""
        return {
            peer.instance_id: peer.subscriptions for peer in self._peers.values()
            if peer.status in ("draining", "terminated", "stale") and peer.subscriptions
        }

    async def initiate_leadership_handoff(self) -> bool:
        """Release leadership before shutting down; False when not leading."""
        elector = self.leader_elector
        if elector is None or not elector.is_leader:
            return False
        await elector.release()
        return True

    def on_peer_shutdown(self, callback: PeerShutdownCallback) -> None:
        self._on_shutdown.append(callback)

    def remove_peer_shutdown_callback(self, callback: PeerShutdownCallback) -> bool:
        return _remove(self._on_shutdown, callback)

    def on_heartbeat(self, callback: HeartbeatCallback) -> None:
        self._on_heartbeat.append(callback)

    def remove_heartbeat_callback(self, callback: HeartbeatCallback) -> bool:
        return _remove(self._on_heartbeat, callback)

    def on_peer_timeout(self, callback: PeerTimeoutCallback) -> None:
        self._on_timeout.append(callback)

    def remove_peer_timeout_callback(self, callback: PeerTimeoutCallback) -> bool:
        return _remove(self._on_timeout, callback)

    def on_work_assignment(self, callback: WorkAssignmentCallback) -> None:
        self._on_assignment.append(callback)

    def remove_work_assignment_callback(self, callback: WorkAssignmentCallback) -> bool:
        return _remove(self._on_assignment, callback)
