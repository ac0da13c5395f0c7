"""`DirectoryFeed` on the real Kafka: it catches up with what the topic held at its start, goes
on applying what is published later, skips (and logs) a record it cannot read without stopping,
waits for a topic that does not exist yet; `directory_first` answers 503 until it has caught
up."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from directory_topic import publish_directory
from fastapi import FastAPI

from desk_contracts.directory import (
    DirectoryEvent,
    PersonLinked,
    PersonRegistered,
    Profile,
    RoleGranted,
)
from desk_contracts.envelope import Envelope
from desk_contracts.topics import DIRECTORY
from desk_platform.directory_feed import DirectoryFeed, directory_first
from desk_platform.settings import Settings
from desk_policies.directory import Directory, import_events, load_directory

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SHIPPED = load_directory()
NEWCOMER = "newcomer@acme.example"


def settings(kafka_bootstrap: str, prefix: str) -> Settings:
    return Settings(
        database_url="postgresql://unused", kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
    )  # fmt: skip


async def create_topic(kafka_bootstrap: str, name: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


@pytest.fixture
async def prefix(kafka_bootstrap: str) -> str:
    """A topic prefix of this test's own, its directory topic made (3 partitions)."""
    name = f"feed-{uuid.uuid4().hex[:8]}."
    await create_topic(kafka_bootstrap, name + DIRECTORY)
    return name


@contextlib.asynccontextmanager
async def running(feed: DirectoryFeed) -> AsyncIterator[DirectoryFeed]:
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        yield feed
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def raw(kafka_bootstrap: str, topic: str, *records: tuple[bytes, bytes, list[Any]]) -> None:
    """Records as they are (key, value, headers), not through the portal's relay."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def envelope(kind: str, data: dict[str, Any], subject: str = "person:x@acme.example") -> Any:
    return Envelope(
        id=str(uuid.uuid4()), type=kind, source="/test", subject=subject, time=NOW, data=data
    ).to_kafka()


def garbage() -> list[tuple[bytes, bytes, list[Any]]]:
    """Four records no reader can apply: not JSON, no directory event, invalid data, and an
    event about someone nobody invited."""
    return [
        (b"person:x", b"{not json", [("ce_specversion", b"1.0"), ("ce_id", b"1"),
                                     ("ce_type", b"PersonLinked"), ("ce_source", b"/x")]),
        envelope("TicketCreated", {"ticket_id": "t-1"}),
        envelope("PersonLinked", {"occurred_at": NOW.isoformat(), "by": "x", "email": "nope"}),
        envelope("PersonLinked", {"occurred_at": NOW.isoformat(), "by": "x",
                                  "email": "ghost@acme.example", "organisation_id": "acme"}),
    ]  # fmt: skip


def entries(directory: Directory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The directory whatever the order its streams' partitions were read in."""
    return (
        {o.id: o for o in directory.organisations},
        {p.email: p for p in directory.people},
    )


async def eventually(probe: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> float:
    """Seconds until `probe()` holds."""
    started = time.monotonic()
    while True:
        result = probe()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"gave up waiting after {timeout}s")
        await asyncio.sleep(0.05)


def newcomer_linked() -> list[DirectoryEvent]:
    return [
        PersonRegistered(occurred_at=NOW, by=NEWCOMER, email=NEWCOMER,
                         profile=Profile(name="New Comer", language="fr")),
        PersonLinked(occurred_at=NOW, by="lea@desk.example", email=NEWCOMER,
                     organisation_id="acme"),
    ]  # fmt: skip


