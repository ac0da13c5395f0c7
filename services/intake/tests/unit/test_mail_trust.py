"""Whom the gateway believes: addresses as sent (never from an RFC 2047 word), an envelope sender
of the From domain, our MX's DMARC verdict (only the headers of our authserv-id), the gateway's
own DMARC verdict, answers only to the envelope sender that is From, deferrals that end, and
messages that cannot be parsed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from mail_world import CONFIG, DIRECTORY, MX, POLICIES, PRB, TICKETS, through_mx

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
from intake.domain.mail.trust import Dmarc, DmarcRecord, dmarc_verdict, parse_dmarc_record

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
UNKNOWN_TICKET = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def raw(sender: str, headers: str = "", body: str = "The export fails.") -> bytes:
    return (
        f"From: {sender}\r\nTo: support@saas-desk.example\r\nMessage-ID: <t1@acme.example>\r\n"
        f"Subject: Export\r\n{headers}\r\n{body}\r\n"
    ).encode()


def decide(message: bytes, mail_from: str, rcpt: str = "support@saas-desk.example",
           config: GatewayConfig = CONFIG, now: datetime | None = None,
           first_seen: datetime | None = None, mx: bool = True) -> Decision:  # fmt: skip
    """The decision on `message` as our MX hands it on (`mx`: with its dmarc=pass on top)."""
    mail = parse(through_mx(message) if mx else message, SmtpEnvelope(mail_from, (rcpt,)))
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


FAILING = f"Authentication-Results: {MX}; spf=pass; dmarc=fail header.from=acme.example\r\n"
FORGED = "Authentication-Results: mx.evil.example; spf=pass; dmarc=pass\r\n"


def test_our_mx_saying_dmarc_fail_drops_the_message() -> None:
    decision = decide(raw("anne@acme.example", FAILING), "anne@acme.example", mx=False)
    assert isinstance(decision, Drop) and "dmarc=fail" in decision.reason


def test_a_forged_pass_above_our_mx_s_fail_is_ignored() -> None:
    # the topmost header is the sender's: only the one with our authserv-id counts
    decision = decide(raw("anne@acme.example", FORGED + FAILING), "anne@acme.example", mx=False)
    assert isinstance(decision, Drop) and "dmarc=fail" in decision.reason
    theirs_fail = FAILING.replace(MX, "mx.evil.example")
    ours_pass = decide(raw("anne@acme.example", theirs_fail), "anne@acme.example")
    assert isinstance(ours_pass, NewRequest)


def test_a_message_our_mx_did_not_check_is_dropped() -> None:
    for headers in ("", FORGED, FORGED.replace("mx.evil.example", "mx.desk.example.evil")):
        decision = decide(raw("anne@acme.example", headers), "anne@acme.example", mx=False)
        assert isinstance(decision, Drop), headers
        assert "no Authentication-Results of our MX" in decision.reason


def reply_as_anne(verdict: str, header_from: str = "acme.example") -> Decision:
    message = raw(
        "anne@acme.example",
        f"Authentication-Results: {MX}; dmarc={verdict} header.from={header_from}\r\n",
    ).replace(b"Subject: Export", b"Subject: Re: [PRB-1001] Export")
    return decide(message, "anne@acme.example", "support@desk.example", mx=False)


def test_a_reply_becomes_a_comment_only_when_dmarc_passed() -> None:
    passed = reply_as_anne("pass")
    assert isinstance(passed, Comment) and passed.ticket_key == PRB.key
    for unauthenticated in (reply_as_anne("none"), reply_as_anne("pass", "evil.example")):
        assert isinstance(unauthenticated, Drop), unauthenticated
        assert "not authenticated" in unauthenticated.reason
    # a new request from a domain without DMARC is still taken (the directory knows anne)
    new = decide(
        raw("anne@acme.example", f"Authentication-Results: {MX}; dmarc=none\r\n"),
        "anne@acme.example", mx=False,
    )  # fmt: skip
    assert isinstance(new, NewRequest)


def test_a_dns_failure_defers_the_message() -> None:
    message = raw("anne@acme.example", f"Authentication-Results: {MX}; dmarc=temperror\r\n")
    decision = decide(message, "anne@acme.example", mx=False)
    assert isinstance(decision, Defer) and "DNS" in decision.reason


def test_sender_checks_off_believe_the_from_address() -> None:
    off = replace(CONFIG, verify="off", authserv_ids=frozenset())
    decision = decide(raw("anne@acme.example"), "anne@acme.example", config=off, mx=False)
    assert isinstance(decision, NewRequest)
    unchecked = replace(CONFIG, verify="self")  # self, yet no verdict given: nobody checked
    assert isinstance(decide(raw("anne@acme.example"), "anne@acme.example", config=unchecked,
                             mx=False), Drop)  # fmt: skip


REJECT = DmarcRecord("acme.example", "reject")


@pytest.mark.parametrize(
    ("record", "dkim", "spf", "spf_domain", "expected"),
    [
        (REJECT, ["acme.example"], "none", "", Dmarc.PASS),
        (REJECT, ["mail.acme.example"], "none", "", Dmarc.PASS),  # relaxed alignment
        (DmarcRecord("acme.example", "reject", strict_dkim=True), ["mail.acme.example"], "none",
         "", Dmarc.FAIL),
        (REJECT, [], "pass", "bounces.acme.example", Dmarc.PASS),
        (REJECT, [], "softfail", "acme.example", Dmarc.FAIL),
        (REJECT, ["evil.example"], "pass", "evil.example", Dmarc.FAIL),  # not aligned
        (REJECT, ["example"], "none", "", Dmarc.FAIL),  # a parent of the organisation
        (None, [], "none", "", Dmarc.NONE),
        (None, ["acme.example"], "none", "", Dmarc.PASS),
        (None, ["evil.example"], "pass", "evil.example", Dmarc.NONE),
    ],
)  # fmt: skip
def test_the_gateway_s_own_dmarc_verdict(
    record: DmarcRecord | None, dkim: list[str], spf: str, spf_domain: str, expected: Dmarc
) -> None:
    verdict = dmarc_verdict("acme.example", record, dkim, spf, spf_domain, by="gateway")
    assert verdict.dmarc is expected, verdict
    unreachable = dmarc_verdict("acme.example", record, dkim, spf, spf_domain, by="gateway",
                                temporary="DNS timeout")  # fmt: skip
    assert unreachable.dmarc is (Dmarc.PASS if expected is Dmarc.PASS else Dmarc.TEMPERROR)


def test_dmarc_records_are_read_from_their_tags() -> None:
    record = parse_dmarc_record("Acme.example", "v=DMARC1; p=reject; adkim=s; rua=mailto:x@y")
    assert record == DmarcRecord("acme.example", "reject", strict_dkim=True)
    assert parse_dmarc_record("acme.example", "v=spf1 -all") is None
    assert parse_dmarc_record("acme.example", "v=DMARC1; p=bogus") == DmarcRecord("acme.example")


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
