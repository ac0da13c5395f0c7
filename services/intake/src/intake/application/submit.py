"""Submit a request: check it, number it and append `TicketCreated` in one transaction.

Submissions arriving together share that transaction (`desk_eventstore.group_commit`): each gets
its own answer, key and idempotency, and one that fails takes back only its own writes (its
number too, so keys stay gap-free per prefix). They are written as one set (`_open_together`:
a statement for all their idempotency keys, one for their counters, one for their numbers, two
for their events), answered exactly as one by one (`_Opening`); a set that cannot be (a key
twice in it, a counter over its limit) is written one by one instead.

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
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import structlog

from desk_contracts.tickets import Attachment, Channel
from desk_eventstore import tracecontext
from desk_eventstore.group_commit import GroupCommit
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append, append_to_streams
from desk_policies.directory import Directory
from desk_policies.model import DeskPolicy
from intake.application.counts import add_this_hour, count_this_hour, uncount_this_hour
from intake.domain.flood import RequestLimits, counted_for, over_limit, window_of
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
    test_clock: tuple[str, datetime] | None = None,
) -> Accepted | Refusal:
    policy = policies.get(submission.policy_id)
    if policy is None:
        known = ", ".join(sorted(policies))
        return Refusal("policy_id", f"{submission.policy_id!r} is not a desk (known: {known})")
    refusal = check(submission, policy, submitter, directory)
    if refusal is not None:
        return refusal
    staff = directory.is_staff(submitter.id, policy.id)
    opening = _Opening(
        policy,
        submission,
        submitter,
        channel=channel,
        now=now,
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
        source_message_id=source_message_id,
        attachments=attachments,
        limits=limits,
        counted=counted_for(submitter.id, submission.requester, policy.id, staff=staff),
        test_clock=test_clock,
    )
    outcome = await commits.run(opening, together=_open_together)
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


@dataclass(frozen=True)
class _Opening:
    """One checked submission to write: called on a connection, it writes it on its own."""

    policy: DeskPolicy
    submission: Submission
    submitter: Submitter
    channel: Channel
    now: datetime
    idempotency_key: str | None
    correlation_id: str | None
    source_message_id: str | None
    attachments: tuple[Attachment, ...]
    limits: RequestLimits | None
    counted: dict[str, str]  # the counters it counts for, kind -> key
    # the test clock the request lives on and its instant, the request's creation (the hourly
    # counts stay on the real time: `now`)
    test_clock: tuple[str, datetime] | None = None
    # the caller's trace, kept: a set of openings is written in another caller's context
    trace: dict[str, str] = field(default_factory=tracecontext.current)
    request_hash: str = field(init=False)
    scope: str = field(init=False)  # whose idempotency keys these are
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        # without a test clock, the JSON hashed before there were test clocks (retries across
        # an upgrade keep their key)
        unclocked = {"test_clock"} if self.submission.test_clock is None else None
        text = self.submission.model_dump_json(exclude=unclocked)
        digest = hashlib.sha256(text.encode()).hexdigest()
        object.__setattr__(self, "request_hash", digest)
        object.__setattr__(self, "scope", self.submitter.id.lower())
        request_type = self.policy.request_type(self.submission.request_type)
        assert request_type is not None  # checked
        object.__setattr__(self, "prefix", request_type.prefix)

    async def __call__(self, conn: asyncpg.Connection) -> Accepted | Refusal:
        if self.idempotency_key:
            await _lock_keys(conn, [self])
            previous = await _previous(conn, [self])
            if previous:
                return _answer_to_retry(self, previous[self.scope, self.idempotency_key])
        if self.limits is not None:
            counts = await count_this_hour(conn, self.counted, self.now)
            flooded = over_limit(counts, self.limits, self.now)
            if flooded is not None:
                await uncount_this_hour(conn, self.counted, self.now)  # it counts for none
                log.warning("request_flooded", limit=flooded.kind, policy=self.policy.id)
                return Refusal(flooded.kind, flooded.reason, "flooded", flooded.retry_after)
        [sequence] = (await _take_numbers(conn, [self.prefix]))[self.prefix]
        ticket_id, new, key = self.created(sequence)
        await append(conn, ticket_id, 0, [new])
        await _remember(conn, [(self, ticket_id, key)])
        return Accepted(ticket_id, key, str(new.event_id), created=True)

    def created(self, sequence: int) -> tuple[str, NewEvent, str]:
        """The new request numbered `sequence`: its id, its `TicketCreated` and its key."""
        ticket_id = str(uuid.uuid4())
        event = ticket_created(
            self.submission,
            self.policy,
            self.submitter,
            ticket_id=ticket_id,
            sequence=sequence,
            channel=self.channel,
            now=self.test_clock[1] if self.test_clock else self.now,
            source_message_id=self.source_message_id,
            attachments=self.attachments,
            test_clock=self.test_clock[0] if self.test_clock else None,
        )
        metadata = {"correlationid": self.correlation_id or ticket_id, **self.trace}
        return ticket_id, NewEvent.from_event(event, metadata=metadata), event.key


class _OneByOne(Exception):
    """The set cannot be written as one: its openings are written one by one instead."""


async def _open_together(
    conn: asyncpg.Connection, openings: list[_Opening]
) -> list[Accepted | Refusal]:
    """Write `openings` as one set, each answered as `_Opening.__call__` would in this order;
    `_OneByOne` when that cannot be told without writing them one by one."""
    keyed = [o for o in openings if o.idempotency_key]
    if len({(o.scope, o.idempotency_key) for o in keyed}) < len(keyed):
        raise _OneByOne("an idempotency key twice in the set")
    answers: dict[int, Accepted | Refusal] = {}
    if keyed:
        await _lock_keys(conn, keyed)
        previous = await _previous(conn, keyed)
        for n, opening in enumerate(openings):
            row = previous.get((opening.scope, opening.idempotency_key or ""))
            if row is not None:
                answers[n] = _answer_to_retry(opening, row)
    fresh = [(n, o) for n, o in enumerate(openings) if n not in answers]
    if fresh:
        await _count_together(conn, [o for _, o in fresh if o.limits is not None])
        numbers = await _take_numbers(conn, [o.prefix for _, o in fresh])
        created = [(n, o, *o.created(numbers[o.prefix].pop(0))) for n, o in fresh]
        opened = {ticket_id: [new] for _, _, ticket_id, new, _ in created}
        await append_to_streams(conn, opened, new=True)
        await _remember(conn, [(o, ticket_id, key) for _, o, ticket_id, _, key in created])
        for n, _, ticket_id, new, key in created:
            answers[n] = Accepted(ticket_id, key, str(new.event_id), created=True)
    return [answers[n] for n in range(len(openings))]


async def _count_together(conn: asyncpg.Connection, openings: list[_Opening]) -> None:
    """Count each opening for its counters, as each one by one in this order would;
    `_OneByOne` when one of them goes over a limit (only one by one can tell which)."""
    if not openings:
        return
    if len({window_of(o.now) for o in openings}) > 1:
        raise _OneByOne("the set counts in two hours")
    added = Counter((kind, key) for o in openings for kind, key in o.counted.items())
    counts = await add_this_hour(conn, added, openings[0].now)
    before = {counter: counts[counter] - n for counter, n in added.items()}
    for opening in openings:
        seen = {}
        for kind, key in opening.counted.items():
            before[kind, key] += 1
            seen[kind] = before[kind, key]
        assert opening.limits is not None
        if over_limit(seen, opening.limits, opening.now) is not None:
            raise _OneByOne("a counter over its limit")


async def _lock_keys(conn: asyncpg.Connection, openings: list[_Opening]) -> None:
    """Lock the openings' idempotency keys, so that two concurrent retries cannot both create
    a request."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(k)) FROM unnest($1::text[]) AS k",
        [f"{o.scope}\n{o.idempotency_key}" for o in openings],
    )


