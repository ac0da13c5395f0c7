"""The e-mail gateway over real SMTP on loopback (smtplib -> aiosmtpd on this loop) and the real
PostgreSQL server: what each message leaves in intake's outbox, and what SMTP answers. The
gateway stands behind our MX (`mx.test`, MAIL_AUTHSERV_IDS): `message()` carries that MX's
`Authentication-Results` verdict, as the MX would hand it on."""

from __future__ import annotations

import asyncio
import email.policy
import os
import smtplib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from published import published_envelopes
from service_support import service_store
from system import free_port  # type: ignore[import-not-found]

from desk_contracts.base import Event
from desk_contracts.tickets import Channel, ParticipantAdded, TicketClosed, TicketCreated
from desk_platform.blobs import FolderBlobStore
from desk_platform.consumer import PoisonMessage, decode_event
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from intake.adapters.mail_tickets import events_together, on_ticket_event
from intake.adapters.smtp import GatewayHandler, serve
from intake.application.mail_gateway import MailGateway, Received
from intake.domain.mail import Drop, DropKind, GatewayConfig, NewRequest, SmtpEnvelope

pytestmark = pytest.mark.integration

POLICIES = load_policies()
MX = "mx.test"
CONFIG = GatewayConfig.of(POLICIES, "support@desk.example", authserv_ids=frozenset({MX}))
MAX_BYTES = 16 * 1024 * 1024  # a 10 MB attachment (13.7 MB in base64) fits


def now() -> datetime:
    return datetime.now(UTC)


