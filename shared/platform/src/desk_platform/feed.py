"""A topic as every process reads it whole: all its partitions, without a consumer group, from
the first record, folded into a view the process keeps (nobody's offsets move).

`TopicFeed` is the reading: it has caught up once it has read up to the ends the partitions had
when it started (`caught_up`, `wait_caught_up`), then goes on following the topic, so a change
published later reaches the view about half a second after. A lost broker is tried again each
second, from where the feed was. What a record means is the subclass's (`fold`, `summary`): the
directory (`desk_platform.directory_feed`), the test clocks (`desk_platform.testclocks`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from desk_platform.readiness import Verdict

log = structlog.get_logger(__name__)

POLL_MS = 500  # how long one fetch waits for new records (and so how soon `stop` is seen)
RETRY_SECONDS = 1.0


class TopicFeed:
    """A process's reading of a whole topic (module); subclasses say what a batch changes."""

    skipped_event: ClassVar[str] = "feed_record_skipped"  # the log line of a record skipped

    def __init__(self, bootstrap_servers: str, topic: str, client_id: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.client_id = client_id
        self.skipped = 0  # records that could not be read
        self._caught_up = asyncio.Event()
        self._ends: dict[TopicPartition, int] | None = None  # the partitions' ends at start
        self._positions: dict[TopicPartition, int] = {}  # the next offset to read of each

    def fold(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Apply a fetched batch of records to the view."""
        raise NotImplementedError

    def summary(self) -> str:
        """What the view holds, for the log and the readiness check."""
        raise NotImplementedError

    def apply_each(
        self, batch: Mapping[TopicPartition, Sequence[Any]], apply: Callable[[Any], None]
    ) -> None:
        """`apply` each record of `batch` on its own: one that cannot be read is counted in
        `skipped`, logged with its position and skipped."""
        for tp, records in batch.items():
            for record in records:
                # any failure, not only the expected ValueError: a record that stopped the
                # feed would stop it again after every restart
                try:
                    apply(record)
                except Exception as error:
                    self.skipped += 1
                    log.warning(
                        self.skipped_event,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        reason=f"{type(error).__name__}: {error}"[:500],
                    )

    @property
    def caught_up(self) -> bool:
        """Has the feed read everything the topic held when it started?"""
        return self._caught_up.is_set()

    async def wait_caught_up(self) -> None:
        """Until the feed has caught up (at once when it has)."""
        await self._caught_up.wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the topic until `stop` is set; a broker that cannot be reached is tried again
        each second, from the offsets already read."""
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
                await self._follow(consumer, stop)
            except (KafkaError, OSError) as error:
                log.warning(
                    "feed_interrupted",
                    topic=self.topic,
                    error=f"{type(error).__name__}: {error}",
                    retry_in_s=RETRY_SECONDS,
                )
            finally:
                await consumer.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_SECONDS)

    async def _follow(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        partitions = await self._partitions()
        consumer.assign(partitions)
        unread = [tp for tp in partitions if tp not in self._positions]
        if unread:
            await consumer.seek_to_beginning(*unread)
        for tp in partitions:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
        if self._ends is None:
            self._ends = await consumer.end_offsets(partitions)
        while not stop.is_set():
            for tp in partitions:
                self._positions[tp] = await consumer.position(tp)
            if not self.caught_up and self._read_to(self._ends):
                self._caught_up.set()
                log.info("feed_caught_up", topic=self.topic, view=self.summary())
            batch = await consumer.getmany(timeout_ms=POLL_MS)
            if batch:
                self.fold(batch)

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the topic (KafkaError when it does not exist, or not yet with a
        leader for each partition)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
        )
        await admin.start()
        try:
            [described] = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        found = described.get("partitions") or []
        if described.get("error_code") or not found:
            raise KafkaError(f"topic {self.topic} not found (error {described.get('error_code')})")
        if any(p.get("leader", -1) < 0 for p in found):
            raise KafkaError(f"topic {self.topic}: a partition has no leader yet")
        return sorted(TopicPartition(self.topic, p["partition"]) for p in found)

    def _read_to(self, ends: Mapping[TopicPartition, int]) -> bool:
        return all(self._positions.get(tp, 0) >= end for tp, end in ends.items())

    async def probe(self) -> Verdict:
        """The readiness check: caught up, or how far the feed has read."""
        if self.caught_up:
            return Verdict(True, f"caught up: {self.summary()}")
        if self._ends is None:
            return Verdict(False, f"not reading {self.topic} yet (connecting)")
        left = sum(max(end - self._positions.get(tp, 0), 0) for tp, end in self._ends.items())
        return Verdict(False, f"reading {self.topic}: {left} records left to its end at start")
