"""Routing rules beyond the corpus: loop guards one by one, limits per sender, desk choice."""

from __future__ import annotations

import pytest
from mail_world import CONFIG, DIRECTORY, POLICIES, PRB, TICKETS, through_mx

from desk_contracts.mail import RefusalReason
from desk_policies.directory import Directory, Organisation, Person, parse_directory
from intake.domain.mail import (
    Comment,
    Drop,
    DropKind,
    NewRequest,
    Refuse,
    SenderCounts,
    SmtpEnvelope,
    parse,
    route,
)
from intake.domain.mail.route import MAX_MAIL_PARTICIPANTS
from intake.domain.mail.threading import ticket_of


def mail(headers: str, body: str = "Hello, the export fails.", *, mail_from: str = "x@y.example",
         rcpt: str = "support@saas-desk.example") -> bytes:  # fmt: skip
    head = "From: Anne Martin <anne@acme.example>\r\nMessage-ID: <m1@acme.example>\r\n" + headers
    return (head + "\r\n" + body + "\r\n").encode()


def decide(raw: bytes, counts: SenderCounts | None = None, rcpt: str = "support@saas-desk.example",
           mail_from: str = "anne@acme.example") -> object:  # fmt: skip
    envelope = SmtpEnvelope(mail_from, (rcpt,))
    return route(parse(through_mx(raw), envelope), CONFIG, POLICIES, DIRECTORY, TICKETS, counts)


@pytest.mark.parametrize(
    "headers",
    [
        "Subject: Export\r\nAuto-Submitted: auto-replied\r\n",
        "Subject: Export\r\nPrecedence: junk\r\n",
        "Subject: Export\r\nPrecedence: list\r\n",
        "Subject: Export\r\nX-Autorespond: yes\r\n",
        "Subject: Export\r\nX-Autoreply: yes\r\n",
        "Subject: Out of Office: Export\r\nAuto-Submitted: auto-replied\r\n",
        "Subject: Export\r\nContent-Type: multipart/report; report-type=delivery-status\r\n",
    ],
)
def test_automatic_mail_is_dropped_silently(headers: str) -> None:
    decision = decide(mail(headers))
    assert isinstance(decision, Drop) and decision.reason.startswith("automatic message")
    report = "multipart/report" in headers  # a delivery report, whichever guard saw it first
    assert decision.kind is (DropKind.BOUNCE if report else DropKind.AUTOMATIC)


WEAK_SIGNS = [
    "Subject: Export\r\nX-Auto-Response-Suppress: OOF\r\n",
    "Subject: Export\r\nList-Id: <support.acme.example>\r\n",
    "Subject: Out of Office: Export\r\n",
    "Subject: Automatic reply: Export\r\n",
    "Subject: Absence : retour le 9 mars\r\n",
    "Subject: Réponse automatique : Export\r\n",
    "Subject: Delivery failure when exporting invoices\r\n",
    "Subject: Undeliverable invoices stuck in queue\r\n",
]


@pytest.mark.parametrize("headers", WEAK_SIGNS)
def test_weak_signs_of_automatic_mail_never_stop_a_request(headers: str) -> None:
    assert isinstance(decide(mail(headers)), NewRequest)
    reply = mail(headers.replace("Subject: ", "Subject: Re: [PRB-1001] "))
    assert isinstance(decide(reply, rcpt="support@desk.example"), Comment)


@pytest.mark.parametrize("headers", WEAK_SIGNS)
def test_weak_signs_of_automatic_mail_stop_the_answer(headers: str) -> None:
    raw = mail(headers).replace(b"anne@acme.example", b"eve@freemail.example")
    decision = decide(raw, mail_from="eve@freemail.example")
    assert isinstance(decision, Drop) and decision.reason.startswith("no answer"), decision
    assert decision.kind is DropKind.NO_ANSWER


def test_a_person_saying_auto_submitted_no_is_heard() -> None:
    assert isinstance(decide(mail("Subject: Export\r\nAuto-Submitted: no\r\n")), NewRequest)


def test_a_subject_about_absences_is_not_an_out_of_office() -> None:
    assert isinstance(decide(mail("Subject: Absences mal calculées\r\n")), NewRequest)


