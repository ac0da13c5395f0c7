"""The gateway checking senders itself (`MAIL_VERIFY=self`), reached directly over real SMTP, with
a DNS server on loopback that serves the test's DKIM key, SPF and DMARC records: messages
signed here with dkimpy are believed, spoofed ones are not, whatever headers they carry."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSServer
from published import published_envelopes
from service_support import service_store
from system import free_port  # type: ignore[import-not-found]

from desk_contracts.tickets import Channel, TicketCreated
from desk_platform.blobs import FolderBlobStore
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from intake.adapters.mail_auth import SelfVerifier, resolver_for
from intake.adapters.mail_tickets import on_ticket_event
from intake.adapters.smtp import GatewayHandler, serve
from intake.application.mail_gateway import MailGateway
from intake.domain.mail import Dmarc, Drop, GatewayConfig, NewRequest, SmtpEnvelope, parse

pytestmark = pytest.mark.integration

POLICIES = load_policies()
CONFIG = GatewayConfig.of(POLICIES, "support@desk.example", verify="self")
SELECTOR = "s2026"


def rsa_key() -> tuple[bytes, str]:
    """A private key (PEM) and its DKIM record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


KEY, KEY_RECORD = rsa_key()
RECORDS = {
    # acme signs its mail; its SPF names no host of ours; DMARC p=reject
    f"{SELECTOR}._domainkey.acme.example": KEY_RECORD,
    "acme.example": "v=spf1 ip4:192.0.2.1 -all",
    "_dmarc.acme.example": "v=DMARC1; p=reject; rua=mailto:dmarc@acme.example",
    # globex does not sign, but its SPF names the loopback address the test sends from
    "globex.example": "v=spf1 ip4:127.0.0.1 -all",
    "_dmarc.globex.example": "v=DMARC1; p=quarantine",
    # initech publishes nothing at all
}


class Records(BaseResolver):  # type: ignore[misc]
    """Answers TXT questions from RECORDS; any other name does not exist."""

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        text = RECORDS.get(name)
        if text is not None and request.q.qtype == QTYPE.TXT:
            chunks = [text[i : i + 200] for i in range(0, len(text), 200)]
            reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        elif text is None:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture(scope="module")
def dns_server() -> Iterator[str]:
    server = DNSServer(Records(), address="127.0.0.1", port=free_port())
    server.start_thread()
    try:
        yield f"127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.stop()
        server.server.server_close()


def now() -> datetime:
    return datetime.now(UTC)


class Gateway:
    def __init__(self, pool: asyncpg.Pool, port: int) -> None:
        self.pool, self.port = pool, port

    async def send(self, raw: bytes, mail_from: str, to: str) -> tuple[int, bytes]:
        def go() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
                client.ehlo("client.test")
                client.mail(mail_from)
                client.rcpt(to)
                return client.data(raw)

        return await asyncio.to_thread(go)

    async def events(self, event_type: str) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(  # type: ignore[no-any-return]
                "SELECT * FROM events WHERE event_type = $1 ORDER BY global_position", event_type
            )


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path, dns_server: str) -> AsyncIterator[Gateway]:
    async with service_store(database_url, "intake") as pool:
        verifier = SelfVerifier(resolver_for(dns_server, timeout=2.0))
        core = MailGateway(
            pool, POLICIES, load_directory(), CONFIG, FolderBlobStore(tmp_path), now, verifier
        )
        handler = GatewayHandler(core, {*CONFIG.addresses, "support@desk.example"})
        port = free_port()
        server = await serve(handler, "127.0.0.1", port, max_bytes=1 << 20, hostname="mx.test")
        try:
            yield Gateway(pool, port)
        finally:
            server.close()
            await server.wait_closed()


def mail(
    sender: str = "Anne Martin <anne@acme.example>",
    to: str = "support@saas-desk.example",
    subject: str = "The monthly export fails",
    headers: str = "",
    sign: bool = False,
) -> bytes:
    domain = sender.rpartition("@")[2].strip(">")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
    message.set_content("Error 500 on every export since Monday.")
    raw = headers.encode() + message.as_bytes().replace(b"\n", b"\r\n")
    if sign:
        signed = [b"from", b"to", b"subject", b"message-id"]
        raw = dkim.sign(raw, SELECTOR.encode(), domain.encode(), KEY, include_headers=signed) + raw
    return raw


async def test_a_signed_aligned_message_becomes_a_request(gateway: Gateway) -> None:
    code, _ = await gateway.send(mail(sign=True), "anne@acme.example", "support@saas-desk.example")
    assert code == 250, _
    (created,) = await gateway.events("TicketCreated")
    event = TicketCreated.model_validate_json(created["payload"])
    assert event.requester_id == "anne@acme.example" and event.organisation_id == "acme"


async def test_an_unsigned_spoof_of_a_p_reject_domain_is_dropped(gateway: Gateway) -> None:
    code, _ = await gateway.send(mail(), "anne@acme.example", "support@saas-desk.example")
    assert code == 250, _  # accepted at SMTP level, then dropped (no answer to a forged sender)
    async with gateway.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_forged_authentication_results_are_ignored(gateway: Gateway) -> None:
    forged = (
        "Authentication-Results: mx.desk.example; dkim=pass; spf=pass; dmarc=pass "
        "header.from=acme.example\r\n"
        "Authentication-Results: mx.acme.example; dmarc=fail header.from=acme.example\r\n"
    )
    code, _ = await gateway.send(
        mail(headers=forged), "anne@acme.example", "support@saas-desk.example"
    )
    assert code == 250, _
    async with gateway.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 0


