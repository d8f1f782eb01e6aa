"""Issue 20, group 13: `eventsource.subscriptions.coordination` as eventsource-py 0.2.0
documents it: in-process leader election, the messages and their JSON form, and the
coordinator tracking peers from the messages it is given."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventsource.subscriptions.coordination import (
    HEARTBEAT_TOPIC,
    SHUTDOWN_NOTIFICATIONS_TOPIC,
    WORK_ASSIGNMENT_TOPIC,
    HeartbeatMessage,
    InMemoryLeaderElector,
    LeaderElector,
    PeerInfo,
    SharedLeaderState,
    ShutdownIntent,
    ShutdownNotification,
    WorkAssignment,
    WorkRedistributionCoordinator,
)


async def test_electors_sharing_state_compete() -> None:
    state = SharedLeaderState()
    first, second = InMemoryLeaderElector("w1", state), InMemoryLeaderElector("w2", state)
    changes: list[tuple[str, bool]] = []

    async def watch(is_leader: bool) -> None:
        changes.append(("w2", is_leader))

    second.on_leader_change(watch)
    assert isinstance(first, LeaderElector)
    assert await first.try_acquire()
    assert await first.try_acquire()  # already leading
    assert not await second.try_acquire()
    assert (state.current_leader, second.current_leader) == ("w1", "w1")
    assert await first.renew()
    assert not await second.renew()
    await first.release()
    assert not first.is_leader
    assert state.current_leader is None
    assert await second.try_acquire()
    await second.force_lose_leadership()
    assert changes == [("w2", True), ("w2", False)]
    assert second.remove_leader_change_callback(watch)
    assert not second.remove_leader_change_callback(watch)


async def test_a_lone_elector_always_leads() -> None:
    alone = InMemoryLeaderElector(_identity="solo")
    before = alone.current_leader
    assert await alone.try_acquire()
    assert (before, alone.identity, alone.current_leader) == (None, "solo", "solo")
    with pytest.raises(ValueError, match="identity"):
        InMemoryLeaderElector()


def test_messages_round_trip_through_json() -> None:
    now = datetime.now(UTC)
    messages: list[Any] = [
        ShutdownNotification("w1", ShutdownIntent.PREEMPTION, now, now + timedelta(seconds=30),
                             ("orders",), 3, {"zone": "b"}),
        HeartbeatMessage("w1", now, ("orders", "stock"), 2, True, 0.5),
        WorkAssignment("w2", ("orders",), "w1", now, priority=2),
    ]
    for message in messages:
        data = json.loads(json.dumps(message.to_dict()))
        assert type(message).from_dict(data) == message
    assert messages[0].to_dict()["intent"] == "preemption"
    assert HeartbeatMessage.from_dict({"instance_id": "w3", "timestamp": now.isoformat()}) == (
        HeartbeatMessage("w3", now)
    )
    assert {SHUTDOWN_NOTIFICATIONS_TOPIC, HEARTBEAT_TOPIC, WORK_ASSIGNMENT_TOPIC} == {
        "__eventsource_coordination.shutdown", "__eventsource_coordination.heartbeat",
        "__eventsource_coordination.work_assignment",
    }


def test_notification_and_heartbeat_ages() -> None:
    now = datetime.now(UTC)
    past = ShutdownNotification("w1", ShutdownIntent.GRACEFUL, now - timedelta(minutes=2),
                                now - timedelta(minutes=1))
    assert past.is_expired
    assert past.time_remaining_seconds == 0.0
    assert HeartbeatMessage("w1", now - timedelta(seconds=20)).is_stale()
    assert not HeartbeatMessage("w1", now).is_stale()
    assert PeerInfo("w9").status == "unknown"


async def test_coordinator_tracks_peers_and_runs_callbacks() -> None:
    elector = InMemoryLeaderElector("w1")
    await elector.try_acquire()
    me = WorkRedistributionCoordinator("w1", leader_elector=elector, heartbeat_timeout_seconds=5)
    heard: list[str] = []

    async def on_shutdown(notice: ShutdownNotification) -> None:
        heard.append(f"shutdown:{notice.instance_id}")

    async def on_beat(beat: HeartbeatMessage) -> None:
        heard.append(f"beat:{beat.instance_id}")

    async def on_timeout(instance_id: str) -> None:
        heard.append(f"timeout:{instance_id}")

    async def on_work(assignment: WorkAssignment) -> None:
        heard.append(f"work:{','.join(assignment.subscriptions)}")

    async def broken(beat: HeartbeatMessage) -> None:
        raise RuntimeError("callback bug")

    me.on_peer_shutdown(on_shutdown)
    me.on_heartbeat(broken)
    me.on_heartbeat(on_beat)
    me.on_peer_timeout(on_timeout)
    me.on_work_assignment(on_work)
    now = datetime.now(UTC)
    await me.handle_heartbeat(me.create_heartbeat(["mine"]))  # its own: ignored
    await me.handle_heartbeat(HeartbeatMessage("w2", now, ("orders",)))
    await me.handle_heartbeat(HeartbeatMessage("w3", now - timedelta(seconds=10), ("stock",)))
    later = WorkRedistributionCoordinator("w4").create_shutdown_notification(
        ShutdownIntent.GRACEFUL, ["billing"], drain_timeout_seconds=60)
    await me.handle_peer_shutdown(later)
    await me.handle_work_assignment(WorkAssignment("w1", ("stock",), "w3", now))
    await me.handle_work_assignment(WorkAssignment("w2", ("other",), "w3", now))
    assert await me.check_peer_timeouts() == ["w3"]
    assert heard == ["beat:w2", "beat:w3", "shutdown:w4", "work:stock", "timeout:w3"]
    assert set(me.known_peers) == {"w2", "w3", "w4"}
    assert me.healthy_peer_count == 1
    assert [p.instance_id for p in me.draining_peers] == ["w4"]
    assert me.get_orphaned_subscriptions() == {"w3": ("stock",), "w4": ("billing",)}
    assert me.create_heartbeat(["orders"]).is_leader
    notice = me.create_shutdown_notification(ShutdownIntent.MAINTENANCE, ["orders"], 4)
    assert me.is_shutting_down
    assert me.shutdown_notification == notice
    assert await me.initiate_leadership_handoff()
    assert not elector.is_leader
    assert not await me.initiate_leadership_handoff()
    assert me.remove_peer("w3")
    assert not me.remove_peer("w3")
    assert me.remove_heartbeat_callback(on_beat)
    assert not me.remove_peer_timeout_callback(on_beat)  # type: ignore[arg-type]