def test_a_null_return_path_is_a_bounce() -> None:
    decision = decide(mail("Subject: Export\r\n"), mail_from="")
    assert isinstance(decision, Drop) and decision.kind is DropKind.BOUNCE


def test_over_the_hourly_limit_a_sender_is_dropped() -> None:
    raw = mail("Subject: Export\r\n")
    assert isinstance(decide(raw, SenderCounts(messages_this_hour=60)), NewRequest)
    dropped = decide(raw, SenderCounts(messages_this_hour=61))
    assert isinstance(dropped, Drop) and dropped.kind is DropKind.SENDER_OVER_LIMIT
    dropped = decide(raw, SenderCounts(domain_messages_this_hour=301))
    assert isinstance(dropped, Drop) and dropped.kind is DropKind.DOMAIN_OVER_LIMIT
    dropped = decide(raw, SenderCounts(desk_messages_this_hour=1001))
    assert isinstance(dropped, Drop) and dropped.kind is DropKind.DESK_OVER_LIMIT


def test_automatic_answers_stop_at_the_daily_limit() -> None:
    raw = mail("Subject: Export\r\n").replace(b"anne@acme.example", b"eve@freemail.example")
    eve = "eve@freemail.example"
    assert isinstance(decide(raw, SenderCounts(answers_today=4), mail_from=eve), Refuse)
    dropped = decide(raw, SenderCounts(answers_today=5), mail_from=eve)
    assert isinstance(dropped, Drop) and "already sent today" in dropped.reason


def test_the_desk_is_the_support_address_written_to() -> None:
    decision = decide(mail("Subject: Export\r\n"), rcpt="support@cloud-partner.example")
    assert isinstance(decision, NewRequest) and decision.submission.policy_id == "cloud-partner"
    assert decision.submission.request_type == "support"


def test_a_new_message_to_the_notifications_address_names_no_desk() -> None:
    raw = mail("To: support@desk.example\r\nSubject: Export\r\n")
    decision = decide(raw, rcpt="support@desk.example")
    assert isinstance(decision, Drop) and decision.kind is DropKind.NO_DESK


def test_the_subject_key_wins_over_headers() -> None:
    raw = mail(
        "Subject: Re: [PRB-1001] Export\r\n"
        "In-Reply-To: <7d2e4f10-5a6b-4c8d-9e0f-1a2b3c4d5e02.1@desk.example>\r\n"
    )
    decision = decide(raw, rcpt="support@desk.example")
    assert isinstance(decision, Comment) and decision.ticket_key == PRB.key


def test_a_participant_from_another_organisation_may_reply() -> None:
    outsider = "consultant@partner.example"
    ticket = PRB.model_copy(update={"participants": (outsider,)})
    raw = through_mx(
        mail("Subject: Re: [PRB-1001] Export\r\n").replace(b"anne@acme.example", outsider.encode())
    )
    envelope = SmtpEnvelope(outsider, ("support@desk.example",))
    decision = route(parse(raw, envelope), CONFIG, POLICIES, DIRECTORY, [ticket])
    assert isinstance(decision, Comment) and decision.author_role == "participant"
    stranger = route(parse(raw, envelope), CONFIG, POLICIES, DIRECTORY, [PRB])
    assert isinstance(stranger, Refuse) and stranger.reason is RefusalReason.UNKNOWN_SENDER


def test_our_message_ids_carry_the_ticket() -> None:
    domains = {"desk.example"}
    assert ticket_of("<3f6c2a9e-8b1d-4c57-9a0e-2d4b6f8e1a01.5be3@desk.example>", domains) == (
        "3f6c2a9e-8b1d-4c57-9a0e-2d4b6f8e1a01"
    )
    assert ticket_of("<3f6c2a9e-8b1d-4c57-9a0e-2d4b6f8e1a01.5be3@evil.example>", domains) is None
    assert ticket_of("<not-a-ticket.1@desk.example>", domains) is None


def test_cc_colleagues_become_participants_only_when_the_directory_admits_them() -> None:
    made_up = ", ".join(f"user{n}@acme.example" for n in range(200))
    cc = f"{made_up}, Bruno <bruno@acme.example>, carla@globex.example, spam@outside.example"
    decision = decide(mail(f"Subject: Export\r\nTo: support@saas-desk.example\r\nCc: {cc}\r\n"))
    assert isinstance(decision, NewRequest)
    assert decision.submission.participants == ["bruno@acme.example"]
    assert len(decision.ignored) == 202 and "user7@acme.example" in decision.ignored
    assert "carla@globex.example" in decision.ignored
    assert "support@saas-desk.example" not in decision.ignored  # our own address: not a person


