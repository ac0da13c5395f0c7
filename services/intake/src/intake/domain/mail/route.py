"""`route`: what an inbound message becomes. A new request, a comment on a request, a refusal
with an automatic answer, or a silent drop (logged by the caller with its reason). The requests
it may answer are given as their `RequestState` (as workflow last published them, or as intake
created them).

Order of the checks: a message that cannot be parsed, or without a sender, or whose From
address is not an address (`desk_contracts.inputs.address`), or written by a
machine (loop guards), or that nobody we trust checked (`trust.Dmarc.ABSENT`: not through our
MX), or failing DMARC, or whose SMTP envelope sender (`MAIL FROM`) is not of the From address's
domain (or one of its subdomains), or over the sender's, its domain's or the desk's hourly
limit is dropped; one whose DMARC check met a DNS failure is deferred; a message that refers to
a request (subject key, then our Message-IDs) is a reply, taken as a comment only when its From
domain is authenticated (DMARC pass) and only from the requester, a participant or their
organisation, where the desk takes replies by mail; a reply naming one of our requests that the
gateway does not know yet is deferred while the message is young (`defer_for` since it was
first seen, or since its Date), then read as a new message; any other message opens a request
at the desk whose support address it was sent to, when the directory knows the sender's
organisation. Its To and Cc colleagues become participants (they receive the request's mail)
only when they are addresses (`desk_contracts.inputs.address`, email-validator) that the
directory admits in that organisation (`Directory.may_take_part`), at most
`MAX_MAIL_PARTICIPANTS`; the others are ignored (`NewRequest.ignored`, logged by the caller),
so no address makes the message unreadable.

An automatic answer goes only to an envelope sender that is the From address itself (RFC 3834
§4: never to a forged address), never for a message that looks automatic (`no_answer`), and at
most `answers_per_day` times a day to one sender; otherwise the refusal is a silent drop.

Each drop and deferral says why in words (`reason`, for the log) and in a word of a bounded set
(`kind`: `DropKind`, `DeferKind`), which the gateway's metrics count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import ValidationError

from desk_contracts.inputs import address
from desk_contracts.mail import RefusalReason
from desk_contracts.state import RequestState
from desk_policies.directory import Directory
from desk_policies.model import DeskPolicy, StatusCategory
from intake.domain.mail.guards import automatic, bounce, no_answer
from intake.domain.mail.message import InboundMail, MailAttachment
from intake.domain.mail.threading import References, references
from intake.domain.mail.trust import UNCHECKED, Dmarc, SenderCheck, from_mx
from intake.domain.submission import Submission

MAX_SUBJECT = 200
MAX_DESCRIPTION = 100_000
_PREFIXES = re.compile(r"^\s*(?:(?:re|tr|fw|fwd|aw|wg|ref|réf)\s*(?:\[\d+\])?\s*:\s*)+", re.I)
_NO_SUBJECT = {"fr": "(sans objet)", "en": "(no subject)"}
MAX_ANSWERED_SUBJECT = 80  # the subject quoted in an automatic answer: one line, this long
DEFER_FOR = timedelta(minutes=15)
MAX_MAIL_PARTICIPANTS = 20  # colleagues of a new request's To/Cc made participants, at most


@dataclass(frozen=True)
class SenderCounts:
    """Recent traffic: the sender's messages this hour (this one included), answers to it
    today, and this hour's messages from its mail domain and to the desk it writes to."""

    messages_this_hour: int = 1
    answers_today: int = 0
    domain_messages_this_hour: int = 1
    desk_messages_this_hour: int = 1


