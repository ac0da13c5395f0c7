"""The records waiting on each partition a consumer holds, as `desk_consumer_lag_records`
exposes them (desk_platform.readiness.ConsumerProbe): one series a partition, and a partition
given to another member of the group is no longer counted here."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import TopicPartition

from desk_platform.metrics import Metrics
from desk_platform.readiness import ConsumerProbe


@dataclass
class FakeConsumer:
    """Offsets as Kafka would answer them for the partitions assigned."""

    committed_at: dict[int, int]
    ends: dict[int, int]
    topic: str = "t.ticket-events"

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(self.topic, n) for n in self.committed_at}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp.partition] for tp in tps}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    async def committed(self, tp: TopicPartition) -> int:
        return self.committed_at[tp.partition]


@dataclass
class FakeSubscriber:
    consumer: FakeConsumer | None = field(default=None)


def lag(metrics: Metrics) -> dict[str, float]:
    """The lag samples, by their labels as exposed."""
    return {
        line.split(" ")[0].removeprefix("desk_consumer_lag_records"): float(line.split(" ")[1])
        for line in metrics.render().decode().splitlines()
        if line.startswith("desk_consumer_lag_records{")
    }


async def test_lag_is_exposed_by_partition_and_forgotten_when_the_partition_goes() -> None:
    metrics = Metrics()
    subscriber = FakeSubscriber(FakeConsumer({0: 5, 1: 7}, {0: 8, 1: 7}))
    probe = ConsumerProbe(subscriber, "sla.ticket-events", 30.0, metrics)

    assert (await probe()).ok
    assert lag(metrics) == {
        '{group="sla.ticket-events",partition="0"}': 3.0,
        '{group="sla.ticket-events",partition="1"}': 0.0,
    }

    subscriber.consumer = FakeConsumer({1: 7}, {1: 9})  # partition 0 given to another member
    await probe()
    assert lag(metrics) == {'{group="sla.ticket-events",partition="1"}': 2.0}