async def test_the_feed_catches_up_then_applies_later_changes_and_skips_what_it_cannot_read(
    kafka_bootstrap: str, prefix: str
) -> None:
    topic = prefix + DIRECTORY
    events = import_events(SHIPPED, now=NOW)
    await publish_directory(kafka_bootstrap, topic, events[:10])
    await raw(kafka_bootstrap, topic, *garbage())
    await publish_directory(kafka_bootstrap, topic, events[10:])
    feed = DirectoryFeed(settings(kafka_bootstrap, prefix))
    assert not feed.caught_up and feed.current == Directory()
    before = await feed.probe()
    assert not before.ok and before.detail == f"not reading {topic} yet (connecting)"

    with structlog.testing.capture_logs() as logs:
        async with running(feed):
            await asyncio.wait_for(feed.wait_caught_up(), 30)
            assert entries(feed.current) == entries(SHIPPED)
            assert feed.skipped == 4
            ready = await feed.probe()
            assert ready.ok, ready.detail
            assert ready.detail == "caught up: 9 people, 3 organisations (4 records skipped)"

            refused = feed.current.may_take_part(NEWCOMER, "acme", "saas-desk")
            assert refused is not None and "neither a person of organisation 'acme'" in refused
            await raw(kafka_bootstrap, topic, *garbage()[:1])
            await publish_directory(kafka_bootstrap, topic, newcomer_linked())
            seconds = await eventually(
                lambda: feed.current.may_take_part(NEWCOMER, "acme", "saas-desk") is None
            )
            assert seconds < 3, f"the link took {seconds:.1f} s to be seen"
            assert feed.current.language_of(NEWCOMER) == "fr"
            assert feed.skipped == 5

            lead = RoleGranted(occurred_at=NOW, by="max@desk.example", email=NEWCOMER,
                               desk_id="saas-desk", role="supervisor")  # fmt: skip
            await publish_directory(kafka_bootstrap, topic, [lead])
            await eventually(lambda: feed.current.may_be_assigned(NEWCOMER, "saas-desk") is None)

    skipped = [entry for entry in logs if entry["event"] == "directory_record_skipped"]
    assert len(skipped) == 5
    assert {entry["topic"] for entry in skipped} == {topic}
    assert all(isinstance(entry["offset"], int) for entry in skipped)
    reasons = [entry["reason"] for entry in skipped]
    assert any("value is not JSON" in reason for reason in reasons), reasons
    assert any("'TicketCreated' is not an event of the directory" in r for r in reasons), reasons
    assert any("ValidationError" in reason and "email" in reason for reason in reasons), reasons
    assert any("PersonLinked of 'ghost@acme.example', whom" in r for r in reasons), reasons
    caught_up = [entry for entry in logs if entry["event"] == "feed_caught_up"]
    assert [e["view"] for e in caught_up] == ["9 people, 3 organisations (4 records skipped)"]


async def test_an_empty_topic_is_caught_up_at_once(kafka_bootstrap: str, prefix: str) -> None:
    feed = DirectoryFeed(settings(kafka_bootstrap, prefix))
    async with running(feed):
        await asyncio.wait_for(feed.wait_caught_up(), 10)
        assert feed.current == Directory()


async def test_a_topic_that_does_not_exist_yet_is_waited_for(kafka_bootstrap: str) -> None:
    prefix = f"feed-later-{uuid.uuid4().hex[:8]}."
    feed = DirectoryFeed(settings(kafka_bootstrap, prefix))
    async with running(feed):
        await asyncio.sleep(1.5)
        assert not feed.caught_up
        assert not (await feed.probe()).ok
        await create_topic(kafka_bootstrap, prefix + DIRECTORY)
        await publish_directory(kafka_bootstrap, prefix + DIRECTORY, newcomer_linked())
        await asyncio.wait_for(feed.wait_caught_up(), 20)
        await eventually(lambda: feed.current.person(NEWCOMER) is not None)


async def test_the_service_answers_503_until_its_directory_is_read(
    kafka_bootstrap: str, prefix: str
) -> None:
    await publish_directory(kafka_bootstrap, prefix + DIRECTORY, import_events(SHIPPED, now=NOW))
    feed = DirectoryFeed(settings(kafka_bootstrap, prefix))
    app = FastAPI()

    @app.get("/people/{email}")
    async def person(email: str) -> dict[str, str | None]:
        found = feed.current.person(email)
        return {"name": found.name if found else None}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    transport = httpx.ASGITransport(app=directory_first(app, feed))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        waiting = await http.get("/people/anne@acme.example")
        assert waiting.status_code == 503 and waiting.headers["retry-after"] == "1"
        assert "still reading the directory" in waiting.json()["detail"]
        assert (await http.get("/health")).status_code == 200
        async with running(feed):
            await asyncio.wait_for(feed.wait_caught_up(), 30)
            answer = await http.get("/people/anne@acme.example")
            assert answer.status_code == 200 and answer.json() == {"name": "Anne Martin"}
