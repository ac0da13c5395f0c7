"""The corpus: messages shaped like real clients' (Outlook, Gmail, Apple Mail, Exchange,
Postfix bounces, legacy mailers), each with the decision the gateway must make."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from mail_world import (
    CONFIG,
    CORPUS,
    DIRECTORY,
    POLICIES,
    PRB,
    SPT_CLOSED,
    SPT_OPEN,
    SUP,
    TICKETS,
    corpus_mail,
    through_mx,
)

from desk_contracts.mail import RefusalReason
from intake.domain.mail import (
    Comment,
    Decision,
    Defer,
    Drop,
    NewRequest,
    Refuse,
    SmtpEnvelope,
    parse,
    route,
)


@dataclass(frozen=True)
class Expect:
    kind: type[Decision]
    fields: dict[str, Any] = field(default_factory=dict)  # exact values on the decision
    text_has: tuple[str, ...] = ()  # in the comment body / request description
    text_lacks: tuple[str, ...] = ()
    attachments: tuple[str, ...] = ()  # file names kept


CASES: dict[str, Expect] = {
    "outlook-fr-html-reply.eml": Expect(
        Comment,
        {"ticket_key": PRB.key, "author_id": "anne@acme.example", "author_role": "requester"},
        text_has=("Le fichier exporté est toujours vide", "capture d\u2019écran"),
        text_lacks=("Envoyé", "De :", "Votre demande PRB-1001", "Cordialement", "<"),
        attachments=("image001.png",),
    ),
    "gmail-en-reply.eml": Expect(
        Comment,
        {"ticket_key": SUP.key, "author_role": "requester", "organisation_id": "globex"},
        text_has=("The export works again after the restart.",),
        text_lacks=("wrote", "Hello Carla", ">"),
    ),
    "apple-mail-reply.eml": Expect(  # threaded by In-Reply-To alone; a colleague of the requester
        Comment,
        {"ticket_key": PRB.key, "author_id": "bruno@acme.example", "author_role": "participant"},
        text_has=("l'export reste vide depuis la mise à jour.",),  # format=flowed unwrapped
        text_lacks=("iPhone", "a écrit", "Bonjour Anne"),
    ),
    "reply-to-original.eml": Expect(  # reply-all to the mail that opened the request
        Comment,
        {"ticket_key": PRB.key},
        text_has=("Same here since Monday.",),
        text_lacks=("wrote",),
    ),
    "exchange-out-of-office.eml": Expect(Drop),
    "delivery-failure.eml": Expect(Drop),
    "x-autoreply.eml": Expect(Drop),
    "bulk-newsletter.eml": Expect(Drop),
    "own-notification.eml": Expect(Drop),
    "no-from.eml": Expect(Drop),
    "legacy-charset.eml": Expect(
        NewRequest,
        {
            "policy_id": "erp-vendor",
            "request_type": "support",
            "priority": "medium",
            "subject": "Écart de TVA sur la facture",
            "requester": "anne@acme.example",
            "organisation_id": "acme",
            "language": "fr",
        },
        text_has=("1 250 €", "l\u2019écriture", "cœur", "calculée"),
    ),
    "broken-mime.eml": Expect(
        NewRequest,
        {"policy_id": "cloud-partner", "subject": "Confluence pages load slowly"},
        text_has=("takes 20 seconds to load",),
    ),
    "missing-headers.eml": Expect(
        NewRequest,
        {"policy_id": "saas-desk", "subject": "(no subject)", "requester": "carla@globex.example"},
        text_has=("wrong VAT number",),
    ),
    "new-request-with-cc.eml": Expect(
        NewRequest,
        {
            "policy_id": "saas-desk",
            "subject": "Impossible d'exporter le grand livre",
            "participants": ["bruno@acme.example"],
            "language": "fr",
        },
        text_has=("« délai dépassé »",),
    ),
    "attachments.eml": Expect(
        NewRequest,
        {"policy_id": "cloud-partner", "subject": "Licence renewal invoice"},
        text_has=("Our licence invoice is attached",),
        attachments=("facture révisée.pdf", "part-2.eml"),
    ),
    "unknown-sender.eml": Expect(
        Refuse,
        {
            "reason": RefusalReason.UNKNOWN_SENDER,
            "to": "eve@freemail.example",
            "policy_id": "saas-desk",
            "ticket_key": None,
        },
    ),
    "stranger-reply.eml": Expect(
        Refuse, {"reason": RefusalReason.UNKNOWN_SENDER, "ticket_key": SUP.key}
    ),
    "erp-vendor-reply.eml": Expect(
        Refuse,
        {
            "reason": RefusalReason.REPLIES_BY_PORTAL_ONLY,
            "ticket_key": SPT_OPEN.key,
            "portal_url": "https://support.erp-vendor.example/portal",
            "language": "fr",
        },
    ),
    "erp-vendor-closed-reply.eml": Expect(
        Refuse, {"reason": RefusalReason.REQUEST_CLOSED, "ticket_key": SPT_CLOSED.key}
    ),
    "empty.eml": Expect(Refuse, {"reason": RefusalReason.UNREADABLE}),
    "reply-to-unknown-request.eml": Expect(Defer),
    # people's subjects that look like automatic mail: still requests
    "subject-delivery-failure.eml": Expect(
        NewRequest, {"subject": "Delivery failure when exporting invoices"}
    ),
    "subject-returned-mail.eml": Expect(
        NewRequest, {"subject": "Returned mail not imported in CRM"}
    ),
    "subject-undeliverable.eml": Expect(
        NewRequest, {"subject": "Undeliverable invoices stuck in queue"}
    ),
    "subject-absence.eml": Expect(
        NewRequest,
        {"subject": "Absence: comment déclarer une absence d'une demi-journée ?"},
        text_has=("module RH",),
    ),
    "google-group-forward.eml": Expect(  # List-Id and X-Auto-Response-Suppress: no answer only
        NewRequest,
        {"requester": "anne@acme.example", "policy_id": "saas-desk"},
        text_has=("deux fois",),
    ),
    "spoofed-display-name.eml": Expect(  # the encoded word is a name: mallory wrote this
        Refuse, {"reason": RefusalReason.UNKNOWN_SENDER, "to": "mallory@evil.example"}
    ),
}


def test_every_fixture_has_a_decision() -> None:
    assert sorted(CASES) == sorted(p.name for p in CORPUS.glob("*.eml"))


def _values(decision: Decision) -> dict[str, Any]:
    if isinstance(decision, NewRequest):
        return {**decision.submission.model_dump(), "message_id": decision.message_id}
    return dict(vars(decision))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_corpus_routes_as_expected(name: str) -> None:
    expect = CASES[name]
    mail = corpus_mail(name)
    decision = route(mail, CONFIG, POLICIES, DIRECTORY, TICKETS)
    assert isinstance(decision, expect.kind), decision
    values = _values(decision)
    for key, value in expect.fields.items():
        assert values[key] == value, (key, values[key])
    text = values.get("body") or values.get("description") or ""
    for piece in expect.text_has:
        assert piece in text, (piece, text)
    for piece in expect.text_lacks:
        assert piece not in text, (piece, text)
    if isinstance(decision, NewRequest | Comment):
        assert tuple(a.filename for a in decision.attachments) == expect.attachments
        assert decision.message_id == mail.identity


def test_a_ten_megabyte_attachment_is_kept_whole() -> None:
    blob = hashlib.sha256(b"seed").digest() * (10 * 1024 * 1024 // 32)
    message = EmailMessage()
    message["From"] = "Dan Smith <dan@initech.example>"
    message["To"] = "support@cloud-partner.example"
    message["Subject"] = "Heap dump of the crashed node"
    message["Message-ID"] = "<dump-1@initech.example>"
    message.set_content("The heap dump is attached.")
    message.add_attachment(
        blob, maintype="application", subtype="octet-stream", filename="heap.bin"
    )
    raw = message.as_bytes()
    assert len(raw) > 13_000_000  # base64 on the wire
    envelope = SmtpEnvelope("dan@initech.example", ("support@cloud-partner.example",))
    decision = route(parse(through_mx(raw), envelope), CONFIG, POLICIES, DIRECTORY, TICKETS)
    assert isinstance(decision, NewRequest)
    (attachment,) = decision.attachments
    assert attachment.filename == "heap.bin" and attachment.size == len(blob)
    assert attachment.sha256 == hashlib.sha256(blob).hexdigest()
    assert decision.submission.description == "The heap dump is attached."


def test_the_same_bytes_without_message_id_have_the_same_identity() -> None:
    raw = (CORPUS / "missing-headers.eml").read_bytes()
    assert parse(raw).identity == parse(raw).identity
    assert parse(raw).identity != parse(raw + b"\r\nP.S.\r\n").identity
