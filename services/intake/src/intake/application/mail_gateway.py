"""Carry out what `route` decided for an inbound message, through intake's outbox.

New request: `submit()` with the Message-ID as idempotency key (`TicketCreated`, channel email).
Comment: `CommentReceived` appended to the ticket's stream in intake's store (the relay sends it
to `ticket-commands`). Refusal: `AutomaticReplyRequested` on the stream `mail:<sender>` (the relay
sends it to `automatic-replies`). Comments and answers are recorded by Message-ID in the same
transaction, so a second delivery of a message does nothing. Attachments go to the blob store
first (content-addressed, so a retry rewrites nothing). Drops and deferrals are only logged.

A reply naming one of our requests that the gateway does not know (neither created by intake nor
published by workflow: `intake.adapters.mail_tickets`) is deferred, and the time the gateway
first saw it is kept (table `mail_first_seen`, keyed by the message's identity, forgotten with
the counters after two days): past `defer_for` it is no longer deferred. A message that cannot
be parsed is `unparseable` (the SMTP edge answers 554). A reply to a request whose stream is
full (the store's bound for people's writes) is `full`: refused for good (552, saying to open a
new request), never deferred. Automatic answers are the desk's own writes and are never refused
for a full stream.

With `verify=self` the `verifier` checks the From domain (DKIM, SPF, DMARC) before routing.
Every message with a sender counts, in the hour's window, for its sender; one whose sender is
not known forged (DMARC fail, not checked by our MX) counts for its sender's mail domain and the
desk it is written to as well (`mail_sender_counts`, kinds `message`, `domain`, `desk`:
`intake.application.counts`, which `POST /requests` counts in too).

`decision_of` names what became of a message in a word of a bounded set (`DECISIONS`), which
the SMTP edge counts (`desk_mail_gateway_decisions_total{decision}`): the decision's kind
(`new_request`, `comment`), with the reason's kind for a refusal, a drop or a deferral
(`refuse_unknown_sender`, `drop_bounce`, `defer_dns_failure`...), or `duplicate` for a message
handled before; the edge adds `shed`, `not_storable` and `failed`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.mail import AutomaticReplyRequested, RefusalReason
from desk_contracts.requests import CommentReceived
from desk_contracts.tickets import Attachment, Channel
from desk_eventstore.group_commit import GroupCommit
from desk_eventstore.records import NewEvent
from desk_eventstore.store import ConcurrencyError, StreamFull, append, stream_version
from desk_platform.blobs import BlobStore
from desk_platform.testclocks import TestClocks, clock_for_new_request
from desk_policies.directory import Directory, DirectorySource, current_directory
from desk_policies.model import DeskPolicy
from intake.adapters.mail_tickets import tickets_for
from intake.application.counts import count_message
from intake.application.submit import Accepted, submit
from intake.domain.mail import (
    Comment,
    Decision,
    Defer,
    DeferKind,
    Dmarc,
    Drop,
    DropKind,
    GatewayConfig,
    InboundMail,
    MailAttachment,
    NewRequest,
    Refuse,
    SenderCheck,
    SenderCounts,
    SmtpEnvelope,
    desk_of,
    parse,
    references,
    route,
    sender_check_of,
)
from intake.domain.submission import Submitter

log = structlog.get_logger(__name__)

MAIL_IDS = uuid.UUID("5b0c8f3e-6a43-4d0e-9a59-1f3f6c1e2d7a")  # namespace of our event ids
BIG_MESSAGE = 256 * 1024  # parsed off the event loop above this size


class SenderVerifier(Protocol):
    """Checks a message's From domain itself (DKIM, SPF, DMARC)."""

    async def check(self, raw: bytes, mail: InboundMail) -> SenderCheck: ...


@dataclass(frozen=True)
class Received:
    """What became of a message: the decision, and the request concerned when there is one."""

    decision: Decision
    ticket_key: str | None = None
    duplicate: bool = False
    unparseable: bool = False  # the message cannot be read: refuse it for good (554)
    full: bool = False  # a reply to a request that has reached its size limit (552)

    @property
    def deferred(self) -> bool:
        return isinstance(self.decision, Defer)


SHED, NOT_STORABLE, FAILED = "shed", "not_storable", "failed"  # the SMTP edge's own
DECISIONS = (
    "new_request",
    "comment",
    "duplicate",
    *(f"refuse_{reason}" for reason in RefusalReason),
    *(f"drop_{kind}" for kind in DropKind),
    *(f"defer_{kind}" for kind in DeferKind),
    SHED,
    NOT_STORABLE,
    FAILED,
)


def decision_of(received: Received) -> str:
    """What became of a message, in one of `DECISIONS`."""
    decision = received.decision
    if received.duplicate:
        return "duplicate"
    if isinstance(decision, NewRequest):
        return "new_request"
    if isinstance(decision, Comment):
        return "comment"
    if isinstance(decision, Refuse):
        return f"refuse_{decision.reason}"
    if isinstance(decision, Drop):
        return f"drop_{decision.kind}"
    return f"defer_{decision.kind}"


