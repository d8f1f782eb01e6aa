"""A consumer process for the SIGKILL test: appends each event id it handles to a file.

Usage: python rabbitmq_killable_consumer.py AMQP_URL EXCHANGE RECORD_FILE
"""

from __future__ import annotations

import asyncio
import sys

from eventsource.bus.rabbitmq import RabbitMQEventBus, RabbitMQEventBusConfig
from eventsource.events.base import DomainEvent
from eventsource.testing.contract.bus import ContractPing


async def main(url: str, exchange: str, record: str) -> None:
    config = RabbitMQEventBusConfig(
        rabbitmq_url=url, exchange_name=exchange, consumer_name="doomed", prefetch_count=50
    )
    bus = RabbitMQEventBus(config)
    with open(record, "a") as out:  # noqa: ASYNC230 - one short line per event

        async def handle(event: DomainEvent) -> None:
            out.write(f"{event.event_id}\n")
            out.flush()
            await asyncio.sleep(0.01)  # slow: most of the prefetched messages are unacked

        bus.subscribe(ContractPing, handle)
        await bus.start_consuming()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