@dataclass(frozen=True)
class GatewayConfig:
    desks: Mapping[str, str]  # support address -> desk (policy id)
    own_domains: frozenset[str]  # domains we send from: our Message-IDs, our own mail
    messages_per_hour: int = 60
    answers_per_day: int = 5
    # authserv-ids of our MX's Authentication-Results headers: the only ones believed
    authserv_ids: frozenset[str] = frozenset()
    defer_for: timedelta = DEFER_FOR
    # who checks the From domain: mx (our MX's headers), self (the gateway), off (nobody)
    verify: str = "self"
    domain_messages_per_hour: int = 300
    desk_messages_per_hour: int = 1000

    @classmethod
    def of(
        cls,
        policies: Mapping[str, DeskPolicy],
        sending_address: str,
        *,
        messages_per_hour: int = 60,
        answers_per_day: int = 5,
        authserv_ids: frozenset[str] = frozenset(),
        defer_for: timedelta = DEFER_FOR,
        verify: str | None = None,
        domain_messages_per_hour: int = 300,
        desk_messages_per_hour: int = 1000,
    ) -> GatewayConfig:
        """`verify` None: `mx` when `authserv_ids` are given, else `self`."""
        desks = {
            p.email_intake.support_address.lower(): p.id
            for p in policies.values()
            if p.email_intake.support_address
        }
        domains = {sending_address.lower().rpartition("@")[2]}
        domains |= {address.rpartition("@")[2] for address in desks}
        return cls(
            desks,
            frozenset(domains),
            messages_per_hour,
            answers_per_day,
            frozenset(a.lower() for a in authserv_ids),
            defer_for,
            verify or ("mx" if authserv_ids else "self"),
            domain_messages_per_hour,
            desk_messages_per_hour,
        )

    @property
    def addresses(self) -> frozenset[str]:
        return frozenset(self.desks)


@dataclass(frozen=True)
class NewRequest:
    submission: Submission
    message_id: str
    attachments: tuple[MailAttachment, ...] = ()
    ignored: tuple[str, ...] = ()  # To/Cc addresses not made participants (not admitted, or over)


@dataclass(frozen=True)
class Comment:
    ticket_id: str
    ticket_key: str
    policy_id: str
    author_id: str
    author_role: str  # requester | participant (a participant or a member of the organisation)
    organisation_id: str | None
    body: str
    message_id: str
    attachments: tuple[MailAttachment, ...] = ()


@dataclass(frozen=True)
class Refuse:
    to: str
    policy_id: str
    reason: RefusalReason
    language: str
    original_subject: str
    original_message_id: str
    explanation: str
    ticket_key: str | None = None
    ticket_id: str | None = None
    portal_url: str | None = None


class DropKind(StrEnum):
    """Why a message is dropped, in a word."""

    UNPARSEABLE = "unparseable"  # the message cannot be read
    NO_SENDER = "no_sender"  # no From address, or not an address
    AUTOMATIC = "automatic"  # a machine wrote it (auto-reply, bulk, our own mail)
    BOUNCE = "bounce"  # a delivery report
    NOT_BELIEVED = "not_believed"  # nobody we trust checked the From domain, or DMARC fails
    MISALIGNED = "misaligned"  # the envelope sender is not of the From domain
    SENDER_OVER_LIMIT = "sender_over_limit"
    DOMAIN_OVER_LIMIT = "domain_over_limit"
    DESK_OVER_LIMIT = "desk_over_limit"
    REPLY_NOT_AUTHENTICATED = "reply_not_authenticated"  # a reply, but DMARC did not pass
    NO_ANSWER = "no_answer"  # refused, and no automatic answer may go to the sender
    UNKNOWN_DESK = "unknown_desk"  # a reply to a request of a desk not configured here
    NO_DESK = "no_desk"  # neither to a support address nor a reply to a request
    SUBMISSION_REFUSED = "submission_refused"  # the desk's mail defaults do not fit its policy
    REQUEST_FULL = "request_full"  # a reply to a request at its size limit


@dataclass(frozen=True)
class Drop:
    reason: str
    kind: DropKind


class DeferKind(StrEnum):
    """Why a message is deferred, in a word."""

    DNS_FAILURE = "dns_failure"  # the sender's DNS could not be checked
    UNKNOWN_REQUEST = "unknown_request"  # a reply to one of our requests not known here yet


@dataclass(frozen=True)
class Defer:
    """Not now: the message names one of our requests that the gateway does not know yet, or
    its sender could not be checked."""

    reason: str
    kind: DeferKind


Decision = NewRequest | Comment | Refuse | Drop | Defer