class MailGateway:
    def __init__(
        self,
        pool: asyncpg.Pool,
        policies: Mapping[str, DeskPolicy],
        directory: DirectorySource,  # a fixed one, or what gives the current one
        config: GatewayConfig,
        blobs: BlobStore,
        clock: Callable[[], datetime],
        verifier: SenderVerifier | None = None,
        test_clocks: TestClocks | None = None,  # a desk's clock dates its new requests
    ) -> None:
        self.pool = pool
        self.test_clocks = test_clocks
        self.commits = GroupCommit(pool)  # shared by the messages received together
        self.verifier = verifier
        self.policies = policies
        self.directory = directory
        self.config = config
        self.blobs = blobs
        self.clock = clock

    async def receive(self, raw: bytes, envelope: SmtpEnvelope) -> Received:
        directory = current_directory(self.directory)  # one view for the whole message
        try:
            if len(raw) > BIG_MESSAGE:
                mail = await asyncio.to_thread(parse, raw, envelope)
            else:
                mail = parse(raw, envelope)
        except Exception as error:  # parse() keeps what it can; this is a last resort
            log.warning("mail_unparseable", size=len(raw), error=type(error).__name__)
            dropped = Drop(f"unparseable message ({type(error).__name__})", DropKind.UNPARSEABLE)
            return Received(dropped, unparseable=True)
        if mail.unparseable:
            received = Received(route(mail, self.config, self.policies, directory),
                                unparseable=True)  # fmt: skip
            self._log(mail, received)
            return received
        if self.config.verify == "self" and self.verifier is not None:
            check = await self.verifier.check(raw, mail)
        else:
            check = sender_check_of(mail, self.config)
        now = self.clock()
        refs = references(mail, self.config.own_domains)
        # a forged From does not use up its domain's or the desk's hour (it is dropped anyway)
        believed = check.dmarc not in (Dmarc.FAIL, Dmarc.ABSENT)
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                counts = await self._count(conn, mail, now, believed)
            tickets = await tickets_for(conn, refs, self.policies)
            known = {t.ticket_id for t in tickets}
            unknown = bool(refs.ticket_ids) and not known.intersection(refs.ticket_ids)
            first_seen = await self._first_seen(conn, mail, now) if unknown else None
        decision = route(
            mail, self.config, self.policies, directory, tickets, counts,
            now=now, first_seen=first_seen, sender_check=check,
        )  # fmt: skip
        if isinstance(decision, NewRequest):
            received = await self._new_request(mail, decision, now, directory)
        elif isinstance(decision, Comment):
            received = await self._comment(decision, now)
        elif isinstance(decision, Refuse):
            received = await self._refuse(decision, now)
        else:
            received = Received(decision)
        self._log(mail, received, check)
        return received

    async def _count(
        self, conn: asyncpg.Connection, mail: InboundMail, now: datetime, believed: bool
    ) -> SenderCounts:
        """Count this message for its sender, and when its sender is `believed` and within its
        limit, for its domain, then (the domain within its limit) for its desk: in this order,
        always, so concurrent upserts of the same rows cannot deadlock."""
        sender = mail.sender
        if sender is None:
            return SenderCounts()
        counted = await count_message(
            conn,
            sender,
            desk_of(mail, self.config),
            now,
            believed=believed,
            sender_limit=self.config.messages_per_hour,
            domain_limit=self.config.domain_messages_per_hour,
        )
        return SenderCounts(
            messages_this_hour=counted["message"],
            answers_today=counted["answers"] or 0,
            domain_messages_this_hour=counted["domain"] or 1,
            desk_messages_this_hour=counted["desk"] or 1,
        )

    async def _first_seen(
        self, conn: asyncpg.Connection, mail: InboundMail, now: datetime
    ) -> datetime:
        """When the gateway first saw this message (now, the first time)."""
        seen: datetime = await conn.fetchval(
            """WITH added AS (
                   INSERT INTO mail_first_seen (message, first_seen) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING RETURNING first_seen)
               SELECT first_seen FROM added
               UNION ALL SELECT first_seen FROM mail_first_seen WHERE message = $1
               LIMIT 1""",
            mail.identity,
            now,
        )
        return seen

    async def _store(self, attachments: tuple[MailAttachment, ...]) -> tuple[Attachment, ...]:
        stored = []
        for attachment in attachments:
            sha256 = await self.blobs.put(attachment.data)
            stored.append(
                Attachment(
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    size=attachment.size,
                    sha256=sha256,
                )
            )
        return tuple(stored)

    async def _new_request(
        self, mail: InboundMail, decision: NewRequest, now: datetime, directory: Directory
    ) -> Received:
        attachments = await self._store(decision.attachments)
        desk = decision.submission.policy_id
        on_clock = await clock_for_new_request(self.test_clocks, desk, None)
        outcome = await submit(
            self.commits,
            dict(self.policies),
            directory,
            decision.submission,
            Submitter(decision.submission.requester, "requester"),
            channel=Channel.EMAIL,
            now=now,
            idempotency_key=f"mail:{decision.message_id}",
            source_message_id=decision.message_id,
            attachments=attachments,
            test_clock=on_clock,
        )
        if not isinstance(outcome, Accepted):  # the desk's mail defaults do not fit its policy
            log.error("mail_request_refused", field=outcome.field, reason=outcome.reason)
            why = f"submission refused: {outcome.field}: {outcome.reason}"
            return Received(Drop(why, DropKind.SUBMISSION_REFUSED))
        return Received(decision, outcome.key, duplicate=not outcome.created)

    async def _comment(self, decision: Comment, now: datetime) -> Received:
        attachments = await self._store(decision.attachments)
        event = CommentReceived(
            ticket_id=decision.ticket_id,
            occurred_at=now,
            author_id=decision.author_id,
            author_role=decision.author_role,
            organisation_id=decision.organisation_id,
            body=decision.body,
            channel=Channel.EMAIL,
            source_message_id=decision.message_id,
            attachments=attachments,
        )
        try:
            fresh = await self._record(
                decision.message_id, "comment", decision.ticket_id, decision.ticket_id, event, now
            )
        except StreamFull:
            key = decision.ticket_key
            reason = (
                f"request {key} has reached its size limit: "
                f"open a new request that references {key}"
            )
            return Received(Drop(reason, DropKind.REQUEST_FULL), key, full=True)
        return Received(decision, decision.ticket_key, duplicate=not fresh)

    async def _refuse(self, decision: Refuse, now: datetime) -> Received:
        event = AutomaticReplyRequested(
            ticket_id=decision.ticket_id or decision.to,
            occurred_at=now,
            to=decision.to,
            policy_id=decision.policy_id,
            reason=decision.reason,
            language=decision.language,
            original_subject=decision.original_subject,
            original_message_id=decision.original_message_id,
            ticket_key=decision.ticket_key,
            portal_url=decision.portal_url,
        )
        fresh = await self._record(
            decision.original_message_id, "answer", decision.ticket_id, f"mail:{decision.to}",
            event, now, answer_to=decision.to,
        )  # fmt: skip
        return Received(decision, decision.ticket_key, duplicate=not fresh)

    async def _record(
        self,
        message_id: str,
        outcome: str,
        ticket_id: str | None,
        stream: str,
        event: Event,
        now: datetime,
        answer_to: str | None = None,
    ) -> bool:
        """Append `event` once per message (False: this message was handled before)."""
        new = NewEvent.from_event(
            event,
            event_id=uuid.uuid5(MAIL_IDS, f"{outcome}:{message_id}"),
            metadata={"correlationid": ticket_id or stream},
        )

        async def record(conn: asyncpg.Connection) -> bool:
            first = await conn.fetchval(
                """INSERT INTO mail_messages (message_id, outcome, ticket_id, received_at)
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
                message_id,
                outcome,
                ticket_id,
                now,
            )
            if not first:
                return False
            if answer_to is not None:
                await conn.execute(
                    """INSERT INTO mail_sender_counts (sender, kind, window_start, count)
                       VALUES ($1, 'answer', $2, 1)
                       ON CONFLICT (sender, kind, window_start)
                       DO UPDATE SET count = mail_sender_counts.count + 1""",
                    answer_to,
                    now.replace(hour=0, minute=0, second=0, microsecond=0),
                )
            version = await stream_version(conn, stream)
            # an automatic answer is the desk's own write: never refused for a full stream
            await append(conn, stream, version, [new], bounded=answer_to is None)
            return True

        for attempt in range(10):
            try:
                return await self.commits.run(record)
            except ConcurrencyError:
                await asyncio.sleep(0.01 * (attempt + 1))
        raise RuntimeError(f"stream {stream} kept moving; message {message_id} not recorded")

    def _log(self, mail: InboundMail, received: Received, check: SenderCheck | None = None) -> None:
        decision = received.decision
        fields = {
            "dmarc": f"{check.dmarc} ({check.by})" if check else None,
            "message_id": mail.identity,
            "sender": mail.sender,
            "decision": type(decision).__name__,
            "ticket_key": received.ticket_key,
            "duplicate": received.duplicate,
            "attachments": len(mail.attachments),
            "problems": list(mail.problems[:5]),
        }
        if isinstance(decision, Drop | Defer):
            log.info("mail_dropped" if isinstance(decision, Drop) else "mail_deferred",
                     reason=decision.reason, **fields)  # fmt: skip
        elif isinstance(decision, Refuse):
            log.info("mail_refused", reason=decision.reason.value, why=decision.explanation,
                     **fields)  # fmt: skip
        else:
            log.info("mail_accepted", **fields)
        if isinstance(decision, NewRequest) and decision.ignored:
            log.info("mail_participants_ignored", message_id=mail.identity,
                     count=len(decision.ignored), first=list(decision.ignored[:5]))  # fmt: skip


async def forget_old_counts(pool: asyncpg.Pool, now: datetime) -> int:
    """Delete sender counters older than two days (they no longer limit anyone)."""
    async with pool.acquire() as conn:
        done = await conn.execute(
            "DELETE FROM mail_sender_counts WHERE window_start < $1", now - timedelta(days=2)
        )
        await conn.execute(
            "DELETE FROM mail_first_seen WHERE first_seen < $1", now - timedelta(days=2)
        )
    return int(done.split()[-1])
