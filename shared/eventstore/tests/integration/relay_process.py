"""A relay in its own process, for the kill -9 test.

python relay_process.py URL SCHEMA BOOTSTRAP TOPIC
"""

from __future__ import annotations

import asyncio
import sys

from desk_eventstore.relay import OutboxRelay, idempotent_producer


async def main(url: str, schema: str, bootstrap: str, topic: str) -> None:
    producer = idempotent_producer(bootstrap, "relay-under-test")
    await producer.start()
    relay = OutboxRelay(url, schema, producer, lambda _: topic, source="/test", batch_size=100)
    try:
        await relay.run(asyncio.Event())
    finally:
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
