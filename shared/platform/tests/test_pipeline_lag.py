"""The pipeline's lag read on the real Kafka broker (desk_platform.pipeline_lag): the records a
group has still to take, from its committed offsets and the topic's end offsets, and how long
they take at the rate its commits moved."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from desk_platform.pipeline_lag import PipelineLag

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_lag_of_a_group_is_read_from_its_offsets(
    kafka_bootstrap: str, new_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await new_topic("lag", partitions=2)
    group, idle = f"workflow.{uuid.uuid4().hex[:8]}", f"sla.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for n in range(100):
            await producer.send(topic, b"{}", partition=n % 2)
        await producer.flush()
    finally:
        await producer.stop()
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
    taker = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await taker.start()
    clock = Clock()
    lag = PipelineLag(kafka_bootstrap, [(group, topic), (idle, topic)], clock=clock)
    try:
        taker.assign([first, second])
        await taker.commit({first: 20, second: 20})
        assert await lag.read() == 0, "one read tells no rate yet"
        assert [p.waiting for p in lag.progress] == [60, 0]  # the idle group has taken nothing

        clock.now = 2.0
        await taker.commit({first: 30, second: 30})  # 20 records in 2 s
        assert await lag.read() == pytest.approx(40 / 10)
        assert lag.progress[0].waiting == 40
    finally:
        await taker.stop()
        await lag.close()


async def test_an_unreachable_broker_is_an_error_and_the_next_read_starts_afresh() -> None:
    lag = PipelineLag("127.0.0.1:1", [("workflow.x", "x")])
    with pytest.raises(Exception):  # noqa: B017 - whichever error aiokafka raises
        await lag.read()
    assert lag._admin is None  # closed, so the next read connects again
