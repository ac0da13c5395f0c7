"""The notifier over real SMTP on loopback (aiosmtpd) and the real PostgreSQL server: worded in
the recipient's language, threaded, marked automatic, recorded before sending and marked after;
a crash between the relay's acceptance and the mark re-sends the same Message-ID; transient
errors are retried later, a 5xx is recorded on the request (DeliveryFailed in the outbox); what
becomes of each message is counted by desk."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from aiosmtpd.controller import Controller
from kafka_support import consume_all
from prometheus_client import CollectorRegistry
from published import published_envelopes
from service_support import service_store
from system import free_port

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.mail import AutomaticReplyRequested, RefusalReason
from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    ParticipantAdded,
    TicketClosed,
    TicketCreated,
    WorkStarted,
)
from desk_eventstore.relay import OutboxRelay, idempotent_producer
from desk_eventstore.store import read_stream
from desk_platform.consumer import PoisonMessage, decode_event
from desk_platform.survey_tokens import read_token
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from desk_policies.model import DeskPolicy
from notifier.adapters.kafka import on_automatic_reply, on_ticket_event
from notifier.adapters.metrics import NotificationMetrics
from notifier.adapters.templates import Templates
from notifier.application.delivery import HOLDER_LOCK_CLASS, LEASE, Relay, Sender
from notifier.application.notify import Notifier
from notifier.bootstrap import topic_for

pytestmark = pytest.mark.integration

NOTIFIER = Notifier(
    policies=load_policies(),
    directory=load_directory(),
    templates=Templates(),
    mail_domain="desk.example",
    portal_url="https://portal.desk.example",
    survey_secret="test-secret",
)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # when the request was made
ANNE, CARLA = "anne@acme.example", "carla@globex.example"
AGENT = {"actor_id": "paul@desk.example", "actor_role": "agent"}


def now() -> datetime:  # when the sender runs: rows are due from the moment they are recorded
    return datetime.now(UTC)


class Sink:
    """A real SMTP server's handler keeping what it accepted (or refusing, when told to)."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.refuse_with: str | None = None
        self.refuse_sender_with: str | None = None
        self.hold_first: threading.Event | None = None  # the first DATA waits for it
        self.in_data = threading.Event()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender_with:
            return self.refuse_sender_with
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        hold, self.hold_first = self.hold_first, None
        if hold is not None:
            self.in_data.set()
            await asyncio.get_running_loop().run_in_executor(None, hold.wait, 8)
        if self.refuse_with:
            return self.refuse_with
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


def sender(pool: asyncpg.Pool, port: int) -> Sender:
    return Sender(pool, Relay("127.0.0.1", port, "support@desk.example"))


def envelope_of(reply: AutomaticReplyRequested) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        type=reply.event_type,
        source="/desk/intake",
        subject=reply.ticket_id,
        time=NOW,
        data=reply.model_dump(mode="json"),
    )


@dataclass
class Request:
    """One request's events so far, told to the notifier as workflow publishes them."""

    pool: asyncpg.Pool
    events: list[Event]

    @property
    def ticket_id(self) -> str:
        return self.events[0].ticket_id

    @property
    def policy(self) -> DeskPolicy:
        opening = self.events[0]
        assert isinstance(opening, TicketCreated)
        return NOTIFIER.policies[opening.policy_id]

    async def then(self, event: Event) -> None:
        """What the consumer does with the record of `event`, published with the request's
        state after it (twice: a redelivery changes nothing)."""
        self.events.append(event)
        envelope = published_envelopes(self.events, self.policy)[-1]
        handle = on_ticket_event(NOTIFIER)
        for _ in range(2):
            async with self.pool.acquire() as conn, conn.transaction():
                await handle(conn, envelope, event)