def route(
    mail: InboundMail,
    config: GatewayConfig,
    policies: Mapping[str, DeskPolicy],
    directory: Directory,
    tickets: Sequence[RequestState] = (),
    counts: SenderCounts | None = None,
    *,
    now: datetime | None = None,
    first_seen: datetime | None = None,
    sender_check: SenderCheck | None = None,
) -> Decision:
    """`now` and `first_seen` (when the gateway first saw this message) date the message for a
    deferral; without `now`, a reply to a request not known yet is always deferred.
    `sender_check` is the gateway's own verdict on the From domain (`verify=self`); otherwise
    the verdict is our MX's headers' (`verify=mx`), or a pass (`verify=off`)."""
    counts = counts or SenderCounts()
    check = sender_check or sender_check_of(mail, config)
    decision = _route(mail, config, policies, directory, tickets, counts, now, first_seen, check)
    if isinstance(decision, Refuse):
        if not check.authenticated:  # a forged From would turn the answer into backscatter
            return Drop(f"no answer: the sender is not authenticated, {check.reason} "
                        f"({decision.reason})", DropKind.NO_ANSWER)  # fmt: skip
        envelope_sender = mail.envelope.mail_from.strip("<> ").lower()
        if not envelope_sender or envelope_sender != decision.to:
            return Drop(
                f"no answer: envelope sender {envelope_sender or '<>'!r} is not the From "
                f"address {decision.to!r} ({decision.reason})",
                DropKind.NO_ANSWER,
            )
        weak = no_answer(mail)
        if weak is not None:
            return Drop(f"no answer: {weak} ({decision.reason})", DropKind.NO_ANSWER)
        if counts.answers_today >= config.answers_per_day:
            return Drop(
                f"no answer: {config.answers_per_day} already sent today ({decision.reason})",
                DropKind.NO_ANSWER,
            )
    return decision


def _route(
    mail: InboundMail,
    config: GatewayConfig,
    policies: Mapping[str, DeskPolicy],
    directory: Directory,
    tickets: Sequence[RequestState],
    counts: SenderCounts,
    now: datetime | None,
    first_seen: datetime | None,
    check: SenderCheck,
) -> Decision:
    if mail.unparseable:
        return Drop("; ".join(mail.problems) or "unparseable message", DropKind.UNPARSEABLE)
    if mail.sender is None:
        return Drop("no sender address", DropKind.NO_SENDER)
    try:
        address(mail.sender)
    except ValueError as error:  # no request, comment or answer for it
        return Drop(f"sender {error}", DropKind.NO_SENDER)
    robot = automatic(mail, config.own_domains)
    if robot is not None:
        kind = DropKind.BOUNCE if bounce(mail) else DropKind.AUTOMATIC
        return Drop(f"automatic message: {robot}", kind)
    if check.dmarc in (Dmarc.ABSENT, Dmarc.FAIL):
        return Drop(f"sender not believed: {check.reason}", DropKind.NOT_BELIEVED)
    misaligned = _misaligned(mail)
    if misaligned is not None:
        return Drop(misaligned, DropKind.MISALIGNED)
    return _over_limit(mail, config, counts) or _thread_or_new(
        mail, config, policies, directory, tickets, now, first_seen, check
    )


def _over_limit(mail: InboundMail, config: GatewayConfig, counts: SenderCounts) -> Drop | None:
    """The drop of a message over its sender's, its domain's or its desk's hourly limit."""
    if counts.messages_this_hour > config.messages_per_hour:
        return Drop(f"sender over {config.messages_per_hour} messages an hour",
                    DropKind.SENDER_OVER_LIMIT)  # fmt: skip
    if counts.domain_messages_this_hour > config.domain_messages_per_hour:
        domain = (mail.sender or "").rpartition("@")[2]
        return Drop(f"domain {domain} over {config.domain_messages_per_hour} messages an hour",
                    DropKind.DOMAIN_OVER_LIMIT)  # fmt: skip
    if counts.desk_messages_this_hour > config.desk_messages_per_hour:
        return Drop(f"desk {desk_of(mail, config)} over {config.desk_messages_per_hour} "
                    "messages an hour", DropKind.DESK_OVER_LIMIT)  # fmt: skip
    return None


def _thread_or_new(
    mail: InboundMail,
    config: GatewayConfig,
    policies: Mapping[str, DeskPolicy],
    directory: Directory,
    tickets: Sequence[RequestState],
    now: datetime | None,
    first_seen: datetime | None,
    check: SenderCheck,
) -> Decision:
    """A believed message within its limits: a reply to a request, deferred, or a new one."""
    if check.dmarc is Dmarc.TEMPERROR:
        return Defer(f"the sender's DNS could not be checked ({check.reason[:120]})",
                     DeferKind.DNS_FAILURE)  # fmt: skip
    refs = references(mail, config.own_domains)
    ticket = _thread(refs, tickets)
    if ticket is not None:
        if not check.authenticated:
            return Drop(f"reply to {ticket.key} not authenticated, so not a comment: "
                        f"{check.reason}", DropKind.REPLY_NOT_AUTHENTICATED)  # fmt: skip
        return _reply(mail, ticket, policies, directory)
    if refs.ticket_ids and _young(mail, config, now, first_seen):
        return Defer(f"reply to request {refs.ticket_ids[0]}, not known here yet",
                     DeferKind.UNKNOWN_REQUEST)  # fmt: skip
    return _new_request(mail, config, policies, directory)