class Gateway:
    def __init__(self, pool: asyncpg.Pool, port: int, blobs: Path, decisions: list[str]) -> None:
        self.pool, self.port, self.blobs = pool, port, blobs
        self.decisions = decisions  # what the SMTP edge told of each message, in order

    async def send(self, message: EmailMessage, to: str | None = None, **kw: Any) -> Any:
        def go() -> Any:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
                return client.send_message(message, to_addrs=[to or str(message["To"])], **kw)

        return await asyncio.to_thread(go)

    async def events(self, event_type: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(  # type: ignore[no-any-return]
                "SELECT * FROM events WHERE event_type = $1 ORDER BY global_position", event_type
            )

    async def publish(self, created: TicketCreated, *later: Event) -> None:
        """Hand the gateway's consumer what workflow publishes of one request on ticket-events:
        each of its events with the state after it."""
        events = [created, *later]
        envelopes = published_envelopes(events, POLICIES[created.policy_id])
        async with self.pool.acquire() as conn:
            for envelope, event in zip(envelopes, events, strict=True):
                await on_ticket_event()(conn, envelope, event)


@pytest.fixture
def config() -> GatewayConfig:
    return CONFIG


@pytest.fixture
async def gateway(
    database_url: str, tmp_path: Path, config: GatewayConfig
) -> AsyncIterator[Gateway]:
    async with service_store(database_url, "intake") as pool:
        blobs = tmp_path / "blobs"
        core = MailGateway(pool, POLICIES, load_directory(), config, FolderBlobStore(blobs), now)
        decisions: list[str] = []
        handler = GatewayHandler(
            core, {*CONFIG.addresses, "support@desk.example"}, decided=decisions.append
        )
        port = free_port()
        server = await serve(handler, "127.0.0.1", port, max_bytes=MAX_BYTES, hostname="mx.test")
        try:
            yield Gateway(pool, port, blobs, decisions)
        finally:
            server.close()
            await server.wait_closed()


def message(
    sender: str = "Anne Martin <anne@acme.example>",
    to: str = "support@saas-desk.example",
    subject: str = "L'export mensuel échoue",
    body: str = "Erreur 500 à chaque export depuis lundi.",
    dmarc: str | None = "pass",
    **headers: str,
) -> EmailMessage:
    """A message as our MX hands it on, with its DMARC verdict (None: it did not check it)."""
    mail = EmailMessage()
    if dmarc is not None:
        domain = sender.rpartition("@")[2].strip(">")
        mail["Authentication-Results"] = f"{MX}; spf=pass; dmarc={dmarc} header.from={domain}"
    mail["From"], mail["To"], mail["Subject"] = sender, to, subject
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@acme.example>"
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return mail


async def test_a_mail_becomes_one_request_even_when_delivered_twice(gateway: Gateway) -> None:
    mail = message()
    screenshot = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    mail.add_attachment(screenshot, maintype="image", subtype="png", filename="capture.png")
    assert await gateway.send(mail) == {}
    assert await gateway.send(mail) == {}  # the MTA retried: same Message-ID
    assert gateway.decisions == ["new_request", "duplicate"]
    (created,) = await gateway.events("TicketCreated")
    event = TicketCreated.model_validate_json(created["payload"])
    assert event.channel is Channel.EMAIL and event.policy_id == "saas-desk"
    assert event.source_message_id == mail["Message-ID"]
    assert event.requester_id == "anne@acme.example" and event.organisation_id == "acme"
    assert event.key.startswith("INF-") and event.language == "fr"
    (attachment,) = event.attachments
    assert attachment.filename == "capture.png" and attachment.size == len(screenshot)
    stored = await FolderBlobStore(gateway.blobs).get(attachment.sha256)
    assert stored == screenshot


async def test_a_ten_megabyte_attachment_arrives_whole(gateway: Gateway) -> None:
    mail = message(subject="Heap dump", body="The dump of the crashed node is attached.")
    dump = os.urandom(10 * 1024 * 1024)
    mail.add_attachment(dump, maintype="application", subtype="octet-stream", filename="heap.bin")
    await gateway.send(mail)
    (created,) = await gateway.events("TicketCreated")
    (attachment,) = TicketCreated.model_validate_json(created["payload"]).attachments
    assert attachment.size == len(dump)
    assert await FolderBlobStore(gateway.blobs).get(attachment.sha256) == dump


async def test_too_large_is_refused_at_smtp_level_with_552(gateway: Gateway) -> None:
    big = message(body=("x" * 76 + "\n") * (MAX_BYTES // 70))
    with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # SIZE= in MAIL FROM
        await gateway.send(big)
    assert declared.value.smtp_code == 552

    def undeclared() -> tuple[int, bytes]:  # a client that does not declare the size
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=10) as client:
            client.ehlo()
            client.mail("anne@acme.example")
            client.rcpt("support@saas-desk.example")
            return client.data(big.as_string())

    code, _ = await asyncio.to_thread(undeclared)
    assert code == 552, _
    assert await gateway.events("TicketCreated") == []


async def test_an_unknown_support_address_is_refused_with_550(gateway: Gateway) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await gateway.send(message(to="sales@saas-desk.example"))
    assert refused.value.recipients["sales@saas-desk.example"][0] == 550


async def test_a_reply_becomes_one_comment_on_its_request(gateway: Gateway) -> None:
    ticket_id = str(uuid.uuid4())
    await gateway.publish(created(ticket_id, "PRB-1001", "saas-desk"))
    reply = message(
        to="support@desk.example",
        subject="RE: [PRB-1001] Demande reçue",
        body="Toujours vide ce matin.\n\nLe lun. 2 mars 2026, Support a écrit :\n> Bonjour",
        In_Reply_To=f"<{ticket_id}.ab12@desk.example>",
    )
    await gateway.send(reply)
    await gateway.send(reply)
    assert gateway.decisions == ["comment", "duplicate"]
    (comment,) = await gateway.events("CommentReceived")
    assert comment["stream_id"] == ticket_id
    payload = comment["payload"]
    assert (
        '"body": "Toujours vide ce matin."' in payload and '"author_role": "requester"' in payload
    )


async def test_refusals_ask_for_an_automatic_answer(gateway: Gateway) -> None:
    ticket_id = str(uuid.uuid4())
    opened = created(ticket_id, "SPT-1042", "erp-vendor")
    await gateway.publish(opened)
    await gateway.send(message(to="support@erp-vendor.example", subject="RE: [SPT-1042] Suivi"))
    await gateway.send(message(sender="eve@freemail.example", subject="Reset my password"))
    answers = await gateway.events("AutomaticReplyRequested")
    assert [a["stream_id"] for a in answers] == [
        "mail:anne@acme.example",
        "mail:eve@freemail.example",
    ]
    assert '"reason": "replies_by_portal_only"' in answers[0]["payload"]
    assert '"reason": "unknown_sender"' in answers[1]["payload"]
    await gateway.publish(opened, closed(ticket_id))
    await gateway.send(message(to="support@erp-vendor.example", subject="RE: [SPT-1042] Encore"))
    latest = (await gateway.events("AutomaticReplyRequested"))[-1]
    assert '"reason": "request_closed"' in latest["payload"]
    assert gateway.decisions == [
        "refuse_replies_by_portal_only",
        "refuse_unknown_sender",
        "refuse_request_closed",
    ]


async def test_automatic_mail_leaves_nothing_and_unknown_requests_are_deferred(
    gateway: Gateway,
) -> None:
    await gateway.send(
        message(subject="Réponse automatique : absent", Auto_Submitted="auto-replied")
    )
    await gateway.send(message(Precedence="bulk"))
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        await gateway.send(
            message(to="support@desk.example", In_Reply_To=f"<{uuid.uuid4()}.1@desk.example>")
        )
    assert deferred.value.smtp_code == 451
    async with gateway.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0
    assert gateway.decisions == ["drop_automatic", "drop_automatic", "defer_unknown_request"]


async def opened_by_mail(gateway: Gateway) -> tuple[EmailMessage, TicketCreated]:
    """Anne's mail to saas-desk and the request intake made of it (nothing published yet)."""
    opening = message()
    assert await gateway.send(opening) == {}
    (row,) = await gateway.events("TicketCreated")
    return opening, TicketCreated.model_validate_json(row["payload"])


async def test_a_reply_right_after_intake_created_its_request_is_a_comment(
    gateway: Gateway,
) -> None:
    """Before workflow has published anything of it, the gateway knows the request from intake's
    own store: by its key, by our Message-ID and by the mail that opened it."""
    opening, request = await opened_by_mail(gateway)
    replies = [
        message(to="support@desk.example", subject=f"RE: [{request.key}] Demande reçue",
                body="Par la clé."),
        message(to="support@desk.example", subject="RE: Demande reçue", body="Par notre message.",
                In_Reply_To=f"<{request.ticket_id}.ab12@desk.example>"),
        message(subject="RE: L'export mensuel échoue", body="Par le premier message.",
                In_Reply_To=opening["Message-ID"]),
    ]  # fmt: skip
    for reply in replies:
        assert await gateway.send(reply) == {}  # not deferred (451 would raise)
    comments = await gateway.events("CommentReceived")
    assert [c["stream_id"] for c in comments] == [request.ticket_id] * 3
    assert len(await gateway.events("TicketCreated")) == 1
    async with gateway.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM request_states") == 0


async def test_a_reply_to_a_request_nobody_created_is_deferred(gateway: Gateway) -> None:
    await opened_by_mail(gateway)  # intake knows another request
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        await gateway.send(
            message(to="support@desk.example", subject="RE: [INF-9999] Demande reçue",
                    In_Reply_To=f"<{uuid.uuid4()}.1@desk.example>")
        )  # fmt: skip
    assert deferred.value.smtp_code == 451
    assert await gateway.events("CommentReceived") == []


async def test_once_published_the_latest_state_of_the_request_decides(gateway: Gateway) -> None:
    """Carla (another organisation) may answer once workflow made her a participant; an older
    state delivered again does not take that back."""
    _, request = await opened_by_mail(gateway)

    def carla() -> EmailMessage:
        return message(sender="Carla <carla@globex.example>", to="support@desk.example",
                       subject=f"RE: [{request.key}] Request received")  # fmt: skip

    await gateway.send(carla())
    (refused,) = await gateway.events("AutomaticReplyRequested")
    assert '"reason": "unknown_sender"' in refused["payload"]
    added = ParticipantAdded(ticket_id=request.ticket_id, occurred_at=now(),
                             actor_id="paul@desk.example", actor_role="agent",
                             participant_id="carla@globex.example")  # fmt: skip
    await gateway.publish(request, added)
    await gateway.publish(request)  # version 1 again: older than the one kept
    await gateway.send(carla())
    (comment,) = await gateway.events("CommentReceived")
    assert comment["stream_id"] == request.ticket_id
    assert '"author_role": "participant"' in comment["payload"]


async def test_a_ticket_event_without_its_requests_state_is_a_poison_message(
    gateway: Gateway,
) -> None:
    first = created(str(uuid.uuid4()), "PRB-1061", "saas-desk")
    second = created(str(uuid.uuid4()), "PRB-1062", "saas-desk")
    (record,) = published_envelopes([first], POLICIES["saas-desk"])
    (other,) = published_envelopes([second], POLICIES["saas-desk"])
    for state in (None, {"ticket_id": first.ticket_id}, other.request_state):
        async with gateway.pool.acquire() as conn:
            with pytest.raises(PoisonMessage):
                await on_ticket_event()(conn, replace(record, request_state=state), first)
        async with gateway.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM request_states") == 0


async def test_ticket_events_kept_as_a_set_keep_what_one_by_one_keeps(database_url: str) -> None:
    first = created(str(uuid.uuid4()), "PRB-1071", "saas-desk").model_copy(
        update={"channel": Channel.EMAIL, "source_message_id": "<Opening.1071@Acme.Example>"}
    )
    second = created(str(uuid.uuid4()), "PRB-1072", "saas-desk")
    a = published_envelopes([first, closed(first.ticket_id)], POLICIES["saas-desk"])
    b = published_envelopes([second, closed(second.ticket_id)], POLICIES["saas-desk"])
    earlier = (b[1], decode_event(b[1]))  # kept before: newer than what comes after it
    envelopes = [a[1], b[0], a[0]]  # a request's newer state before its older one, interleaved
    records = [(envelope, decode_event(envelope)) for envelope in envelopes]
    states = "SELECT ticket_id, key, source_message_id, version, state FROM request_states"
    async with (
        service_store(database_url, "intake") as alone,
        service_store(database_url, "intake") as as_set,
    ):
        for envelope, event in [earlier, *records]:
            async with alone.acquire() as conn:
                await on_ticket_event()(conn, envelope, event)
        async with as_set.acquire() as conn:
            await on_ticket_event()(conn, *earlier)
        async with as_set.acquire() as conn, conn.transaction():
            await events_together().apply(conn, records)
        one_by_one = sorted(map(tuple, await alone.fetch(states)))
        assert sorted(map(tuple, await as_set.fetch(states))) == one_by_one
    kept = {row[0]: (row[2], row[3]) for row in one_by_one}
    assert kept == {
        first.ticket_id: ("<opening.1071@acme.example>", 2),
        second.ticket_id: (None, 2),
    }


def closed(ticket_id: str) -> TicketClosed:
    return TicketClosed(ticket_id=ticket_id, occurred_at=now(), from_status="in_progress",
                        to_status="closed", resolution_code="handled")  # fmt: skip


def created(ticket_id: str, key: str, policy: str) -> TicketCreated:
    return TicketCreated(
        ticket_id=ticket_id, occurred_at=now(), key=key, policy_id=policy,
        request_type="support", priority="medium", subject="Export", description="x",
        organisation_id="acme", requester_id="anne@acme.example",
        created_by="anne@acme.example", channel=Channel.PORTAL,
    )  # fmt: skip


def deeply_nested(depth: int = 1000) -> bytes:
    message_id = b"Message-ID: <%s@acme.example>\r\n" % uuid.uuid4().hex.encode()
    head = (b"From: anne@acme.example\r\nTo: support@saas-desk.example\r\nSubject: Deep\r\n"
            + message_id + b"MIME-Version: 1.0\r\n")  # fmt: skip
    parts = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    return head + parts + b"Content-Type: text/plain\r\n\r\nhello\r\n"


async def test_a_message_that_cannot_be_parsed_is_refused_for_good_with_554(
    gateway: Gateway,
) -> None:
    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", gateway.port, timeout=10) as client:
            client.ehlo()
            client.mail("anne@acme.example")
            client.rcpt("support@saas-desk.example")
            return client.data(deeply_nested())

    code, _ = await asyncio.to_thread(send)
    assert code == 554, _
    async with gateway.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_refusals_are_answered_only_to_an_envelope_sender_that_is_from(
    gateway: Gateway,
) -> None:
    victim = message(sender="eve@freemail.example", subject="Reset my password")
    await gateway.send(victim, from_addr="bounces+x@freemail.example")
    spoof = message(sender="=?utf-8?q?anne=40acme.example=2C?= <mallory@evil.example>")
    await gateway.send(spoof, from_addr="anne@acme.example")  # MAIL FROM forged too
    async with gateway.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_a_reply_to_an_unknown_request_is_deferred_for_fifteen_minutes_only(
    database_url: str, tmp_path: Path
) -> None:
    clock = [datetime(2026, 3, 2, 10, 0, tzinfo=UTC)]
    async with service_store(database_url, "intake") as pool:
        core = MailGateway(
            pool, POLICIES, load_directory(), CONFIG, FolderBlobStore(tmp_path), lambda: clock[0]
        )
        reply = message(to="support@desk.example", In_Reply_To=f"<{uuid.uuid4()}.1@desk.example>")
        envelope = SmtpEnvelope("anne@acme.example", ("support@desk.example",))
        raw = reply.as_bytes()
        assert (await core.receive(raw, envelope)).deferred
        clock[0] += timedelta(minutes=14)
        assert (await core.receive(raw, envelope)).deferred
        clock[0] += timedelta(minutes=2)  # 16 minutes after it was first seen
        late = await core.receive(raw, envelope)
        assert isinstance(late.decision, Drop) and "support address" in late.decision.reason
        sent_to_a_desk = message(In_Reply_To=f"<{uuid.uuid4()}.1@desk.example>")
        desk_envelope = SmtpEnvelope("anne@acme.example", ("support@saas-desk.example",))
        assert (await core.receive(sent_to_a_desk.as_bytes(), desk_envelope)).deferred
        clock[0] += timedelta(hours=1)
        taken = await core.receive(sent_to_a_desk.as_bytes(), desk_envelope)
        assert isinstance(taken.decision, NewRequest) and taken.ticket_key is not None


async def test_data_is_handled_a_few_messages_at_a_time() -> None:
    running, most = 0, 0

    class Slow:
        async def receive(self, raw: bytes, envelope: SmtpEnvelope) -> Received:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.02)
            running -= 1
            return Received(Drop("test", DropKind.NO_DESK))

    handler = GatewayHandler(Slow(), {"support@desk.example"}, max_concurrent=3)
    session = SimpleNamespace(peer=("127.0.0.1", 1))

    def envelope() -> SimpleNamespace:
        return SimpleNamespace(original_content=b"x", content=b"x", mail_from="a@b.example",
                               rcpt_tos=["support@desk.example"])  # fmt: skip

    answers = await asyncio.gather(
        *(handler.handle_DATA(None, session, envelope()) for _ in range(20))
    )
    assert answers == ["250 2.0.0 OK"] * 20
    assert most == 3


async def test_a_cc_of_made_up_colleagues_makes_only_directory_people_participants(
    gateway: Gateway,
) -> None:
    made_up = ", ".join(f"user{n}@acme.example" for n in range(200))
    mail = message(Cc=f"{made_up}, Bruno Keller <bruno@acme.example>")
    assert await gateway.send(mail) == {}
    (created,) = await gateway.events("TicketCreated")
    event = TicketCreated.model_validate_json(created["payload"])
    assert event.requester_id == "anne@acme.example"
    assert event.participants == ("bruno@acme.example",)


async def count(gateway: Gateway) -> int:
    async with gateway.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM events"))


async def test_only_our_mx_s_authentication_results_are_believed(gateway: Gateway) -> None:
    await gateway.send(message(dmarc=None))  # reached directly: no verdict of our MX
    forged = message(dmarc=None)
    forged["Authentication-Results"] = "mx.evil.example; dmarc=pass header.from=acme.example"
    await gateway.send(forged)
    assert await count(gateway) == 0
    failing = message(dmarc=None)  # a forged pass on top of our MX's fail
    failing["Authentication-Results"] = f"{MX}.evil; dmarc=pass header.from=acme.example"
    failing["Authentication-Results"] = f"{MX}; dmarc=fail header.from=acme.example"
    await gateway.send(failing)
    assert await count(gateway) == 0
    ticket_id = str(uuid.uuid4())
    await gateway.publish(created(ticket_id, "PRB-1001", "saas-desk"))
    spoofed_reply = message(to="support@desk.example", subject="RE: [PRB-1001] x", dmarc="none",
                            In_Reply_To=f"<{ticket_id}.ab12@desk.example>")  # fmt: skip
    await gateway.send(spoofed_reply)
    assert await gateway.events("CommentReceived") == []
    await gateway.send(message())
    assert len(await gateway.events("TicketCreated")) == 1


@pytest.mark.parametrize(
    "config",
    [replace(CONFIG, domain_messages_per_hour=5, desk_messages_per_hour=1000)],
)
async def test_a_domain_s_many_senders_are_limited_together(gateway: Gateway) -> None:
    # the directory places every address of acme.example in acme: each may open a request
    for n in range(7):
        await gateway.send(message(sender=f"user{n}@acme.example"))
    assert len(await gateway.events("TicketCreated")) == 5
    await gateway.send(message(sender="carla@globex.example", to="support@saas-desk.example"))
    assert len(await gateway.events("TicketCreated")) == 6  # another domain is not held back


@pytest.mark.parametrize(
    "config",
    [replace(CONFIG, messages_per_hour=2, domain_messages_per_hour=5)],
)
async def test_a_sender_over_its_limit_does_not_use_up_its_domain_s_hour(
    gateway: Gateway,
) -> None:
    for _ in range(10):  # two requests, then eight dropped: they count for Anne only
        await gateway.send(message())
    for n in range(5):
        await gateway.send(message(sender=f"user{n}@acme.example"))
    assert len(await gateway.events("TicketCreated")) == 2 + 3  # acme's hour: 5 requests


@pytest.mark.parametrize(
    "config",
    [replace(CONFIG, domain_messages_per_hour=1000, desk_messages_per_hour=4)],
)
async def test_a_desk_takes_a_bounded_number_of_messages_an_hour(gateway: Gateway) -> None:
    senders = ["anne@acme.example", "bruno@acme.example", "carla@globex.example",
               "dan@initech.example", "eric@acme.example", "anne@acme.example"]  # fmt: skip
    for sender in senders:
        await gateway.send(message(sender=sender))
    assert len(await gateway.events("TicketCreated")) == 4
    assert await gateway.events("AutomaticReplyRequested") == []  # no answers to a flood
    await gateway.send(message(to="support@cloud-partner.example"))  # another desk
    assert len(await gateway.events("TicketCreated")) == 5


async def test_a_reply_to_a_full_request_is_refused_for_good_with_552(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desk_eventstore import store

    monkeypatch.setattr(store, "MAX_STREAM_EVENTS", 2)  # the request's stream holds 2 replies
    ticket_id = str(uuid.uuid4())
    await gateway.publish(created(ticket_id, "PRB-1051", "saas-desk"))

    def reply() -> EmailMessage:
        return message(
            to="support@desk.example", subject="RE: [PRB-1051] Demande reçue",
            body="Encore une chose.", In_Reply_To=f"<{ticket_id}.ab12@desk.example>",
        )  # fmt: skip

    await gateway.send(reply())
    await gateway.send(reply())
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await gateway.send(reply())
    assert refused.value.smtp_code == 552  # permanent: the sender's MTA does not retry
    assert refused.value.smtp_error.decode() == (
        "5.2.2 request PRB-1051 has reached its size limit: "
        "open a new request that references PRB-1051"
    )
    assert len(await gateway.events("CommentReceived")) == 2
    async with gateway.pool.acquire() as conn:  # nothing recorded: a later retry is refused too
        assert await conn.fetchval("SELECT count(*) FROM mail_messages") == 2


def with_emoji_attachments(mail: EmailMessage, count: int = 499) -> EmailMessage:
    """Hundreds of attachments named in emoji (cut to 255 characters by the parser) with long
    content types: a request event far larger than the store takes (`MAX_EVENT_BYTES`), in a
    message well under the SMTP size limit."""
    for n in range(count):
        name = "😀" * 255 + f"{n}.txt"
        mail.add_attachment(b"x", maintype="application", subtype="vnd." + "a" * 300,
                            filename=name)  # fmt: skip
    return mail


def send_raw(gateway: Gateway, mail: EmailMessage, to: str) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        client.mail("anne@acme.example")
        client.rcpt(to)
        return client.data(mail.as_bytes(policy=email.policy.SMTP))  # folded, encoded names


async def test_a_request_the_store_refuses_is_refused_for_good_with_552(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = with_emoji_attachments(message(body=("😀" * 200 + "\n") * 500))
    code, text = await asyncio.to_thread(send_raw, gateway, mail, "support@saas-desk.example")
    assert code == 552, text  # not 451: the sending server would retry it for days
    assert b"too large" in text
    assert await gateway.events("TicketCreated") == []
    logged = capsys.readouterr().out
    assert "mail_not_storable" in logged and "mail_not_taken" not in logged


async def test_a_reply_whose_comment_the_store_refuses_is_refused_for_good_with_554(
    gateway: Gateway,
) -> None:
    ticket_id = str(uuid.uuid4())
    await gateway.publish(created(ticket_id, "PRB-1001", "saas-desk"))
    reply = message(
        to="support@desk.example", subject="RE: [PRB-1001] Demande reçue",
        body="Toujours vide\x00 ce matin.", In_Reply_To=f"<{ticket_id}.ab12@desk.example>",
    )  # fmt: skip
    code, text = await asyncio.to_thread(send_raw, gateway, reply, "support@desk.example")
    assert code == 554, text  # the store takes no NUL character: never, so no retry
    assert b"NUL" in text
    assert await gateway.events("CommentReceived") == []
