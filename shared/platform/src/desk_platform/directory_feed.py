"""The directory as a process reads it: the `directory` topic, folded from its first record.

`DirectoryFeed(settings)` reads every partition of the topic without a consumer group (nobody's
offsets move: each process keeps its own view), from the beginning, into `current` with the one
fold of the directory's events (`desk_policies.directory`). It has caught up once it has read up
to the ends the partitions had when it started (`caught_up`, `wait_caught_up`); then it goes on
following the topic, so a change the portal publishes later is in `current` about half a
second after. A record it cannot read (not a CloudEvent, not JSON, a type that is no directory
event, invalid data, an event about someone the directory does not know) is logged with its
position and skipped: no record stops the feed. A lost broker is tried again each second, from
where the feed was.

Code that needs the directory asks `feed.current` at that moment. `follow_directory` makes the
feed one of a service's background loops and its `directory` readiness check; `directory_first`
makes a service's own HTTP routes answer 503 until the feed has caught up (before, `current`
would not yet know the people a request names).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from desk_contracts.directory import DIRECTORY_EVENTS, DirectoryEvent
from desk_contracts.envelope import Envelope
from desk_contracts.topics import DIRECTORY
from desk_platform.readiness import OPERATIONS, Verdict
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.directory import Directory, DirectoryDraft

log = structlog.get_logger(__name__)

POLL_MS = 500  # how long one fetch waits for new records (and so how soon `stop` is seen)
RETRY_SECONDS = 1.0


def event_of(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
) -> DirectoryEvent:
    """The directory event a record of the topic carries; ValueError saying why it is none."""
    envelope = Envelope.from_kafka(key, value, headers)
    kind = DIRECTORY_EVENTS.get(envelope.type)
    if kind is None:
        raise ValueError(f"{envelope.type!r} is not an event of the directory")
    if envelope.schema_version != kind.schema_version:
        raise ValueError(
            f"{envelope.type} version {envelope.schema_version} (this reader knows version "
            f"{kind.schema_version})"
        )
    return kind.model_validate(dict(envelope.data))


class DirectoryFeed:
    """A process's view of the directory, folded from the topic and kept up to date (module)."""

    def __init__(self, settings: Settings, client_id: str = "directory-feed") -> None:
        self.bootstrap_servers = settings.kafka_bootstrap_servers
        self.topic = settings.topic(DIRECTORY)
        self.client_id = client_id
        self.current = Directory()
        self.skipped = 0  # records that could not be read
        self._caught_up = asyncio.Event()
        self._ends: dict[TopicPartition, int] | None = None  # the partitions' ends at start
        self._positions: dict[TopicPartition, int] = {}  # the next offset to read of each

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
                    "directory_feed_interrupted",
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
                log.info(
                    "directory_caught_up",
                    topic=self.topic,
                    people=len(self.current.people),
                    organisations=len(self.current.organisations),
                    skipped=self.skipped,
                )
            batch = await consumer.getmany(timeout_ms=POLL_MS)
            if batch:
                self._fold(batch)

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

    def _fold(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        """Apply a fetched batch to the view (one copy of it for the lot), each record on its
        own: one that cannot be read is logged and skipped."""
        draft = DirectoryDraft(self.current)
        for tp, records in batch.items():
            for record in records:
                # any failure, not only the expected ValueError: a record that stopped the
                # feed would stop it again after every restart
                try:
                    draft.apply(event_of(record.key, record.value, record.headers))
                except Exception as error:
                    self.skipped += 1
                    log.warning(
                        "directory_record_skipped",
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        reason=f"{type(error).__name__}: {error}"[:500],
                    )
        self.current = draft.directory()

    async def probe(self) -> Verdict:
        """The readiness check: caught up, or how far the feed has read."""
        if self.caught_up:
            return Verdict(
                True,
                f"caught up: {len(self.current.people)} people, "
                f"{len(self.current.organisations)} organisations "
                f"({self.skipped} records skipped)",
            )
        if self._ends is None:
            return Verdict(False, f"not reading {self.topic} yet (connecting)")
        left = sum(max(end - self._positions.get(tp, 0), 0) for tp, end in self._ends.items())
        return Verdict(False, f"reading {self.topic}: {left} records left to its end at start")


def follow_directory(runtime: ServiceRuntime) -> DirectoryFeed:
    """A feed for `runtime`'s service: one of its background loops and its `directory`
    readiness check (`/ready` fails until the feed has caught up)."""
    feed = DirectoryFeed(runtime.settings, client_id=f"{runtime.name}-directory")

    async def directory_feed(stop: asyncio.Event) -> None:
        await feed.run(stop)

    runtime.every(directory_feed)
    runtime.readiness.add("directory", feed.probe)
    return feed


class DirectoryFirst:
    """ASGI middleware: 503 (Retry-After: 1) on every route but `OPERATIONS` until the feed has
    caught up."""

    def __init__(self, app: ASGIApp, feed: DirectoryFeed) -> None:
        self.app = app
        self.feed = feed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        waiting = scope["type"] == "http" and not self.feed.caught_up
        if waiting and scope["path"] not in OPERATIONS:
            answer = JSONResponse(
                {"detail": "the service is still reading the directory: retry shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


def directory_first(app: FastAPI, feed: DirectoryFeed) -> FastAPI:
    """`app`, answering 503 until `feed` has caught up (see `DirectoryFirst`)."""
    app.add_middleware(DirectoryFirst, feed=feed)
    return app
