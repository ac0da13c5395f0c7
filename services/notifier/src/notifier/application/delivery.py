"""Deliver recorded messages over SMTP: claim, send, mark; retry what may pass later.

A sender claims a batch of due rows by pushing their next attempt one lease ahead and naming
itself their holder (so another replica skips them). The lease is short (`LEASE`, seconds) and
renewed by the holder while it works on the batch; the holder id is also the key of a session
advisory lock the sender holds meanwhile, so the rows of a sender whose process died (its
session ended) are free at once for the next one. It sends them over its relay connections,
kept open from one batch to the next (`adapters.relay_connection`): a batch is shared out among
them by request (each request's messages on one connection, in their order), and they send at
once, so a message waits for the relay's round trips of its own share only. It marks them as
sent after the relay accepted them: the first `MARK_ALONE` messages of a batch one by one, each
right after the relay's 250 (a desk keeping up sends no more per batch), the rest of a larger
batch (a backlog) in groups with one statement each, each group twice as large as the last up
to `MARK_GROUP` messages, no sent message waiting more than `MARK_WITHIN` seconds for its mark.
Each mark checks the sender still held the lease (if not, another sender may have sent the
message too: logged). After a crash only the messages not marked go out again, with the same
Message-ID: a duplicate can only come from the messages sent since the last mark (one among a
batch's first `MARK_ALONE`, at most `MARK_GROUP` later in a backlog), and is recognisable. The
sender's claims, leases and marks do not wait for their flush to disk: a crash of PostgreSQL
itself may also forget the marks of its last instants, whose messages go out again the same way.
A message that cannot be built (a recipient with a line break, say) or that makes the sending
fail unexpectedly fails alone, for good, reported like a 5xx; the rest of the batch goes on.
A 4xx or a network error is retried with exponential backoff; a 5xx (or too many attempts)
fails the row for good and records a `DeliveryFailed` command in the notifier's store, in the
same transaction: its relay publishes it to `ticket-commands` (key: the ticket id) and workflow
shows it in the request's history. Each message sent, retried or given up is told to the
sender's meter (`notifier.application.meter`) by the desk its row keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
import zlib
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
import asyncpg
import structlog

from desk_contracts.requests import DeliveryFailed
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append
from desk_platform.tracing import sending
from notifier.adapters.mime import build_message, raw_message
from notifier.adapters.relay_connection import RelayConnection
from notifier.application.meter import UNMETERED, NotificationMeter

log = structlog.get_logger(__name__)
GIVE_UP_AFTER = timedelta(days=2)  # like an MTA: a relay outage of hours loses nothing
LEASE = timedelta(seconds=10)  # renewed every third of it while the holder works
BATCH_TIME = 60.0  # a slow relay: after this, the rest of the batch is let go for others
HOLDER_LOCK_CLASS = 7_301_004  # with the holder id: held by a sender while it has a batch
MARK_ALONE = 8  # the first messages of a batch, marked one at a time
MARK_GROUP = 32  # sent messages marked with one statement, at most
MARK_WITHIN = 0.5  # seconds: no sent message waits longer for its mark
SHARE = 50  # messages claimed per relay connection in a batch
# Claims, leases and marks are the sender's own bookkeeping: their commits do not wait for their
# flush to disk (each would, one message at a time, behind every other commit of the machine).
# Only a crash of PostgreSQL itself can lose the last of them (~0.6 s at most): the messages
# marked meanwhile then go out again with the same Message-ID, as after the sender's own crash.
_NO_FLUSH_WAIT = "(SELECT set_config('synchronous_commit', 'off', true)) AS no_flush_wait"


@dataclass(frozen=True)
class Relay:
    """The SMTP relay the notifier sends through, and who the mail is from."""

    host: str
    port: int
    sender: str
    timeout: float = 10.0


class _Marks:
    """The rows sent since the last mark, and when the next mark is due: after each of the
    first `MARK_ALONE` rows of a batch, then after twice as many rows as the last mark had (up
    to `MARK_GROUP`), or once the oldest has waited `MARK_WITHIN` seconds."""

    def __init__(self) -> None:
        self.rows: list[asyncpg.Record] = []
        self.done = 0  # rows marked so far
        self.size = 1
        self.since = 0.0

    def sent(self, row: asyncpg.Record) -> None:
        if not self.rows:
            self.since = time.monotonic()
        self.rows.append(row)

    def due(self) -> bool:
        return len(self.rows) >= self.size or time.monotonic() - self.since >= MARK_WITHIN

    def take(self) -> list[asyncpg.Record]:
        """The rows to mark now (the next ones sent start the next mark)."""
        rows, self.rows = self.rows, []
        self.done += len(rows)
        if self.done >= MARK_ALONE:
            self.size = min(self.size * 2, MARK_GROUP)
        return rows


class Sender:
    """Sends due rows of one store through one relay (any number of replicas may run), one
    batch at a time, over `lanes` SMTP connections kept between batches (or the ones given)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        relay: Relay,
        *,
        lease: timedelta = LEASE,
        lanes: int = 1,
        connections: Sequence[RelayConnection] = (),
        meter: NotificationMeter = UNMETERED,
    ) -> None:
        self.pool = pool
        self.meter = meter  # told of each message sent, retried, given up
        self.relay = relay
        self.lease = lease
        self.connections = list(connections) or [
            RelayConnection(relay.host, relay.port, relay.timeout) for _ in range(lanes)
        ]
        self.holder: int | None = None  # while a batch is worked on
        self._busy = asyncio.Lock()  # one batch at a time: the holder and the connections

    async def claim(self, now: datetime, limit: int) -> list[asyncpg.Record]:
        """Due rows, and rows whose holder's session is gone, leased to this sender."""
        rows = await self.pool.fetch(
            f"""UPDATE deliveries SET next_attempt_at = $2, lease_holder = $4
               FROM {_NO_FLUSH_WAIT}
               WHERE delivery_key IN (
                   SELECT delivery_key FROM deliveries
                   WHERE status = 'pending' AND (next_attempt_at <= $1 OR (
                       lease_holder IS NOT NULL AND lease_holder NOT IN (
                           SELECT objid::bigint FROM pg_locks
                           WHERE locktype = 'advisory' AND classid = {HOLDER_LOCK_CLASS}
                             AND objsubid = 2 AND granted)))
                   ORDER BY next_attempt_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            now,
            now + self.lease,
            limit,
            self.holder,
        )
        return sorted(rows, key=lambda row: row["seq"])

    async def send_pending(self, now: datetime, limit: int | None = None) -> int:
        """Send up to `limit` due messages (`SHARE` per connection by default); returns how
        many were attempted. With none due, closes the relay connections idle long enough."""
        async with self._busy, self.pool.acquire() as session:
            self.holder = await _hold(session)
            try:
                return await self._send_batch(now, limit or SHARE * len(self.connections))
            finally:
                try:
                    await session.execute(
                        "SELECT pg_advisory_unlock($1, $2)", HOLDER_LOCK_CLASS, self.holder
                    )
                except BaseException as error:  # the pool does not unlock: end the session
                    with contextlib.suppress(Exception):  # unless the pool already let it go
                        session.terminate()
                    if not isinstance(error, Exception):
                        raise
                finally:
                    self.holder = None

    async def close(self) -> None:
        """Close the relay connections (QUIT), after the batch in hand if there is one."""
        async with self._busy:
            for connection in self.connections:
                await connection.close()

    async def _send_batch(self, now: datetime, limit: int) -> int:
        rows = await self.claim(now, limit)
        if not rows:
            for connection in self.connections:
                await connection.close_if_idle()
            return 0
        started = time.monotonic()
        renewing = asyncio.create_task(self._renew(now, started))
        marks = _Marks()
        try:
            shares = _shares(rows, len(self.connections))
            await _together(
                self._send_share(connection, share, marks, now, started)
                for connection, share in zip(self.connections, shares, strict=True)
                if share
            )
            await self._mark(marks, now)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await renewing
        return len(rows)

    async def _send_share(
        self,
        connection: RelayConnection,
        rows: list[asyncpg.Record],
        marks: _Marks,
        now: datetime,
        started: float,
    ) -> None:
        """Send `rows` one after the other over `connection`, marking as they go."""
        for n, row in enumerate(rows):
            if time.monotonic() - started > BATCH_TIME:  # slow relay: let the rest go
                await self._mark(marks, now)
                await self._release([r["delivery_key"] for r in rows[n:]], now)
                return
            try:
                message = raw_message(row, self.relay.sender, now) or build_message(
                    row, self.relay.sender, now
                )
            except Exception as error:  # e.g. a line break in an address: never buildable
                await self._failed(row, f"554 cannot build the message: {error}", 554, now)
                continue
            try:
                with sending("smtp send", row["traceparent"], {"smtp.attempt": row["attempts"]}):
                    await connection.send(message)
            except aiosmtplib.SMTPRecipientsRefused as error:  # this recipient: final if 5xx
                refused = error.recipients[0]
                await self._failed(row, f"{refused.code} {refused.message}", refused.code, now)
                continue
            except aiosmtplib.SMTPDataError as error:  # this message refused: final if 5xx
                await self._failed(row, f"{error.code} {error.message}", error.code, now)
                continue
            except aiosmtplib.SMTPResponseException as error:
                # the relay refuses us (sender, authentication, relaying): every message
                # would fail alike, so nothing is final; retry with backoff and say so
                log.error(
                    "relay_refuses_us",
                    code=error.code,
                    error=error.message,
                    relay=f"{self.relay.host}:{self.relay.port}",
                )
                await self._failed(row, f"{error.code} {error.message}", None, now)
                continue
            except (aiosmtplib.SMTPException, OSError) as error:
                await self._failed(row, str(error) or type(error).__name__, None, now)
                continue
            except Exception as error:  # this message broke the client: it fails alone
                log.exception("notification_send_crashed", delivery_key=row["delivery_key"])
                await self._failed(row, f"554 {type(error).__name__}: {error}", 554, now)
                continue
            marks.sent(row)
            if marks.due():
                await self._mark(marks, now)

    async def _mark(self, marks: _Marks, now: datetime) -> None:
        if rows := marks.take():
            await self.mark_sent(rows, now)

    async def _renew(self, now: datetime, started: float) -> None:
        """Keep this sender's leases ahead while it works on the batch (skipping the rows being
        marked or failed at that moment: never waiting on a row lock, it cannot deadlock)."""
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            until = now + timedelta(seconds=time.monotonic() - started) + self.lease
            try:
                await self.pool.execute(
                    f"""UPDATE deliveries SET next_attempt_at = $2 FROM {_NO_FLUSH_WAIT}
                       WHERE delivery_key IN (
                           SELECT delivery_key FROM deliveries
                           WHERE lease_holder = $1 AND status = 'pending'
                           FOR UPDATE SKIP LOCKED)""",
                    self.holder,
                    until,
                )
            except Exception as error:  # the database is away: the mark will tell
                log.warning("lease_renewal_failed", error=str(error) or type(error).__name__)

    async def mark_sent(
        self, sent: asyncpg.Record | Sequence[asyncpg.Record], now: datetime
    ) -> None:
        """Record the row (or the rows, in one statement) as sent; for a row this sender no
        longer held the lease of, say so (another sender may have sent it too: the recipient
        gets it twice, with one Message-ID)."""
        rows = [sent] if isinstance(sent, asyncpg.Record) else list(sent)
        held = dict(
            await self.pool.fetch(
                f"""UPDATE deliveries d SET status = 'sent', attempts = d.attempts + 1,
                                            sent_at = $2, last_error = NULL, lease_holder = NULL
                    FROM (SELECT delivery_key, lease_holder FROM deliveries
                          WHERE delivery_key = ANY($1::text[])
                          ORDER BY delivery_key FOR UPDATE) AS before, {_NO_FLUSH_WAIT}
                    WHERE d.delivery_key = before.delivery_key AND d.status <> 'sent'
                   RETURNING d.delivery_key, before.lease_holder IS NOT DISTINCT FROM $3""",
                [row["delivery_key"] for row in rows],
                now,
                self.holder,
            )
        )
        for row in rows:
            if row["delivery_key"] in held:  # marked now (not by another sender before)
                self.meter.sent(_desk(row))
            if not held.get(row["delivery_key"]):
                log.warning(
                    "notification_sent_after_lease_lost",
                    hint="another sender may have sent it too",
                    ticket_id=row["ticket_id"],
                    event_id=row["event_id"],
                    recipient=row["recipient"],
                    message_id=row["message_id"],
                )
            log.info(
                "notification_sent",
                ticket_id=row["ticket_id"],
                event_id=row["event_id"],
                recipient=row["recipient"],
                message_id=row["message_id"],
            )

    async def _release(self, keys: list[str], now: datetime) -> None:
        await self.pool.execute(
            f"""UPDATE deliveries SET next_attempt_at = $2, lease_holder = NULL
                FROM {_NO_FLUSH_WAIT}
                WHERE delivery_key = ANY($1) AND lease_holder = $3""",
            keys,
            now,
            self.holder,
        )

    async def _failed(
        self, row: asyncpg.Record, error: str, code: int | None, now: datetime
    ) -> None:
        attempts = row["attempts"] + 1
        permanent = code is not None and 500 <= code < 600
        give_up = permanent or now - row["created_at"] > GIVE_UP_AFTER
        delay = timedelta(seconds=min(2**attempts, 600))
        async with self.pool.acquire() as conn, conn.transaction():
            # only while this sender still holds the row: another that took it over (this
            # sender's session was lost) may have sent it meanwhile, and that stands
            held = await conn.fetchval(
                """UPDATE deliveries SET status = $2, attempts = $3, last_error = $4,
                                         next_attempt_at = $5, lease_holder = NULL
                   WHERE delivery_key = $1 AND status = 'pending'
                     AND lease_holder IS NOT DISTINCT FROM $6
                   RETURNING true""",
                row["delivery_key"],
                "failed" if give_up else "pending",
                attempts,
                error[:2000],
                now + delay,
                self.holder,
            )
            if not held:
                log.warning(
                    "notification_failure_after_lease_lost",
                    ticket_id=row["ticket_id"],
                    recipient=row["recipient"],
                    error=error[:200],
                )
                return
            if give_up and row["kind"] == "notification":
                await _report(conn, row, error, now)
        (self.meter.failed if give_up else self.meter.retried)(_desk(row))
        log.warning(
            "notification_not_sent",
            ticket_id=row["ticket_id"],
            event_id=row["event_id"],
            recipient=row["recipient"],
            error=error,
            permanent=permanent,
            gave_up=give_up,
        )


def _desk(row: asyncpg.Record) -> str | None:
    """The desk (policy id) a message's row keeps; None for rows recorded before it was."""
    desk: str | None = row.get("policy_id")
    return desk


