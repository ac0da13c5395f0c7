"""Test helpers for reading what landed on a real Kafka topic."""

from __future__ import annotations


async def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list:  # type: ignore[type-arg]
    """Read a topic from the beginning until `expected` records arrived or `timeout` passed."""
    import asyncio
    import time

    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
        await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records
