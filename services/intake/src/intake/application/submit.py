"""Submit a request: check it, number it and append `TicketCreated` in one transaction.

Submissions arriving together share that transaction (`desk_eventstore.group_commit`): each gets
its own answer, key and idempotency, and one that fails takes back only its own writes (its
number too, so keys stay gap-free per prefix).

The event store is the outbox: the relay publishes the event to `ticket-events` afterwards. A
retry with the same idempotency key (HTTP `Idempotency-Key`, or an e-mail's Message-ID) by the
same submitter returns the first request instead of creating a second one. Keys belong to their
submitter: the same key from someone else is a different key, and a conflict never names the
request the key was used for.

With `limits` (the HTTP API), a new request first counts for its submitter, its requester's
mail domain and its desk (`intake.domain.flood`), in the same transaction: one over a limit is
refused (`flooded`, with the seconds until the window frees), a retry of a request already
created is answered before counting, and a request that fails does not count.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from desk_contracts.tickets import Attachment, Channel
from desk_eventstore.group_commit import GroupCommit
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append
from desk_policies.directory import Directory
from desk_policies.model import DeskPolicy
from intake.application.counts import count_this_hour, uncount_this_hour
from intake.domain.flood import RequestLimits, counted_for, over_limit
from intake.domain.submission import Refusal, Submission, Submitter, check, ticket_created

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Accepted:
    ticket_id: str
    key: str
    event_id: str | None  # None when this was a retry of an earlier submission
    created: bool


async def submit(
    commits: GroupCommit,
    policies: dict[str, DeskPolicy],
    directory: Directory,
    submission: Submission,
    submitter: Submitter,
    *,
    channel: Channel,
    now: datetime,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    source_message_id: str | None = None,
    attachments: tuple[Attachment, ...] = (),
    limits: RequestLimits | None = None,
) -> Accepted | Refusal:
    policy = policies.get(submission.policy_id)
    if policy is None:
        known = ", ".join(sorted(policies))
        return Refusal("policy_id", f"{submission.policy_id!r} is not a desk (known: {known})")
    refusal = check(submission, policy, submitter, directory)
    if refusal is not None:
        return refusal
    request_hash = hashlib.sha256(submission.model_dump_json().encode()).hexdigest()
    scope = submitter.id.lower()  # whose idempotency keys these are

    async def record(conn: asyncpg.Connection) -> Accepted | Refusal:
        if idempotency_key:
            previous = await _previous(conn, scope, idempotency_key, request_hash)
            if previous is not None:
                return previous
        if limits is not None:
            staff = directory.is_staff(submitter.id, policy.id)
            keys = counted_for(submitter.id, submission.requester, policy.id, staff=staff)
            flooded = over_limit(await count_this_hour(conn, keys, now), limits, now)
            if flooded is not None:
                await uncount_this_hour(conn, keys, now)  # a refused attempt counts for none
                log.warning("request_flooded", limit=flooded.kind, policy=policy.id)
                return Refusal(flooded.kind, flooded.reason, "flooded", flooded.retry_after)
        request_type = policy.request_type(submission.request_type)
        assert request_type is not None
        sequence = await conn.fetchval(
            """INSERT INTO key_sequences (prefix, last) VALUES ($1, 1001)
               ON CONFLICT (prefix) DO UPDATE SET last = key_sequences.last + 1
               RETURNING last""",
            request_type.prefix,
        )
        ticket_id = str(uuid.uuid4())
        event = ticket_created(
            submission,
            policy,
            submitter,
            ticket_id=ticket_id,
            sequence=sequence,
            channel=channel,
            now=now,
            source_message_id=source_message_id,
            attachments=attachments,
        )
        metadata = {"correlationid": correlation_id or ticket_id}
        new = NewEvent.from_event(event, metadata=metadata)
        await append(conn, ticket_id, 0, [new])
        if idempotency_key:
            await conn.execute(
                """INSERT INTO idempotency_keys
                       (submitter, key, request_hash, ticket_id, ticket_key)
                   VALUES ($1, $2, $3, $4, $5)""",
                scope,
                idempotency_key,
                request_hash,
                ticket_id,
                event.key,
            )
        return Accepted(ticket_id, event.key, str(new.event_id), created=True)

    outcome = await commits.run(record)
    if isinstance(outcome, Accepted) and outcome.created:
        log.info(
            "request_submitted",
            ticket_id=outcome.ticket_id,
            key=outcome.key,
            event_id=outcome.event_id,
            policy=policy.id,
            channel=channel.value,
        )
    return outcome


async def _previous(
    conn: asyncpg.Connection, scope: str, idempotency_key: str, request_hash: str
) -> Accepted | Refusal | None:
    """The first answer to this submitter's key, a conflict, or None (the key is new)."""
    # lock the key so that two concurrent retries cannot both create a request
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{scope}\n{idempotency_key}")
    row = await conn.fetchrow(
        """SELECT request_hash, ticket_id, ticket_key FROM idempotency_keys
           WHERE submitter = $1 AND key = $2""",
        scope,
        idempotency_key,
    )
    if row is None:
        return None
    if row["request_hash"] != request_hash:
        return Refusal(
            "Idempotency-Key",
            "this key was already used for a request with a different content",
            kind="conflict",
        )
    return Accepted(row["ticket_id"], row["ticket_key"], None, created=False)