def _shares(rows: list[asyncpg.Record], lanes: int) -> list[list[asyncpg.Record]]:
    """`rows` shared out among `lanes` connections by request, each share in the rows' order."""
    shares: list[list[asyncpg.Record]] = [[] for _ in range(lanes)]
    for row in rows:
        shares[zlib.crc32(str(row["ticket_id"]).encode()) % lanes].append(row)
    return shares


async def _together(works: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run `works` at once; the first to raise stops the others, and its error is raised."""
    pending = list(works)
    if len(pending) == 1:  # the quiet desk's batch: no task to make
        return await pending[0]
    tasks = [asyncio.ensure_future(work) for work in pending]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


async def _hold(session: asyncpg.Connection) -> int:
    """A holder id whose advisory lock this session now holds (ids are random: retry on the
    rare one in use)."""
    while True:
        holder = secrets.randbelow(2**31 - 1) + 1
        if await session.fetchval("SELECT pg_try_advisory_lock($1, $2)", HOLDER_LOCK_CLASS, holder):
            return holder


async def _report(conn: asyncpg.Connection, row: asyncpg.Record, error: str, now: datetime) -> None:
    """Append `DeliveryFailed` to the ticket's stream of the notifier's store (the outbox)."""
    ticket_id = row["ticket_id"]
    try:
        failed = DeliveryFailed(
            ticket_id=ticket_id,
            occurred_at=now,
            recipient=row["recipient"],
            message_id=row["message_id"],
            notified_event_id=row["event_id"],
            error=error[:500],
        )
    except ValueError as invalid:  # e.g. a recipient the contract refuses: the row says it
        log.error("delivery_failure_not_reportable", ticket_id=ticket_id, error=str(invalid))
        return
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"delivery-failed/{row['delivery_key']}")
    new = NewEvent.from_event(
        failed, event_id=event_id, metadata={"correlationid": row["event_id"]}
    )
    # at the stream's end, under the stream's lock; a failed delivery is never lost to a full stream
    await append(conn, ticket_id, None, [new], bounded=False)