async def create(
    pool: asyncpg.Pool,
    policy: str = "saas-desk",
    channel: Channel = Channel.EMAIL,
    language: str = "en",
    participants: tuple[str, ...] = (),
) -> Request:
    """Anne's request, created and told to the notifier."""
    request = Request(pool, [])
    await request.then(
        TicketCreated(
            ticket_id=str(uuid.uuid4()),
            occurred_at=NOW,
            key="REQ-1001",
            policy_id=policy,
            request_type="information_request" if policy == "saas-desk" else "support",
            priority="low",
            subject="Question",
            description="How do I export?",
            organisation_id="acme",
            requester_id=ANNE,
            created_by=ANNE,
            channel=channel,
            language=language,
            participants=participants,
            source_message_id="<first@acme.example>" if channel is Channel.EMAIL else None,
        )
    )
    return request


def header(mail: EmailMessage, name: str) -> str:
    """A header's value unfolded (long Message-IDs are folded onto their own line)."""
    return " ".join(str(mail[name] or "").split())


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def html_of(mail: EmailMessage) -> str:
    body = mail.get_body(("html",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


async def test_the_acknowledgement_is_sent_once_in_french_threaded_and_marked(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    request = await create(pool, language="en")  # Anne reads French (directory) on an English form
    assert await sender(pool, port).send_pending(now()) == 1
    assert await sender(pool, port).send_pending(now()) == 0
    assert len(handler.received) == 1
    mail = handler.received[0]
    assert mail["Subject"] == "[REQ-1001] Demande reçue : Question"
    assert mail["To"] == ANNE
    assert mail["From"] == "support@saas-desk.example"  # replies reach the desk's gateway
    own = rf"<{request.ticket_id}\.[0-9a-f]{{24}}@desk\.example>"
    assert re.fullmatch(own, header(mail, "Message-ID"))
    assert mail["In-Reply-To"] == "<first@acme.example>"
    assert mail["References"] == "<first@acme.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Content-Language"] == "fr"
    assert mail.get_content_type() == "multipart/alternative"
    assert "Répondez à cet e-mail" in text_of(mail)
    assert "Bonjour Anne Martin" in text_of(mail) and "<strong>REQ-1001</strong>" in html_of(mail)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM deliveries") == "sent"


async def test_a_requests_messages_to_a_person_form_one_thread_each_in_their_language(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    request = await create(pool, policy="cloud-partner", participants=(CARLA,))
    base = {"ticket_id": request.ticket_id, "occurred_at": NOW, **AGENT}
    await request.then(WorkStarted(**base, from_status="submitted", to_status="in_progress"))
    await request.then(CommentAdded(**base, body="Please try the new release.", public=True))
    while await sender(pool, port).send_pending(now()):
        pass
    to_anne = [m for m in handler.received if m["To"] == ANNE]
    to_carla = [m for m in handler.received if m["To"] == CARLA]
    assert [m["Subject"] for m in to_anne] == [
        "[REQ-1001] Demande reçue : Question",
        "[REQ-1001] Traitement en cours : Question",
        "[REQ-1001] Nouveau commentaire : Question",
    ]
    assert [m["Subject"] for m in to_carla] == [
        "[REQ-1001] Request received: Question",
        "[REQ-1001] Work started: Question",
        "[REQ-1001] New comment: Question",
    ]
    for thread in (to_anne, to_carla):
        ids = [header(m, "Message-ID") for m in thread]
        assert len(set(ids)) == 3
        assert header(thread[1], "In-Reply-To") == ids[0]
        assert header(thread[2], "In-Reply-To") == ids[1]
        assert header(thread[2], "References").split() == ["<first@acme.example>", ids[0], ids[1]]
    assert "Please try the new release." in text_of(to_carla[2])


async def test_portal_creation_does_not_mail_its_creator_in_cloud_partner(
    pool: asyncpg.Pool,
) -> None:
    await create(pool, policy="cloud-partner", channel=Channel.PORTAL)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_a_participant_added_later_is_told_from_then_on(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    request = await create(pool, policy="cloud-partner", channel=Channel.PORTAL)
    base = {"ticket_id": request.ticket_id, "occurred_at": NOW, **AGENT}
    await request.then(ParticipantAdded(**base, participant_id=CARLA))
    await request.then(WorkStarted(**base, from_status="submitted", to_status="in_progress"))
    await sender(pool, port).send_pending(now())
    assert sorted(m["To"] for m in handler.received) == [ANNE, CARLA]


async def test_a_ticket_event_without_its_requests_state_is_a_poison_message(
    pool: asyncpg.Pool,
) -> None:
    first, second = await create(pool), await create(pool)
    (record,) = published_envelopes(first.events, first.policy)
    (other,) = published_envelopes(second.events, second.policy)
    handle = on_ticket_event(NOTIFIER)
    for state in (None, {"ticket_id": first.ticket_id}, other.request_state):
        async with pool.acquire() as conn, conn.transaction():
            with pytest.raises(PoisonMessage):
                await handle(conn, replace(record, request_state=state), first.events[0])


class Crash(Exception):
    pass


class CrashingSender(Sender):
    """Dies after the relay accepted a message, before marking it sent."""

    async def mark_sent(self, row: asyncpg.Record, now: datetime) -> None:
        raise Crash


async def test_a_crash_between_send_and_mark_resends_only_that_one_with_the_same_message_id(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    request = await create(pool, policy="cloud-partner", participants=(CARLA,))
    crashed = CrashingSender(pool, Relay("127.0.0.1", port, "support@desk.example"))
    with pytest.raises(Crash):
        await crashed.send_pending(now())
    assert len(handler.received) == 1  # the first was accepted, then the process died
    first = handler.received[0]

    # a restarted (or another) replica takes the dead holder's rows over at once
    assert await sender(pool, port).send_pending(now()) == 2
    later = now() + LEASE + timedelta(seconds=1)
    assert await sender(pool, port).send_pending(later + LEASE * 2) == 0
    assert len(handler.received) == 3
    again = [m for m in handler.received[1:] if m["To"] == first["To"]]
    assert len(again) == 1 and header(again[0], "Message-ID") == header(first, "Message-ID")
    assert {m["To"] for m in handler.received} == {ANNE, CARLA}
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM deliveries WHERE ticket_id = $1 AND status = 'sent'",
                request.ticket_id,
            )
            == 2
        )


async def test_relay_down_is_retried_later_and_a_5xx_is_recorded_on_the_request(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    request = await create(pool)
    assert await sender(pool, free_port()).send_pending(now()) == 1  # nobody listens there
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM deliveries")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] > now() and row["last_error"]

    handler.refuse_with = "550 mailbox unavailable"
    later = row["next_attempt_at"]
    assert await sender(pool, port).send_pending(later) == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM deliveries")
        stream = await read_stream(conn, request.ticket_id)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("550")
    assert await sender(pool, port).send_pending(later + timedelta(days=1)) == 0  # not retried
    assert [r.event_type for r in stream] == ["DeliveryFailed"]
    failed = stream[0].to_event()
    assert failed.ticket_id == request.ticket_id
    assert failed.model_dump(include={"recipient", "message_id"}) == {
        "recipient": ANNE,
        "message_id": row["message_id"],
    }
    assert topic_for(stream[0]) == "ticket-commands"


async def test_a_relay_refusing_our_sender_fails_nothing_for_good(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    """A 5xx to MAIL FROM (or to authentication) says the relay is misconfigured, not that this
    message is undeliverable: every message would fail alike, so they all wait and retry."""
    handler, port = sink
    request = await create(pool)
    handler.refuse_sender_with = "553 sender not allowed to relay"
    assert await sender(pool, port).send_pending(now()) == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM deliveries")
        stream = await read_stream(conn, request.ticket_id)
    assert row["status"] == "pending" and row["last_error"].startswith("553")
    assert stream == []  # nothing recorded as failed on the request
    handler.refuse_sender_with = None  # the relay is fixed: the message goes out
    assert await sender(pool, port).send_pending(row["next_attempt_at"]) == 1
    assert len(handler.received) == 1


async def test_failed_deliveries_reach_ticket_commands_keyed_by_ticket(
    pool: asyncpg.Pool,
    sink: tuple[Sink, int],
    database_url: str,
    kafka_bootstrap: str,
    new_topic: Any,
) -> None:
    handler, port = sink
    handler.refuse_with = "554 rejected"
    request = await create(pool)
    await sender(pool, port).send_pending(now())
    topic = await new_topic("notifier-commands")
    producer = idempotent_producer(kafka_bootstrap, "test-notifier")
    await producer.start()
    schema = await pool.fetchval("SELECT current_schema()")
    relay = OutboxRelay(
        database_url, schema, producer, lambda _: topic, source="/desk/notifier", name="r"
    )
    async with pool.acquire() as conn:
        assert await relay.publish_batch(conn) == 1
    await producer.stop()
    records: list[ConsumerRecord[bytes, bytes]] = await consume_all(kafka_bootstrap, topic, 1)
    assert [r.key for r in records] == [request.ticket_id.encode()]
    assert dict(records[0].headers)["ce_type"] == b"DeliveryFailed"


async def test_the_survey_invitation_carries_a_signed_link_for_that_person(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    request = await create(pool)
    closed = TicketClosed(
        ticket_id=request.ticket_id,
        occurred_at=NOW,
        **AGENT,
        from_status="answered",
        to_status="closed",
        resolution_code="fixed",
    )
    await request.then(closed)
    while await sender(pool, port).send_pending(now()):
        pass
    invitation = handler.received[-1]
    link = re.search(r"https://portal\.desk\.example/survey/(\S+)", text_of(invitation))
    assert link is not None
    claim = read_token("test-secret", link.group(1), NOW)
    assert (claim.ticket_id, claim.respondent, claim.language) == (request.ticket_id, ANNE, "fr")
    assert claim.expires_at == NOW + timedelta(days=30)
    assert f'href="{link.group(0)}"' in html_of(invitation)


async def test_an_automatic_reply_is_sent_once_as_auto_replied_and_points_to_the_portal(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    request = AutomaticReplyRequested(
        ticket_id=str(uuid.uuid4()),
        occurred_at=NOW,
        to=ANNE,
        policy_id="erp-vendor",
        reason=RefusalReason.REQUEST_CLOSED,
        language="en",
        original_subject="RE: [SPT-1042] Export",
        original_message_id="<reply-1@acme.example>",
        ticket_key="SPT-1042",
    )
    handle = on_automatic_reply(NOTIFIER)
    envelope = envelope_of(request)
    for _ in range(2):
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, envelope, request)
    while await sender(pool, port).send_pending(now()):
        pass
    assert len(handler.received) == 1
    mail = handler.received[0]
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<reply-1@acme.example>"
    assert mail["Subject"] == "Réponse automatique : RE: [SPT-1042] Export"
    assert re.fullmatch(r"<auto\.[0-9a-f]{24}@desk\.example>", header(mail, "Message-ID"))
    text = text_of(mail)
    assert "nouvelle demande" in text and "SPT-1042" in text
    assert "https://support.erp-vendor.example/portal" in text


@pytest.mark.parametrize("reason", list(RefusalReason))
@pytest.mark.parametrize("language", ["fr", "en"])
async def test_every_refusal_is_worded(
    pool: asyncpg.Pool, sink: tuple[Sink, int], reason: RefusalReason, language: str
) -> None:
    handler, port = sink
    request = AutomaticReplyRequested(
        ticket_id="zoe@elsewhere.example",
        occurred_at=NOW,
        to="zoe@elsewhere.example",
        policy_id="erp-vendor",
        reason=reason,
        language=language,
        original_subject="Hello",
    )
    async with pool.acquire() as conn, conn.transaction():
        await on_automatic_reply(NOTIFIER)(conn, envelope_of(request), request)
    await sender(pool, port).send_pending(now())
    (mail,) = handler.received
    assert mail["Subject"].endswith("Hello") and mail["Auto-Submitted"] == "auto-replied"
    assert mail["Content-Language"] == language
    assert "support.erp-vendor.example/portal" in text_of(mail)


async def test_an_address_that_cannot_be_sent_fails_alone_and_the_rest_of_the_batch_goes_out(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    bad = "x@acme.example\r\nBcc: evil@evil.example"
    request = await create(pool, policy="cloud-partner", participants=(bad, CARLA))
    assert await sender(pool, port).send_pending(now()) == 3
    assert sorted(m["To"] for m in handler.received) == [ANNE, CARLA]
    assert all(m["Bcc"] is None for m in handler.received)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM deliveries WHERE recipient = $1", bad)
        stream = await read_stream(conn, request.ticket_id)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("554 cannot build the message: To header")
    assert [r.event_type for r in stream] == ["DeliveryFailed"]  # told on the request
    assert "line break" in stream[0].to_event().error  # type: ignore[attr-defined]


async def test_leases_are_renewed_by_their_holder_and_free_at_once_when_its_session_ends(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    """A notifier killed mid-send leaves nothing leased: its session (and lock) is gone."""
    handler, port = sink
    await create(pool)  # one acknowledgement, to ANNE
    lease = timedelta(seconds=1.5)
    relay = Relay("127.0.0.1", port, "support@desk.example")
    first, second = Sender(pool, relay, lease=lease), Sender(pool, relay, lease=lease)
    hold = handler.hold_first = threading.Event()
    stuck = asyncio.create_task(first.send_pending(now()))
    try:
        assert await asyncio.to_thread(handler.in_data.wait, 5)
        await asyncio.sleep(lease.total_seconds() + 1)  # past the lease: renewed, still held
        assert await second.send_pending(now()) == 0
        async with pool.acquire() as conn:  # the first one's process dies: its session ends
            assert await conn.fetchval(
                """SELECT bool_and(pg_terminate_backend(pid)) FROM pg_locks
                   WHERE locktype = 'advisory' AND classid = $1 AND objid = $2""",
                HOLDER_LOCK_CLASS,
                first.holder,
            )
        started = time.monotonic()
        for _ in range(50):
            if await second.send_pending(now()) == 1:
                break
            await asyncio.sleep(0.1)
        assert time.monotonic() - started < 2, "the dead holder's row was not free at once"
        assert [m["To"] for m in handler.received] == [ANNE]
    finally:
        hold.set()
    # the first sender wakes up: the relay accepts its copy (the documented duplicate window),
    # and its mark sees the lease was lost
    assert await stuck == 1
    assert len(handler.received) == 2
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT status, lease_holder FROM deliveries")
    assert row["status"] == "sent" and row["lease_holder"] is None


async def test_a_sender_that_lost_its_lease_cannot_undo_what_the_next_one_did(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    """The first sender's session is gone (no lock holds its id), the second takes the row over
    and sends it: the first one's late 4xx or 5xx neither puts it back nor reports a failure."""
    _, port = sink
    await create(pool)
    relay = Relay("127.0.0.1", port, "support@desk.example")
    first, second = Sender(pool, relay), Sender(pool, relay)
    first.holder, second.holder = 111_111, 222_222
    [row] = await first.claim(now(), 10)
    [taken] = await second.claim(now(), 10)  # free at once: its holder holds no lock
    await second.mark_sent(taken, now())
    await first._failed(row, "451 4.4.1 try again later", 451, now())
    await first._failed(row, "550 5.1.1 no such user", 550, now())
    async with pool.acquire() as conn:
        status = await conn.fetchrow("SELECT status, last_error, attempts FROM deliveries")
        reported = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'DeliveryFailed'"
        )
    assert dict(status) == {"status": "sent", "last_error": None, "attempts": 1}
    assert reported == 0


async def test_events_recorded_as_a_set_are_the_messages_one_by_one_records(
    database_url: str,
) -> None:
    from notifier.adapters.kafka import events_together

    created = TicketCreated(
        ticket_id=str(uuid.uuid4()), occurred_at=NOW, key="REQ-1001", policy_id="cloud-partner",
        request_type="support", priority="low", subject="Question",
        description="How do I export?", organisation_id="acme", requester_id=ANNE,
        created_by=ANNE, channel=Channel.EMAIL, participants=(CARLA,),
        source_message_id="<first@acme.example>",
    )  # fmt: skip
    base = {"ticket_id": created.ticket_id, "occurred_at": NOW, **AGENT}
    events: list[Event] = [
        created,
        WorkStarted(**base, from_status="submitted", to_status="in_progress"),
        CommentAdded(**base, body="Please try the new release.", public=True),
    ]
    envelopes = published_envelopes(events, NOTIFIER.policies["cloud-partner"])
    records = [(envelope, decode_event(envelope)) for envelope in envelopes]
    query = """SELECT delivery_key, recipient, message_id, in_reply_to, reference_ids, subject,
                      body, language FROM deliveries ORDER BY seq"""
    async with (
        service_store(database_url, "notifier") as alone,
        service_store(database_url, "notifier") as as_set,
    ):
        handle = on_ticket_event(NOTIFIER)
        for envelope, event in records[:1]:  # the creation told before, in both
            for pool in (alone, as_set):
                async with pool.acquire() as conn, conn.transaction():
                    await handle(conn, envelope, event)
        for envelope, event in records:  # the creation again: nothing twice
            async with alone.acquire() as conn, conn.transaction():
                await handle(conn, envelope, event)
        async with as_set.acquire() as conn, conn.transaction():
            await events_together(NOTIFIER).apply(conn, records)
        one_by_one = [tuple(r) for r in await alone.fetch(query)]
        assert [tuple(r) for r in await as_set.fetch(query)] == one_by_one
    assert len(one_by_one) == 6  # three messages to each, threaded
    assert one_by_one[-1][4][-1] == one_by_one[-3][2]  # answering the previous one to them


def counted(registry: CollectorRegistry, what: str, desk: str) -> float:
    return registry.get_sample_value(f"desk_notifications_{what}_total", {"desk": desk}) or 0.0


async def test_each_message_rendered_sent_retried_or_given_up_is_counted_by_its_desk(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    registry = CollectorRegistry()
    meter = NotificationMetrics(registry)
    notifier = replace(NOTIFIER, meter=meter)
    created = (await create(pool)).events[0]  # recorded without the meter: nothing counted
    assert counted(registry, "rendered", "saas-desk") == 0
    another = created.model_copy(update={"ticket_id": str(uuid.uuid4())})
    [envelope] = published_envelopes([another], NOTIFIER.policies["saas-desk"])
    async with pool.acquire() as conn, conn.transaction():
        await on_ticket_event(notifier)(conn, envelope, decode_event(envelope))
    assert counted(registry, "rendered", "saas-desk") == 1  # Anne's acknowledgement
    async with pool.acquire() as conn:
        assert set(await conn.fetch("SELECT policy_id FROM deliveries")) == {("saas-desk",)}

    relay = Relay("127.0.0.1", port, "support@desk.example")
    down = Sender(pool, Relay("127.0.0.1", free_port(), "x@desk.example"), meter=meter)
    assert await down.send_pending(now()) == 2  # nobody listens there: both tried again later
    assert counted(registry, "retried", "saas-desk") == 2
    handler.refuse_with = "550 mailbox unavailable"
    later = now() + timedelta(minutes=5)
    assert await Sender(pool, relay, meter=meter).send_pending(later) == 2
    assert counted(registry, "failed", "saas-desk") == 2
    assert counted(registry, "sent", "saas-desk") == 0

    handler.refuse_with = None
    reply = AutomaticReplyRequested(
        ticket_id=str(uuid.uuid4()), occurred_at=NOW, to=ANNE, policy_id="erp-vendor",
        reason=RefusalReason.REQUEST_CLOSED, language="en", original_subject="RE: Export",
        original_message_id="<reply-2@acme.example>", ticket_key="SPT-1042",
    )  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await on_automatic_reply(notifier)(conn, envelope_of(reply), reply)
    assert await Sender(pool, relay, meter=meter).send_pending(now()) == 1
    assert counted(registry, "rendered", "erp-vendor") == 1
    assert counted(registry, "sent", "erp-vendor") == 1
    assert counted(registry, "sent", "saas-desk") == 0
    assert len(handler.received) == 1
