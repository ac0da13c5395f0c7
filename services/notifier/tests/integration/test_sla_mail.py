"""SLA warnings and breaches become internal mail, over the real Kafka, PostgreSQL and SMTP on
loopback (aiosmtpd): the notifier's two consumers (`ticket-events`, `sla-events`, in groups
named as the runtime names them) keep each request's published state and tell the assignee of a
coming and a passed breach, once each, and no customer. A warning for a request whose state has
not come yet is set aside with its reason (the consumer goes on with the rest) and told once it
has; too late, it is dropped. The one-off fill keeps the states of requests seen before."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from faststream.kafka import KafkaBroker
from kafka_support import create_topic
from prometheus_client import CollectorRegistry
from published import published_envelopes
from service_support import service_store
from system import free_port

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.sla import SlaBreached, SlaWarningReached
from desk_contracts.tickets import Channel, TicketAssigned, TicketCreated
from desk_contracts.topics import dead_letter
from desk_platform.consumer import EventConsumer, PoisonMessage
from desk_platform.deadletter import DeadLetters
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from notifier.adapters.kafka import events_together, on_sla_event, on_ticket_event
from notifier.adapters.metrics import NotificationMetrics
from notifier.adapters.templates import Templates
from notifier.application.delivery import Relay, Sender
from notifier.application.notify import Notifier
from notifier.application.sla_events import (
    SLA_SOURCE,
    TELL_WITHIN,
    release_waiting,
    waiting_now,
)
from notifier.entrypoints.keep_states import fill

pytestmark = pytest.mark.integration

NOTIFIER = Notifier(
    policies=load_policies(),
    directory=load_directory(),
    templates=Templates(),
    mail_domain="desk.example",
    portal_url="https://portal.desk.example",
)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANNE, PAUL, LEA = "anne@acme.example", "paul@desk.example", "lea@desk.example"
POLICY = NOTIFIER.policies["cloud-partner"]
WARNED_AT = NOW + timedelta(hours=3)  # the notifier's clock: the warnings' breach is ahead


def clock() -> datetime:
    """The notifier's clock in these tests."""
    return WARNED_AT


class Sink:
    """A real SMTP server's handler keeping what it accepted."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler, port = Sink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "notifier") as pool:
        yield pool


def story(key: str, assignee: str | None = PAUL) -> list[Event]:
    """Anne's cloud-partner request made in the portal (nobody is mailed of its creation),
    then assigned to `assignee` (or handed to a group only)."""
    ticket = str(uuid.uuid4())
    created = TicketCreated(
        ticket_id=ticket, occurred_at=NOW, key=key, policy_id="cloud-partner",
        request_type="support", priority="high", subject="Jira is slow",
        description="Since the upgrade", organisation_id="acme", requester_id=ANNE,
        created_by=ANNE, channel=Channel.PORTAL,
    )  # fmt: skip
    assigned = TicketAssigned(
        ticket_id=ticket, occurred_at=NOW, actor_id=LEA, actor_role="team_lead",
        from_status="submitted", to_status="submitted", assignee_id=assignee,
        group_id=None if assignee else "level2",
    )  # fmt: skip
    return [created, assigned]


def warning(ticket: str, armed_version: int = 2) -> SlaWarningReached:
    """The response clock's warning, fired 3 hours in: it breaches an hour later."""
    return SlaWarningReached(
        ticket_id=ticket, occurred_at=NOW + timedelta(hours=3), armed_version=armed_version,
        due_at=NOW + timedelta(hours=3), clock="response", priority="high",
        breach_at=NOW + timedelta(hours=4),
    )  # fmt: skip


def breach(ticket: str, armed_version: int = 2) -> SlaBreached:
    """The response clock's breach, 4 hours in."""
    return SlaBreached(
        ticket_id=ticket, occurred_at=NOW + timedelta(hours=4), armed_version=armed_version,
        due_at=NOW + timedelta(hours=4), clock="response", priority="high",
    )  # fmt: skip


