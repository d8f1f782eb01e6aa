"""The counters every broker bus keeps, declared once; a broker's stats add only its extras.

`get_stats_dict()` lists a broker's fields in the order they have always had. Dataclass fields are
ordered base class first, so a broker's extras that belong between the delivery counts and the
failure counts live in a small base of their own listed *after* `BrokerStats` among the bases
(`class RedisEventBusStats(BrokerStats, _Recovered)`); extras after the failure counts derive
from `BrokerStats`; the times (`BrokerTimes`) come last.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

__all__ = ["BrokerStats", "BrokerTimes", "DeliveryCounts", "stats_dict"]


def stats_dict(stats: Any) -> dict[str, Any]:
    """A stats dataclass as a dict in field order, datetimes as ISO text."""
    out: dict[str, Any] = {}
    for field in fields(stats):
        value = getattr(stats, field.name)
        out[field.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


@dataclass
class DeliveryCounts:
    """Events sent, and events received and how their handling went."""

    events_published: int = 0
    events_consumed: int = 0
    events_processed_success: int = 0
    events_processed_failed: int = 0


@dataclass
class BrokerStats(DeliveryCounts):
    """The counters of every broker bus."""

    messages_sent_to_dlq: int = 0
    handler_errors: int = 0
    reconnections: int = 0

    def get_stats_dict(self) -> dict[str, Any]:
        """These counters (and times) by name, datetimes as ISO text."""
        return stats_dict(self)


@dataclass
class BrokerTimes:
    """When the bus last published, consumed, failed, and connected (None: not yet)."""

    last_publish_at: datetime | None = None
    last_consume_at: datetime | None = None
    last_error_at: datetime | None = None
    connected_at: datetime | None = None
