"""Whom the gateway believes: addresses as sent (never from an RFC 2047 word), an envelope sender
of the From domain, our MX's DMARC verdict, answers only to the envelope sender that is From,
deferrals that end, and messages that cannot be parsed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from mail_world import CONFIG, DIRECTORY, POLICIES, TICKETS

from desk_contracts.mail import RefusalReason
from intake.domain.mail import (
    Comment,
    Decision,
    Defer,
    Drop,
    GatewayConfig,
    NewRequest,
    Refuse,
    SmtpEnvelope,
    parse,
    route,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
UNKNOWN_TICKET = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def raw(sender: str, headers: str = "", body: str = "The export fails.") -> bytes:
    return (
        f"From: {sender}\r\nTo: support@saas-desk.example\r\nMessage-ID: <t1@acme.example>\r\n"
        f"Subject: Export\r\n{headers}\r\n{body}\r\n"
    ).encode()


def decide(message: bytes, mail_from: str, rcpt: str = "support@saas-desk.example",
           config: GatewayConfig = CONFIG, now: datetime | None = None,
           first_seen: datetime | None = None) -> Decision:  # fmt: skip
    mail = parse(message, SmtpEnvelope(mail_from, (rcpt,)))
    return route(mail, config, POLICIES, DIRECTORY, TICKETS, now=now, first_seen=first_seen)


SPOOF = "=?utf-8?q?boss=40acme.example=2C?= <mallory@evil.example>"


def test_an_encoded_display_name_is_never_the_address() -> None:
    mail = parse(raw(SPOOF, "Cc: =?utf-8?q?bruno=40acme.example?= <x@evil.example>\r\n"))
    assert mail.sender == "mallory@evil.example" and mail.sender_name == "boss@acme.example,"
    assert mail.cc == ("x@evil.example",)
    decision = decide(raw(SPOOF), "mallory@evil.example")
    assert isinstance(decision, Refuse) and decision.to == "mallory@evil.example"
    assert decision.reason is RefusalReason.UNKNOWN_SENDER


def test_an_encoded_name_with_a_comma_stays_one_mailbox() -> None:
    mail = parse(raw("=?utf-8?q?Martin=2C_Anne?= <anne@acme.example>"))
    assert (mail.sender, mail.sender_name) == ("anne@acme.example", "Martin, Anne")


def test_several_from_mailboxes_name_no_sender() -> None:
    decision = decide(raw("anne@acme.example, mallory@evil.example"), "anne@acme.example")
    assert isinstance(decision, Drop) and decision.reason == "no sender address"


@pytest.mark.parametrize(
    "mail_from", ["mallory@evil.example", "anne@acme.example.evil.example", "", "anne@example"]
)
def test_an_envelope_sender_of_another_domain_is_dropped(mail_from: str) -> None:
    assert isinstance(decide(raw("anne@acme.example"), mail_from), Drop)
    reply = raw("anne@acme.example").replace(b"Subject: Export", b"Subject: Re: [PRB-1001] x")
    decision = decide(reply, mail_from, rcpt="support@desk.example")
    assert isinstance(decision, Drop), decision


@pytest.mark.parametrize("mail_from", ["anne@acme.example", "bounce-77@mail.acme.example"])
def test_an_envelope_sender_of_the_from_domain_is_believed(mail_from: str) -> None:
    assert isinstance(decide(raw("Anne <anne@acme.example>"), mail_from), NewRequest)


def test_our_mx_saying_dmarc_fail_drops_the_message() -> None:
    failing = "Authentication-Results: mx.desk.example; spf=pass; dmarc=fail header.from=acme\r\n"
    passing = "Authentication-Results: mx.desk.example; spf=pass; dmarc=pass\r\n"
    decision = decide(raw("anne@acme.example", failing), "anne@acme.example")
    assert isinstance(decision, Drop) and "DMARC" in decision.reason
    # the topmost header is our MX's; one further down was written by the sender
    forged_lower = raw("anne@acme.example", passing + failing)
    assert isinstance(decide(forged_lower, "anne@acme.example"), NewRequest)
    # with authserv-ids configured, only ours count, wherever they are
    ours = replace(CONFIG, authserv_ids=frozenset({"mx.desk.example"}))
    theirs = failing.replace("mx.desk.example", "mx.evil.example")
    assert isinstance(decide(raw("anne@acme.example", theirs), "anne@acme.example", config=ours),
                      NewRequest)  # fmt: skip
    late = raw("anne@acme.example", theirs + failing)
    assert isinstance(decide(late, "anne@acme.example", config=ours), Drop)


def test_answers_go_only_to_an_envelope_sender_that_is_the_from_address() -> None:
    stranger = raw("eve@freemail.example")
    assert isinstance(decide(stranger, "eve@freemail.example"), Refuse)
    forged = decide(stranger, "bounces+victim@freemail.example")  # aligned, yet not From
    assert isinstance(forged, Drop) and forged.reason.startswith("no answer")
    assert isinstance(decide(stranger, "<>"), Drop)


def test_the_answered_subject_is_one_short_line() -> None:
    message = raw("eve@freemail.example").replace(
        b"Subject: Export", b"Subject: =?utf-8?q?Line=0Abreak=1B=5B31m?= " + b"prizes! " * 40
    )
    decision = decide(message, "eve@freemail.example")
    assert isinstance(decision, Refuse)
    subject = decision.original_subject
    assert len(subject) <= 80 and subject.isprintable()
    assert subject.startswith("Line break [31m prizes!")


def reply_to_unknown(date: str = "") -> bytes:
    dated = f"Date: {date}\r\n" if date else ""
    return raw(
        "anne@acme.example", f"In-Reply-To: <{UNKNOWN_TICKET}.1@desk.example>\r\n{dated}"
    ).replace(b"To: support@saas-desk.example", b"To: support@desk.example")


def decide_reply(
    message: bytes, now: datetime | None = None, first_seen: datetime | None = None
) -> Decision:
    return decide(message, "anne@acme.example", "support@desk.example", CONFIG, now, first_seen)


def test_a_reply_to_an_unknown_request_is_deferred_only_while_young() -> None:
    message = reply_to_unknown()
    young = NOW - timedelta(minutes=14)
    old = NOW - timedelta(minutes=16)
    assert isinstance(decide_reply(message), Defer)  # undated: waits
    assert isinstance(decide_reply(message, now=NOW, first_seen=young), Defer)
    late = decide_reply(message, now=NOW, first_seen=old)
    assert isinstance(late, Drop) and "support address" in late.reason  # read as a new message
    to_desk = decide(message, "anne@acme.example", now=NOW, first_seen=old)
    assert isinstance(to_desk, NewRequest)


def test_the_date_header_dates_a_message_the_gateway_has_not_dated() -> None:
    old = reply_to_unknown("Mon, 2 Mar 2026 09:30:00 +0000")
    assert isinstance(decide_reply(old, now=NOW), Drop)
    recent = reply_to_unknown("Mon, 2 Mar 2026 10:50:00 +0100")
    assert isinstance(decide_reply(recent, now=NOW), Defer)
    future = reply_to_unknown("Tue, 1 Mar 2027 09:00:00 +0000")  # counts for nothing
    assert isinstance(decide_reply(future, now=NOW), Defer)
    seen_long_ago = NOW - timedelta(hours=3)
    assert isinstance(decide_reply(future, now=NOW, first_seen=seen_long_ago), Drop)


def nested(depth: int, kind: str = "multipart/mixed") -> bytes:
    head = (b"From: anne@acme.example\r\nTo: support@saas-desk.example\r\nSubject: Deep\r\n"
            b"Message-ID: <deep@acme.example>\r\nMIME-Version: 1.0\r\n")  # fmt: skip
    parts = b"".join(
        b"Content-Type: %s; boundary=b%d\r\n\r\n--b%d\r\n" % (kind.encode(), i, i)
        if kind.startswith("multipart/")
        else b"Content-Type: message/rfc822\r\n\r\n"
        for i in range(depth)
    )
    return head + parts + b"Content-Type: text/plain\r\n\r\nhello\r\n"


@pytest.mark.parametrize("kind", ["multipart/mixed", "message/rfc822"])
def test_mime_nested_too_deep_is_a_readable_drop(kind: str) -> None:
    mail = parse(nested(1000, kind), SmtpEnvelope("anne@acme.example", ("x@y.example",)))
    assert mail.unparseable and mail.sender == "anne@acme.example"
    assert mail.message_id == "<deep@acme.example>"
    assert any("RecursionError" in p for p in mail.problems), mail.problems
    decision = route(mail, CONFIG, POLICIES, DIRECTORY, TICKETS)
    assert isinstance(decision, Drop) and "unparseable" in decision.reason
    assert not isinstance(decision, Comment | NewRequest)