def sla_envelope(event: Event, source: str = SLA_SOURCE) -> Envelope:
    """`event` as the sla service's relay publishes it on `sla-events` (no request state),
    with a deterministic id as sla gives it (the same clock and version: the same id)."""
    what = "/".join(str(event.model_dump().get(f)) for f in ("clock", "armed_version"))
    return Envelope(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{event.ticket_id}/{event.event_type}/{what}")),
        type=event.event_type,
        source=source,
        subject=event.ticket_id,
        time=event.occurred_at,
        data=event.model_dump(mode="json"),
    )


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Until `check` holds (failing after `timeout` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def send_all(pool: asyncpg.Pool, port: int) -> None:
    """Send every message due to the sink, as the sender loop does."""
    sender = Sender(pool, Relay("127.0.0.1", port, "support@desk.example"))
    while await sender.send_pending(datetime.now(UTC)):
        pass


async def test_the_assignee_gets_one_mail_per_warning_and_breach_and_an_unknown_request_waits(
    pool: asyncpg.Pool, sink: tuple[Sink, int], kafka_bootstrap: str, new_topic: Any
) -> None:
    handler, port = sink
    tickets, sla = await new_topic("tickets", partitions=1), await new_topic("sla", partitions=1)
    for topic in (tickets, sla):
        await create_topic(kafka_bootstrap, dead_letter(topic))
    known, later = story("SUP-1"), story("SUP-2")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()

    async def publish(topic: str, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            key, value, headers = envelope.to_kafka()
            await producer.send_and_wait(topic, value, key=key, headers=headers)

    broker = KafkaBroker(kafka_bootstrap)
    consumers = [
        EventConsumer(pool, DeadLetters(producer), f"notifier.{topic}", handle, retry_delay=0.1,
                      together=together)
        for topic, handle, together in (
            (tickets, on_ticket_event(NOTIFIER), events_together(NOTIFIER)),
            (sla, on_sla_event(NOTIFIER, clock), None),
        )
    ]  # fmt: skip
    for consumer, topic in zip(consumers, (tickets, sla), strict=True):
        consumer.subscribe(broker, topic, group_id=consumer.consumer)
    await publish(tickets, published_envelopes(known, POLICY))
    # the second request's warning comes first, before its state: it must not hold up the rest
    sla_events = [warning(later[0].ticket_id), warning(known[0].ticket_id)]
    sla_events += [breach(known[0].ticket_id)]
    await publish(sla, [sla_envelope(e) for e in sla_events])
    await publish(sla, [sla_envelope(breach(known[0].ticket_id))])  # sent again: told once
    await broker.start()
    releasing = asyncio.create_task(release_every(pool, 0.1))  # as the runtime's loop does
    try:
        # whichever consumer goes first: the known request's warning and breach are told
        await until(lambda: _count(pool, "SELECT count(*) FROM deliveries", 2))
        await send_all(pool, port)
        assert [(m["To"], m["Subject"]) for m in handler.received] == [
            (PAUL, "[SUP-1] Alerte SLA : délai de réponse (Haute) à échéance le "
                   "2026-03-02 14:00 CET : Jira is slow"),
            (PAUL, "[SUP-1] SLA dépassé : délai de réponse (Haute) : Jira is slow"),
        ]  # fmt: skip
        assert all(m["Auto-Submitted"] == "auto-generated" for m in handler.received)
        reason = await pool.fetchval("SELECT reason FROM sla_events_waiting")
        assert reason == f"request {later[0].ticket_id} not known yet (its state comes with " \
            "its ticket events)"  # fmt: skip

        await publish(tickets, published_envelopes(later, POLICY))  # its state comes at last
        await until(lambda: _count(pool, "SELECT count(*) FROM deliveries", 3))
        await send_all(pool, port)
    finally:
        releasing.cancel()
        await broker.stop()
        await producer.stop()
    assert [m["Subject"][:18] for m in handler.received[2:]] == ["[SUP-2] Alerte SLA"]
    assert {m["To"] for m in handler.received} == {PAUL}  # never Anne, the requester
    assert await pool.fetchval("SELECT count(*) FROM sla_events_waiting") == 0
    assert sum(c.dead_lettered for c in consumers) == 0


async def release_every(pool: asyncpg.Pool, seconds: float) -> None:
    """What the notifier's release loop does: tell the waiting SLA events that may go."""
    while True:
        await release_waiting(pool, NOTIFIER, WARNED_AT)
        await asyncio.sleep(seconds)


async def _count(pool: asyncpg.Pool, query: str, expected: int) -> bool:
    """Whether `query` counts `expected` rows."""
    return bool(await pool.fetchval(query) == expected)


async def handled(pool: asyncpg.Pool, envelopes: list[Envelope], events: list[Event]) -> None:
    """The consumers' handlers, each record in its own transaction (as one by one)."""
    for envelope, event in zip(envelopes, events, strict=True):
        handle = on_sla_event(NOTIFIER, clock) if envelope.source == SLA_SOURCE else None
        handle = handle or on_ticket_event(NOTIFIER)
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, envelope, event)


async def test_a_warning_armed_at_a_newer_version_waits_for_it_and_keeps_its_requests_order(
    pool: asyncpg.Pool,
) -> None:
    """Armed after the request went to a group (version 3), the warning is not told to the
    former assignee from version 2; the breach behind it waits too; both go to the team lead
    once version 3 is kept, the warning first."""
    events = story("SUP-3")
    ticket = events[0].ticket_id
    handed = TicketAssigned(
        ticket_id=ticket, occurred_at=NOW, actor_id=LEA, actor_role="team_lead",
        from_status="submitted", to_status="submitted", group_id="level2",
    )  # fmt: skip
    envelopes = published_envelopes([*events, handed], POLICY)
    await handled(pool, envelopes[:2], events)
    alarms: list[Event] = [warning(ticket, armed_version=3), breach(ticket, armed_version=3)]
    await handled(pool, [sla_envelope(e) for e in alarms], alarms)
    rows = await pool.fetch("SELECT event_type, reason FROM sla_events_waiting ORDER BY seq")
    assert [(r["event_type"], r["reason"]) for r in rows] == [
        ("SlaWarningReached",
         f"request {ticket} known at version 2, the timer was armed at version 3"),
        ("SlaBreached", f"behind an earlier SLA event of request {ticket} that still waits"),
    ]  # fmt: skip
    assert await release_waiting(pool, NOTIFIER, WARNED_AT) == 0  # nothing newer yet
    await handled(pool, envelopes[2:], [handed])
    assert await release_waiting(pool, NOTIFIER, WARNED_AT) == 2
    rows = await pool.fetch("SELECT recipient, subject FROM deliveries ORDER BY seq")
    assert [(r["recipient"], r["subject"][:26]) for r in rows] == [
        (LEA, "[SUP-3] Alerte SLA : délai"),
        (LEA, "[SUP-3] SLA dépassé : déla"),
    ]


async def test_a_warning_that_would_come_after_its_breach_is_dropped_the_breach_is_told(
    pool: asyncpg.Pool,
) -> None:
    events = story("SUP-6")
    ticket = events[0].ticket_id
    alarms: list[Event] = [warning(ticket), breach(ticket)]
    await handled(pool, [sla_envelope(e) for e in alarms], alarms)  # before its state
    await handled(pool, published_envelopes(events, POLICY), events)
    assert await release_waiting(pool, NOTIFIER, NOW + timedelta(hours=5)) == 2
    rows = await pool.fetch("SELECT recipient, subject FROM deliveries")
    assert [(r["recipient"], r["subject"][:19]) for r in rows] == [(PAUL, "[SUP-6] SLA dépassé")]
    assert await pool.fetchval("SELECT count(*) FROM sla_events_waiting") == 0
    late = warning(ticket).model_copy(update={"breach_at": WARNED_AT})  # told at its breach
    async with pool.acquire() as conn, conn.transaction():
        await on_sla_event(NOTIFIER, clock)(conn, sla_envelope(late), late)
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_sla_events_too_old_to_tell_are_dropped_not_mailed_nor_kept(
    pool: asyncpg.Pool,
) -> None:
    """A new group reading the topic's history (or a notifier back after days) does not mail
    the desk's past: an event older than TELL_WITHIN is dropped on arrival, and one set aside
    that grows as old is dropped by the release loop."""
    known, unknown = story("SUP-7"), story("SUP-8")
    await handled(pool, published_envelopes(known, POLICY), known)
    past = [breach(known[0].ticket_id), breach(unknown[0].ticket_id)]
    await handled(pool, [sla_envelope(e) for e in past], past)
    assert await pool.fetchval("SELECT count(*) FROM sla_events_waiting") == 1  # unknown's
    days_later = past[0].occurred_at + TELL_WITHIN + timedelta(minutes=1)
    late = on_sla_event(NOTIFIER, lambda: days_later)
    again = breach(known[0].ticket_id, armed_version=3).model_copy(update={"clock": "resolution"})
    async with pool.acquire() as conn, conn.transaction():
        await late(conn, sla_envelope(again), again)
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1  # the first breach only
    assert await release_waiting(pool, NOTIFIER, days_later) == 1  # unknown's, expired
    assert await pool.fetchval("SELECT count(*) FROM sla_events_waiting") == 0


async def test_an_sla_event_not_from_sla_is_a_poison_message(pool: asyncpg.Pool) -> None:
    forged = warning(str(uuid.uuid4()))
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(PoisonMessage, match="only sla sends it"):
            await on_sla_event(NOTIFIER, clock)(conn, sla_envelope(forged, "/desk/portal"), forged)


async def test_a_waiting_event_that_cannot_be_told_holds_its_request_only(
    pool: asyncpg.Pool,
) -> None:
    """A request kept with a desk this notifier does not know (its policy was removed, say):
    its warning is marked failed with the reason, its breach stays behind it, and another
    request's warning is told all the same."""
    odd, fine = story("SUP-4"), story("SUP-5")
    alarms: list[Event] = [warning(odd[0].ticket_id), breach(odd[0].ticket_id)]
    alarms.append(warning(fine[0].ticket_id))
    await handled(pool, [sla_envelope(e) for e in alarms], alarms)  # before any state
    await handled(pool, published_envelopes(fine, POLICY), fine)
    state = published_envelopes(odd, POLICY)[-1].request_state
    assert state is not None
    await pool.execute(
        "INSERT INTO request_states (ticket_id, version, state) VALUES ($1, $2, $3)",
        odd[0].ticket_id,
        2,
        json.dumps({**state, "policy_id": "gone-desk"}),
    )
    assert await release_waiting(pool, NOTIFIER, WARNED_AT) == 1
    rows = await pool.fetch("SELECT event_type, failed FROM sla_events_waiting ORDER BY seq")
    assert [(r["event_type"], r["failed"]) for r in rows] == [
        ("SlaWarningReached", "KeyError: 'gone-desk'"),
        ("SlaBreached", None),
    ]
    assert await release_waiting(pool, NOTIFIER, WARNED_AT) == 0  # still behind the failed one
    told = await pool.fetch("SELECT ticket_id, recipient FROM deliveries")
    assert [tuple(r) for r in told] == [(fine[0].ticket_id, PAUL)]
    registry = CollectorRegistry()  # what the notifier's /metrics shows of them
    NotificationMetrics(registry).sla_events_waiting(*await waiting_now(pool))
    assert registry.get_sample_value("desk_notifier_sla_events_waiting") == 2
    assert registry.get_sample_value("desk_notifier_sla_events_failed") == 1
    assert (registry.get_sample_value("desk_notifier_sla_events_oldest_waiting_seconds") or 0) > 0


async def test_the_kept_states_are_filled_from_the_topic_for_requests_seen_before(
    pool: asyncpg.Pool, kafka_bootstrap: str, new_topic: Any
) -> None:
    """A notifier that read its ticket events before it kept states: the one-off fill reads the
    topic from its beginning, keeps the newest state of each request (a record without one is
    skipped), and the warning waiting for one of them is told."""
    topic = await new_topic("tickets", partitions=1)
    first, second = story("SUP-9"), story("SUP-10", assignee=None)
    records = published_envelopes(first, POLICY) + published_envelopes(second, POLICY)
    records.append(replace_state(records[0], None))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for envelope in records:
            key, value, headers = envelope.to_kafka()
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
    alarm = warning(second[0].ticket_id)
    await handled(pool, [sla_envelope(alarm)], [alarm])  # waits: nothing kept yet
    assert await fill(pool, kafka_bootstrap, topic) == (4, 1)
    kept = await pool.fetch("SELECT ticket_id, version FROM request_states ORDER BY version")
    assert sorted(tuple(r) for r in kept) == sorted(
        [(first[0].ticket_id, 2), (second[0].ticket_id, 2)]
    )
    assert await release_waiting(pool, NOTIFIER, WARNED_AT) == 1
    rows = await pool.fetch("SELECT recipient FROM deliveries")
    assert [r["recipient"] for r in rows] == [LEA]  # nobody holds it: the team lead


def replace_state(envelope: Envelope, state: dict[str, Any] | None) -> Envelope:
    """`envelope` with another published state (None: without one)."""
    return replace(envelope, id=str(uuid.uuid4()), request_state=state)