async def test_a_spoofed_reply_is_no_comment_and_a_signed_one_is(gateway: Gateway) -> None:
    ticket_id = str(uuid.uuid4())
    created = TicketCreated(
        ticket_id=ticket_id, occurred_at=now(), key="PRB-1001", policy_id="saas-desk",
        request_type="support", priority="medium", subject="Export", description="x",
        organisation_id="acme", requester_id="anne@acme.example",
        created_by="anne@acme.example", channel=Channel.PORTAL,
    )  # fmt: skip
    (envelope,) = published_envelopes([created], POLICIES["saas-desk"])
    async with gateway.pool.acquire() as conn:  # workflow published it
        await on_ticket_event()(conn, envelope, created)
    reply = {"to": "support@desk.example", "subject": "Re: [PRB-1001] Export"}
    await gateway.send(mail(**reply), "anne@acme.example", "support@desk.example")
    assert await gateway.events("CommentReceived") == []
    await gateway.send(mail(**reply, sign=True), "anne@acme.example", "support@desk.example")
    (comment,) = await gateway.events("CommentReceived")
    assert (
        comment["stream_id"] == ticket_id
        and '"author_id": "anne@acme.example"' in (comment["payload"])
    )


async def test_spf_of_the_from_domain_authenticates_an_unsigned_message(
    gateway: Gateway,
) -> None:
    code, _ = await gateway.send(
        mail(sender="Carla <carla@globex.example>", to="support@cloud-partner.example"),
        "carla@globex.example",
        "support@cloud-partner.example",
    )
    assert code == 250, _
    (created,) = await gateway.events("TicketCreated")
    assert TicketCreated.model_validate_json(created["payload"]).requester_id == (
        "carla@globex.example"
    )


async def test_the_verifier_s_verdicts(dns_server: str) -> None:
    verifier = SelfVerifier(resolver_for(dns_server, timeout=2.0))

    async def verdict(raw: bytes, mail_from: str, peer: str = "127.0.0.1") -> Dmarc:
        envelope = SmtpEnvelope(mail_from, ("support@saas-desk.example",), peer, "client.test")
        return (await verifier.check(raw, parse(raw, envelope))).dmarc

    assert await verdict(mail(sign=True), "anne@acme.example") is Dmarc.PASS
    assert await verdict(mail(), "anne@acme.example") is Dmarc.FAIL
    tampered = mail(sign=True).replace(b"Error 500", b"Error 200")
    assert await verdict(tampered, "anne@acme.example") is Dmarc.FAIL
    globex = mail(sender="carla@globex.example")
    assert await verdict(globex, "carla@globex.example") is Dmarc.PASS
    assert await verdict(globex, "carla@globex.example", peer="198.51.100.7") is Dmarc.FAIL
    initech = mail(sender="dan@initech.example")
    assert await verdict(initech, "dan@initech.example") is Dmarc.NONE


async def test_an_unreachable_dns_server_defers_the_message(database_url: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # receives, never answers
        silent.bind(("127.0.0.1", 0))
        verifier = SelfVerifier(resolver_for(f"127.0.0.1:{silent.getsockname()[1]}", timeout=0.5))
        async with service_store(database_url, "intake") as pool:
            core = MailGateway(pool, POLICIES, load_directory(), CONFIG,
                               FolderBlobStore(Path("/nonexistent")), now, verifier)  # fmt: skip
            raw = mail()
            envelope = SmtpEnvelope("anne@acme.example", ("support@saas-desk.example",),
                                    "127.0.0.1", "client.test")  # fmt: skip
            received = await asyncio.wait_for(core.receive(raw, envelope), 15)
    assert received.deferred and "DNS" in getattr(received.decision, "reason", "")


async def test_forgeries_do_not_use_up_their_domain_s_hour(
    database_url: str, tmp_path: Path, dns_server: str
) -> None:
    verifier = SelfVerifier(resolver_for(dns_server, timeout=2.0))
    config = replace(CONFIG, domain_messages_per_hour=2)
    envelope = SmtpEnvelope("anne@acme.example", ("support@saas-desk.example",), "127.0.0.1",
                            "client.test")  # fmt: skip
    async with service_store(database_url, "intake") as pool:
        core = MailGateway(pool, POLICIES, load_directory(), config, FolderBlobStore(tmp_path),
                           now, verifier)  # fmt: skip
        for _ in range(3):  # unsigned: acme's DMARC p=reject says they are not acme's
            forged = await core.receive(mail(), envelope)
            assert isinstance(forged.decision, Drop) and "fails DMARC" in forged.decision.reason
        taken = [await core.receive(mail(sign=True), envelope) for _ in range(3)]
    assert [type(r.decision) for r in taken] == [NewRequest, NewRequest, Drop]
    assert "domain acme.example over 2" in getattr(taken[2].decision, "reason", "")
