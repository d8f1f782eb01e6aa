"""A consumer process for the SIGKILL test: appends each handled event id to a file.

Usage: python nats_killable_consumer.py NATS_URL SUBJECT_PREFIX RECORD_FILE
"""

from __future__ import annotations

import asyncio
import sys

from eventsource.bus.nats import NATSEventBus, NATSEventBusConfig
from eventsource.events.base import DomainEvent
from eventsource.testing.contract.bus import ContractPing


async def main(url: str, prefix: str, record: str) -> None:
    config = NATSEventBusConfig(
        servers=url, subject_prefix=prefix, consumer_name="doomed", batch_size=50, ack_wait=1.0
    )
    bus = NATSEventBus(config)
    with open(record, "a", buffering=1) as out:  # noqa: ASYNC230 - one short line per event

        async def handle(event: DomainEvent) -> None:
            out.write(f"{event.event_id}\n")
            await asyncio.sleep(0.01)  # slow: most of each batch is unacknowledged when killed

        bus.subscribe(ContractPing, handle)
        await bus.start_consuming()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