def sender_check_of(mail: InboundMail, config: GatewayConfig) -> SenderCheck:
    """The verdict on the From domain when the gateway did not check it itself: our MX's
    (`verify=mx`), a pass (`off`), or nobody's (`self` without a check: never believed)."""
    if config.verify == "off":
        return SenderCheck(Dmarc.PASS, "nobody", "sender checks are off (MAIL_VERIFY=off)")
    if config.verify == "mx":
        from_domain = (mail.sender or "").rpartition("@")[2]
        return from_mx(mail.authentication_results, config.authserv_ids, from_domain)
    return UNCHECKED


def _misaligned(mail: InboundMail) -> str | None:
    """Why the SMTP envelope sender does not vouch for the From address (None: it does): its
    domain must be the From address's domain or one of its subdomains."""
    envelope_sender = mail.envelope.mail_from.strip("<> ").lower()
    envelope_domain = envelope_sender.rpartition("@")[2]
    from_domain = (mail.sender or "").rpartition("@")[2]
    if envelope_domain and (
        envelope_domain == from_domain or envelope_domain.endswith("." + from_domain)
    ):
        return None
    return f"envelope sender {envelope_sender or '<>'!r} is not of the From domain {from_domain!r}"


def _young(
    mail: InboundMail, config: GatewayConfig, now: datetime | None, first_seen: datetime | None
) -> bool:
    """The message is recent enough to wait for its request: first seen by the gateway (or, for
    a message the gateway did not date, written: a Date in the future counts for nothing) less
    than `defer_for` ago."""
    if now is None:
        return True
    dates = [d for d in (first_seen, mail.date) if d is not None and d <= now]
    return now - min(dates, default=now) < config.defer_for


def _thread(refs: References, tickets: Sequence[RequestState]) -> RequestState | None:
    by_key = {t.key: t for t in tickets}
    by_id = {t.ticket_id: t for t in tickets}
    by_origin = {t.source_message_id.lower(): t for t in tickets if t.source_message_id}
    for key in refs.keys:
        if key in by_key:
            return by_key[key]
    for ticket_id in refs.ticket_ids:
        if ticket_id in by_id:
            return by_id[ticket_id]
    for message_id in refs.message_ids:
        if message_id in by_origin:
            return by_origin[message_id]
    return None


def _language(mail: InboundMail, directory: Directory) -> str:
    fallback = mail.language if mail.language in ("fr", "en") else "en"
    return directory.language_of(mail.sender or "", fallback or "en")


def _refuse(
    mail: InboundMail,
    policy: DeskPolicy,
    directory: Directory,
    reason: RefusalReason,
    explanation: str,
    ticket: RequestState | None = None,
) -> Refuse:
    return Refuse(
        to=mail.sender or "",
        policy_id=policy.id,
        reason=reason,
        language=_language(mail, directory),
        original_subject=_one_line(mail.subject, MAX_ANSWERED_SUBJECT),
        original_message_id=mail.identity,
        explanation=explanation,
        ticket_key=ticket.key if ticket else None,
        ticket_id=ticket.ticket_id if ticket else None,
        portal_url=policy.email_replies.portal_url,
    )


