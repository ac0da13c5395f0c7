"""The world the gateway's unit tests route in: the shipped desks and directory, four requests
(as workflow publishes them, folded by the one fold), and our MX (`mx.desk.example`), whose
`Authentication-Results` header `through_mx` adds as that MX would (the gateway believes only
it)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from published import published_states

from desk_contracts.base import Event
from desk_contracts.state import RequestState
from desk_contracts.tickets import Channel, TicketClosed, TicketCreated
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from intake.domain.mail import GatewayConfig, InboundMail, SmtpEnvelope, parse

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
POLICIES = load_policies()
DIRECTORY = load_directory()
MX = "mx.desk.example"
CONFIG = GatewayConfig.of(POLICIES, "support@desk.example", authserv_ids=frozenset({MX}))

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def request(
    ticket_id: str,
    key: str,
    policy_id: str,
    requester: str,
    *later: Event,
    source_message_id: str | None = None,
) -> RequestState:
    """A request of `requester`'s organisation opened by e-mail, as published after `later`."""
    policy = POLICIES[policy_id]
    created = TicketCreated(
        ticket_id=ticket_id, occurred_at=NOW, key=key, policy_id=policy_id,
        request_type=policy.mail_request_type, priority=policy.mail_priority, subject="Export",
        description="x", organisation_id=DIRECTORY.organisation_of(requester) or "",
        requester_id=requester, created_by=requester, channel=Channel.EMAIL,
        source_message_id=source_message_id,
    )  # fmt: skip
    return published_states([created, *later], policy)[-1]


def closed(ticket_id: str) -> TicketClosed:
    return TicketClosed(ticket_id=ticket_id, occurred_at=NOW, from_status="in_progress",
                        to_status="closed", resolution_code="handled")  # fmt: skip


PRB = request(
    "3f6c2a9e-8b1d-4c57-9a0e-2d4b6f8e1a01",
    "PRB-1001",
    "saas-desk",
    "anne@acme.example",
    source_message_id="<origin-prb-1001@acme.example>",
)
SUP = request(
    "7d2e4f10-5a6b-4c8d-9e0f-1a2b3c4d5e02", "SUP-1001", "cloud-partner", "carla@globex.example"
)
SPT_OPEN = request(
    "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e03", "SPT-1042", "erp-vendor", "anne@acme.example"
)
SPT_ID = "0e1f2a3b-4c5d-4e6f-8a9b-c0d1e2f3a404"
SPT_CLOSED = request(SPT_ID, "SPT-1007", "erp-vendor", "anne@acme.example", closed(SPT_ID))
TICKETS = (PRB, SUP, SPT_OPEN, SPT_CLOSED)


def through_mx(raw: bytes, dmarc: str = "pass") -> bytes:
    """`raw` as our MX hands it on: its verdict on top, for the From domain."""
    sender = parse(raw).sender
    domain = f" header.from={sender.rpartition('@')[2]}" if sender else ""
    return f"Authentication-Results: {MX}; spf=pass; dmarc={dmarc}{domain}\r\n".encode() + raw


def envelope_for(raw: bytes) -> SmtpEnvelope:
    """What an MTA would have said: a non-null return path and the first To as recipient."""
    probe = parse(raw)
    rcpt = probe.to[:1] or ("support@desk.example",)
    return SmtpEnvelope(mail_from=probe.sender or "relay@mx.example", rcpt_tos=rcpt)


def corpus_mail(name: str) -> InboundMail:
    raw = (CORPUS / name).read_bytes()
    return parse(through_mx(raw), envelope_for(raw))
