"""How far behind the services downstream of a door are, in seconds, measured on Kafka.

A door (intake's HTTP API, the e-mail gateway) should stop admitting new work while what it
already admitted waits downstream, not only while its own outbox is full: the relay publishes
fast, and the queue forms in front of the consumers. For each watched consumer group,
`PipelineLag.read` takes its committed offsets and the topic's end offsets (one request per
group and one for every group's end offsets, however long the lag), so it knows how many records
the group has still to take and, from how fast its committed offsets moved since the last reads,
how fast it takes them: their ratio is the group's lag in seconds. The slowest group's is the
pipeline's.

A group that took nothing since the last read while records waited is stopped, not overloaded
(its service is down or stuck: its own `/ready` says so, and Kafka keeps what waits): its lag
counts as 0 here, so that a stopped consumer never closes the doors; the work admitted meanwhile
waits on Kafka, durably, for it to come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from desk_platform.settings import Settings

SMOOTHING = 0.3  # weight of the latest rate in the moving average


@dataclass
class GroupProgress:
    """One watched group's position: records it has still to take, how fast it takes them."""

    group: str
    topic: str
    waiting: int = 0
    taken: int = -1  # the sum of its committed offsets at the last read (-1: never read)
    at: float = 0.0
    rate: float = 0.0  # records per second while busy, smoothed (0: not measured yet)
    stalled: bool = False  # records waited and it took none since the last read

    def moved(self, waiting: int, taken: int, now: float) -> None:
        """Take in a new read of the group's committed and end offsets. The rate is measured
        only over intervals the group was busy throughout (records waiting at both reads): an
        idle group's pace is the arrivals', not what it can take."""
        busy = self.taken >= 0 and now > self.at and self.waiting > 0 and waiting > 0
        if busy:
            latest = max(taken - self.taken, 0) / (now - self.at)
            self.stalled = latest == 0
            if latest > 0:
                self.rate = latest if self.rate == 0 else (
                    SMOOTHING * latest + (1 - SMOOTHING) * self.rate
                )  # fmt: skip
        else:
            self.stalled = False
        self.waiting, self.taken, self.at = waiting, taken, now

    @property
    def seconds(self) -> float:
        """How long what waits takes at the group's rate (0 when nothing waits, when the rate
        is not measured yet, or when the group is stopped: see the module)."""
        if self.waiting == 0 or self.rate <= 0 or self.stalled:
            return 0.0
        return self.waiting / self.rate


def watched_groups(setting: str, topic: Callable[[str], str]) -> list[tuple[str, str]]:
    """`service@topic,...` (ADMISSION_LAG_GROUPS) as (group, topic) pairs: each service reads a
    topic in the group `<service>.<topic>` (`ServiceRuntime.subscribe`); `topic` names a topic
    as this deployment does (its prefix)."""
    pairs = []
    for item in filter(None, (part.strip() for part in setting.split(","))):
        service, _, name = item.partition("@")
        pairs.append((f"{service}.{topic(name)}", topic(name)))
    return pairs


class PipelineLag:
    """Reads the lag of the watched (group, topic) pairs (see the module)."""

    def __init__(
        self,
        bootstrap_servers: str,
        groups: Sequence[tuple[str, str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.progress = [GroupProgress(group, topic) for group, topic in groups]
        self.clock = clock
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._coordinators: dict[str, int] = {}

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
            offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers)
            await admin.start()
            try:
                await offsets.start()
            except Exception:
                await admin.close()
                raise
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def read(self) -> float:
        """The slowest watched group's lag in seconds (a failure closes the clients, so the
        next read starts afresh, and is raised)."""
        try:
            admin, offsets = await self._clients()
            committed = [await self._committed(admin, progress) for progress in self.progress]
            partitions = {p for of_group in committed for p in of_group}
            # one request for every group's partitions: groups of one topic share them
            ends: dict[TopicPartition, int] = (
                await offsets.end_offsets(list(partitions)) if partitions else {}
            )
        except Exception:
            await self.close()
            raise
        now = self.clock()
        for progress, of_group in zip(self.progress, committed, strict=True):
            if of_group:  # else the group has taken nothing yet
                waiting = sum(max(ends[p] - offset, 0) for p, offset in of_group.items())
                progress.moved(waiting, sum(of_group.values()), now)
        return max((p.seconds for p in self.progress), default=0.0)

    async def _committed(
        self, admin: AIOKafkaAdminClient, progress: GroupProgress
    ) -> dict[TopicPartition, int]:
        """The group's committed offset of each partition of its topic it has one for."""
        group = progress.group
        if group not in self._coordinators:
            self._coordinators[group] = await admin.find_coordinator(group)
        return {
            partition: at.offset
            for partition, at in (
                await admin.list_consumer_group_offsets(group, self._coordinators[group])
            ).items()
            if partition.topic == progress.topic and at.offset >= 0
        }

    async def close(self) -> None:
        """Close the clients (a later read opens new ones)."""
        admin, offsets = self._admin, self._offsets
        self._admin = self._offsets = None
        self._coordinators.clear()
        if offsets is not None:
            await offsets.stop()
        if admin is not None:
            await admin.close()


def pipeline_lag(settings: Settings) -> PipelineLag | None:
    """The lag reader of a door's admission (ADMISSION_LAG_GROUPS), None when not watched."""
    groups = watched_groups(settings.admission_lag_groups, settings.topic)
    if not groups or not settings.admission_max_lag_seconds:
        return None
    return PipelineLag(settings.kafka_bootstrap_servers, groups)