def test_cc_participants_are_bounded() -> None:
    people = [{"email": f"p{n}@acme.example", "name": f"P{n}", "organisation": "acme"}
              for n in range(30)]  # fmt: skip
    directory = parse_directory(
        {"organisations": [{"id": "acme", "name": "ACME", "domains": ["acme.example"]}],
         "people": [{"email": "anne@acme.example", "name": "Anne", "organisation": "acme"},
                    *people]}
    )  # fmt: skip
    cc = ", ".join(p["email"] for p in people)
    raw = mail(f"Subject: Export\r\nTo: support@saas-desk.example\r\nCc: {cc}\r\n")
    envelope = SmtpEnvelope("anne@acme.example", ("support@saas-desk.example",))
    decision = route(parse(through_mx(raw), envelope), CONFIG, POLICIES, directory, TICKETS)
    assert isinstance(decision, NewRequest)
    bound = MAX_MAIL_PARTICIPANTS
    assert bound < 30
    assert decision.submission.participants == [f"p{n}@acme.example" for n in range(bound)]
    assert decision.ignored == tuple(f"p{n}@acme.example" for n in range(bound, 30))


def test_a_cc_address_the_directory_admits_but_the_address_rule_refuses_is_ignored() -> None:
    # a directory built without its checks (an older file, a hand-made object) lists an entry
    # email-validator refuses: the message is still read, that address ignored with the others
    directory = Directory.model_construct(
        organisations=(Organisation(id="acme", name="ACME", domains=("acme.example",)),),
        people=(
            Person(email="anne@acme.example", name="Anne", organisation="acme"),
            Person(email="bruno@acme.example", name="Bruno", organisation="acme"),
            Person.model_construct(
                email="x..y@acme.example", name="X", organisation="acme", roles={}
            ),
        ),
    )
    assert directory.person("x..y@acme.example") is not None
    cc = "x..y@acme.example, Bruno@ACME.example, carla@globex.example"
    raw = mail(f"Subject: Export\r\nTo: support@saas-desk.example\r\nCc: {cc}\r\n")
    envelope = SmtpEnvelope("anne@acme.example", ("support@saas-desk.example",))
    decision = route(parse(through_mx(raw), envelope), CONFIG, POLICIES, directory, TICKETS)
    assert isinstance(decision, NewRequest), decision
    assert decision.submission.participants == ["bruno@acme.example"]
    assert decision.ignored == ("x..y@acme.example", "carla@globex.example")


def test_a_sender_the_address_rule_refuses_is_dropped_not_answered() -> None:
    raw = mail("Subject: Export\r\nTo: support@saas-desk.example\r\n").replace(
        b"<anne@acme.example>", b"<anne..martin@acme.example>"
    )
    decision = decide(raw, mail_from="anne..martin@acme.example")
    assert isinstance(decision, Drop), decision
    assert decision.reason.startswith("sender 'anne..martin@acme.example' is not an e-mail address")


def test_an_unauthenticated_stranger_gets_no_answer() -> None:
    """A domain without DMARC whose mail passed no aligned check: the From may be forged, so
    the refusal is silent (an answer would be backscatter to whoever was impersonated)."""
    raw = mail("Subject: Export\r\n").replace(b"anne@acme.example", b"victim@victim.example")
    envelope = SmtpEnvelope("victim@victim.example", ("support@saas-desk.example",))
    unchecked = route(parse(through_mx(raw, "none"), envelope), CONFIG, POLICIES, DIRECTORY, [])
    assert isinstance(unchecked, Drop)
    assert unchecked.reason.startswith("no answer: the sender is not authenticated")
    assert "unknown_sender" in unchecked.reason
    answered = route(parse(through_mx(raw), envelope), CONFIG, POLICIES, DIRECTORY, [])
    assert isinstance(answered, Refuse) and answered.reason is RefusalReason.UNKNOWN_SENDER