async def _previous(
    conn: asyncpg.Connection, openings: list[_Opening]
) -> dict[tuple[str, str], asyncpg.Record]:
    """The requests already created under the openings' idempotency keys, by (scope, key)."""
    rows = await conn.fetch(
        """SELECT submitter, key, request_hash, ticket_id, ticket_key
           FROM idempotency_keys JOIN unnest($1::text[], $2::text[]) AS t(submitter, key)
               USING (submitter, key)""",
        [o.scope for o in openings],
        [o.idempotency_key for o in openings],
    )
    return {(row["submitter"], row["key"]): row for row in rows}


def _answer_to_retry(opening: _Opening, row: asyncpg.Record) -> Accepted | Refusal:
    """The first answer to this submitter's key, or a conflict when the content differs."""
    if row["request_hash"] != opening.request_hash:
        return Refusal(
            "Idempotency-Key",
            "this key was already used for a request with a different content",
            kind="conflict",
        )
    return Accepted(row["ticket_id"], row["ticket_key"], None, created=False)


async def _take_numbers(conn: asyncpg.Connection, prefixes: list[str]) -> dict[str, list[int]]:
    """The next numbers of each prefix, as many as it is named (from 1001, gap-free among
    commits: the counter's row stays locked until this transaction ends)."""
    wanted = Counter(prefixes)
    rows = await conn.fetch(
        """INSERT INTO key_sequences (prefix, last)
           SELECT prefix, 1000 + n FROM unnest($1::text[], $2::int[]) AS t(prefix, n)
           ON CONFLICT (prefix) DO UPDATE SET last = key_sequences.last + excluded.last - 1000
           RETURNING prefix, last""",
        list(wanted),
        list(wanted.values()),
    )
    return {
        row["prefix"]: list(range(row["last"] - wanted[row["prefix"]] + 1, row["last"] + 1))
        for row in rows
    }


async def _remember(conn: asyncpg.Connection, created: list[tuple[_Opening, str, str]]) -> None:
    """Keep the idempotency key of each new request that has one (opening, ticket id, key)."""
    keyed = [(o, ticket_id, key) for o, ticket_id, key in created if o.idempotency_key]
    if not keyed:
        return
    await conn.execute(
        """INSERT INTO idempotency_keys (submitter, key, request_hash, ticket_id, ticket_key)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])""",
        [o.scope for o, _, _ in keyed],
        [o.idempotency_key for o, _, _ in keyed],
        [o.request_hash for o, _, _ in keyed],
        [ticket_id for _, ticket_id, _ in keyed],
        [key for _, _, key in keyed],
    )