def _one_line(text: str, limit: int) -> str:
    """`text` on one line of printable characters, cut at `limit` (with an ellipsis)."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text[: limit * 4]).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _reply(
    mail: InboundMail,
    ticket: RequestState,
    policies: Mapping[str, DeskPolicy],
    directory: Directory,
) -> Decision:
    policy = policies.get(ticket.policy_id)
    if policy is None:
        return Drop(f"request {ticket.key} belongs to unknown desk {ticket.policy_id!r}",
                    DropKind.UNKNOWN_DESK)  # fmt: skip
    sender = mail.sender or ""
    organisation = directory.organisation_of(sender)
    if sender == ticket.requester_id:
        role = "requester"
    elif sender in ticket.participants or organisation == ticket.organisation_id:
        role = "participant"
    else:
        return _refuse(
            mail,
            policy,
            directory,
            RefusalReason.UNKNOWN_SENDER,
            f"{sender} is neither the requester, a participant nor of {ticket.organisation_id}",
            ticket,
        )
    closed = ticket.category == StatusCategory.CLOSED
    final = closed and (policy.closed_is_final or not policy.comments_on_closed)
    if final:
        return _refuse(
            mail, policy, directory, RefusalReason.REQUEST_CLOSED, f"{ticket.key} is closed", ticket
        )
    if not policy.email_replies.accepted:
        return _refuse(
            mail,
            policy,
            directory,
            RefusalReason.REPLIES_BY_PORTAL_ONLY,
            f"desk {policy.id} takes replies on the portal only",
            ticket,
        )
    body = mail.reply or _attachments_note(mail)
    if not body:
        return _refuse(
            mail, policy, directory, RefusalReason.UNREADABLE, "no text in the reply", ticket
        )
    return Comment(
        ticket_id=ticket.ticket_id,
        ticket_key=ticket.key,
        policy_id=policy.id,
        author_id=sender,
        author_role=role,
        organisation_id=organisation,
        body=body[:MAX_DESCRIPTION],
        message_id=mail.identity,
        attachments=mail.attachments,
    )


def _attachments_note(mail: InboundMail) -> str:
    if not mail.attachments:
        return ""
    return "Attachments: " + ", ".join(a.filename for a in mail.attachments)


def desk_of(mail: InboundMail, config: GatewayConfig) -> str | None:
    """The desk a message is written to: the first support address among its recipients."""
    for recipient in (*mail.envelope.rcpt_tos, *mail.to, *mail.cc):
        desk = config.desks.get(recipient.strip("<>").lower())
        if desk is not None:
            return desk
    return None


def _new_request(
    mail: InboundMail,
    config: GatewayConfig,
    policies: Mapping[str, DeskPolicy],
    directory: Directory,
) -> Decision:
    desk = desk_of(mail, config)
    policy = policies.get(desk) if desk else None
    if policy is None:
        return Drop("not sent to a desk's support address, nor a reply to a request",
                    DropKind.NO_DESK)  # fmt: skip
    sender = mail.sender or ""
    organisation = directory.organisation_of(sender)
    if organisation is None:
        return _refuse(
            mail,
            policy,
            directory,
            RefusalReason.UNKNOWN_SENDER,
            f"{sender} belongs to no organisation of the directory",
        )
    language = _language(mail, directory)
    subject = _PREFIXES.sub("", mail.subject).strip() or mail.subject.strip()
    if len(subject) < 3:
        subject = _NO_SUBJECT.get(language, _NO_SUBJECT["en"])
    description = mail.text or _attachments_note(mail) or mail.subject.strip()
    if not description:
        return _refuse(
            mail, policy, directory, RefusalReason.UNREADABLE, "neither text nor attachment"
        )
    participants: list[str] = []
    ignored: list[str] = []
    for written in dict.fromkeys((*mail.to, *mail.cc)):
        try:  # the one address rule, whatever the directory lists
            checked = address(written)
        except ValueError:
            ignored.append(written)
            continue
        if checked == sender or checked.rpartition("@")[2] in config.own_domains:
            continue
        if checked in participants:
            continue
        admitted = directory.may_take_part(checked, organisation, policy.id) is None
        if admitted and len(participants) < MAX_MAIL_PARTICIPANTS:
            participants.append(checked)
        else:
            ignored.append(checked)
    try:
        submission = Submission(
            policy_id=policy.id,
            request_type=policy.mail_request_type,
            priority=policy.mail_priority,
            subject=subject[:MAX_SUBJECT],
            description=description[:MAX_DESCRIPTION],
            organisation_id=organisation,
            requester=sender,
            participants=participants,
            language=language,
        )
    except ValidationError as error:
        problem = "; ".join(f"{e['loc']}: {e['msg']}" for e in error.errors())
        return _refuse(mail, policy, directory, RefusalReason.UNREADABLE, problem)
    return NewRequest(submission, mail.identity, mail.attachments, tuple(ignored))
