"""Append-only event store on PostgreSQL: optimistic concurrency per stream, one global order.

Writers take no lock that other streams wait for. A stream's version is guarded by the primary
key (stream_id, stream_version): of two appends at the same version one commits, the other gets
`ConcurrencyError`. An append at the stream's end (`expected_version=None`) re-reads the end and
tries again instead. Each event records the transaction that wrote it (`transaction_id`, see
migration 0006). Appends send no NOTIFY: PostgreSQL serialises the commits of every notifying
transaction of the cluster (a lock held from before commit until it is flushed), which would
make every writer wait for the others again; the relay polls instead.

Readers of the global order (`read_all`: the relay, a rebuild) take events by transaction id
then position, and only those whose transaction id is below the oldest transaction still
running (`pg_snapshot_xmin(pg_current_snapshot())`). Whatever commits later has a transaction
id at least that high, so it sorts after everything already read: a reader that moved past an
event never misses one that commits late (positions alone would not do: a transaction can take
a lower position than one that commits first). The price is that any transaction that holds an
id, anywhere in the cluster, holds readers back until it ends: keep write transactions short.
An event whose writer's id is lower than that of its stream's previous event carries the
previous one's id instead, so each stream is read in version order.

Every event is checked where it is appended, for every service alike: one that could never be
stored or published (larger than `MAX_EVENT_BYTES`, below the topics' `max.message.bytes`; text
that is not valid Unicode; NUL, which PostgreSQL cannot store; a number that is not finite) is
refused with `EventRefused`, before it can reach the outbox and stop the relay.

Every stream is bounded too: an append on behalf of a person (`bounded=True`, the default)
to a stream that holds `MAX_STREAM_EVENTS` events or `MAX_STREAM_BYTES` bytes of JSON, or
would pass either with this append, is refused with `StreamFull`, so that one request's history
cannot grow without limit and every read of it stays bounded. The desk's own writes (reminders,
auto-close, failed deliveries, survey answers, a new stream) pass `bounded=False`: they are never
lost to a full stream, and count all the same. Each event carries the bytes its stream holds up
to it (`stream_bytes`, written by the same insert): the bound costs no other write, and the count
is the stream's version.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping, Sequence
from itertools import accumulate, takewhile
from typing import Any

import asyncpg

from desk_contracts.topics import MAX_EVENT_BYTES, MAX_STREAM_BYTES, MAX_STREAM_EVENTS
from desk_eventstore.records import NewEvent, RecordedEvent

_END_ATTEMPTS = 100  # appends at a stream's end that found it moved, before giving up

_COLUMNS = (
    "global_position, stream_id, stream_version, event_id, event_type, schema_version, "
    "payload, metadata, recorded_at"
)


class ConcurrencyError(Exception):
    """The stream is not at the version the writer expected: someone appended first."""

    def __init__(self, stream_id: str, expected: int, actual: int | None) -> None:
        where = "moved on" if actual is None else f"is at version {actual}"
        super().__init__(f"stream {stream_id!r} {where}, expected version {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEvent(Exception):
    """An event with this id is already stored (the append was a retry)."""


class EventRefused(ValueError):
    """An event that can never be stored or published; the message says why (a permanent
    error: the same event is refused again)."""

    def __init__(self, event_type: str, reason: str) -> None:
        super().__init__(f"{event_type} refused: {reason}")
        self.event_type = event_type
        self.reason = reason


class EventTooLarge(EventRefused):
    """An event larger than `MAX_EVENT_BYTES` (it would not fit in one Kafka record)."""

    def __init__(self, event_type: str, size: int, limit: int = MAX_EVENT_BYTES) -> None:
        super().__init__(event_type, f"{size} bytes of JSON, more than the {limit} allowed")
        self.size = size
        self.limit = limit


class StreamFull(EventRefused):
    """A person's event for a stream that has reached its bound (`MAX_STREAM_EVENTS` events or
    `MAX_STREAM_BYTES` bytes): permanent while the stream exists; open a new one instead."""

    def __init__(self, event_type: str, stream_id: str, events: int, size: int) -> None:
        super().__init__(
            event_type,
            f"stream {stream_id!r} has reached its size limit ({events} events, {size} bytes; "
            f"at most {MAX_STREAM_EVENTS} events and {MAX_STREAM_BYTES} bytes)",
        )
        self.stream_id = stream_id
        self.events = events
        self.size = size


# an escaped NUL in JSON text: "\u0000" preceded by an even number of backslashes
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


# made once: `json.dumps` with other than its default options builds an encoder at every call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json(event_type: str, value: Mapping[str, Any]) -> tuple[str, int]:
    """`value` as compact JSON text (as the relay publishes it) and its size in UTF-8 bytes."""
    try:
        text = _ENCODER.encode(value)
    except ValueError:
        raise EventRefused(event_type, "a number is not finite (NaN or infinity)") from None
    if _ESCAPED_NUL.search(text):
        raise EventRefused(event_type, "a text holds a NUL character")
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise EventRefused(event_type, "a text is not valid Unicode (a lone surrogate)") from None
    return text, size


def encoded(event: NewEvent) -> tuple[str, str]:
    """Payload and metadata of `event` as JSON text; EventRefused when it cannot be stored or
    would not fit in one Kafka record."""
    payload, metadata, _ = _encoded(event)
    return payload, metadata


def _encoded(event: NewEvent) -> tuple[str, str, int]:
    payload, payload_size = _json(event.event_type, event.payload)
    metadata, metadata_size = _json(event.event_type, event.metadata)
    if payload_size + metadata_size > MAX_EVENT_BYTES:
        raise EventTooLarge(event.event_type, payload_size + metadata_size)
    return payload, metadata, payload_size + metadata_size


def _record(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        global_position=row["global_position"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        payload=json.loads(row["payload"]),
        metadata=json.loads(row["metadata"]),
        recorded_at=row["recorded_at"],
    )


# The stream's last event, found by the primary key: its version is the stream's, its
# `stream_bytes` the JSON the stream holds (NULL for a stream written before they were kept),
# its `transaction_id` the least its successors may carry (see the module)
_HEAD = """SELECT coalesce(last.stream_version, 0) AS version, last.stream_bytes AS bytes,
                  last.transaction_id
           FROM (SELECT 1) AS one LEFT JOIN LATERAL (
               SELECT stream_version, stream_bytes, transaction_id FROM events
               WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1) AS last ON true"""
_COUNTED = """SELECT coalesce(sum(octet_length(payload::text) + octet_length(metadata::text)), 0)
              FROM events WHERE stream_id = $1"""
# insert and count the bytes at once; `{end}` is empty, or, at the stream's end, gives way to
# an append that took the version first
_INSERT = f"""INSERT INTO events (stream_id, stream_version, event_id, event_type,
                                 schema_version, payload, metadata, stream_bytes, transaction_id)
              SELECT *, greatest(pg_current_xact_id(), $9::xid8)
              FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::int[],
                          $6::jsonb[], $7::jsonb[], $8::bigint[])
              {{end}}
              RETURNING {_COLUMNS}"""
_AT_VERSION = _INSERT.format(end="")
_AT_END = _INSERT.format(end="ON CONFLICT (stream_id, stream_version) DO NOTHING")


async def _size(conn: asyncpg.Connection, row: asyncpg.Record, stream_id: str) -> int:
    """The bytes the stream holds: kept on its last event, counted once for an older stream."""
    if row["bytes"] is not None or row["version"] == 0:
        return int(row["bytes"] or 0)
    return int(await conn.fetchval(_COUNTED, stream_id))


async def stream_version(conn: asyncpg.Connection, stream_id: str) -> int:
    version = await conn.fetchval(
        "SELECT max(stream_version) FROM events WHERE stream_id = $1", stream_id
    )
    return int(version or 0)


async def append(
    conn: asyncpg.Connection,
    stream_id: str,
    expected_version: int | None,
    events: Sequence[NewEvent],
    *,
    bounded: bool = True,
) -> list[RecordedEvent]:
    """Append `events` after `expected_version` (0 = new stream; None = wherever the stream
    ends, for writers that only need order, not a decision on a known state) in the caller's
    transaction, which must be READ COMMITTED (PostgreSQL's default). `bounded`: a person's
    write, refused when the stream is full (see module).

    Raises ConcurrencyError when the stream moved, DuplicateEvent when an event id is known,
    EventRefused (before any insert) when an event can never be stored or published, StreamFull
    (before any insert) when a bounded append would pass the stream's bound.
    """
    if not events:
        return []
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await append(conn, stream_id, expected_version, events, bounded=bounded)
    texts = [_encoded(event) for event in events]
    added = sum(text[2] for text in texts)
    for _ in range(_END_ATTEMPTS):
        # The version check and the stream's size, read from this statement's snapshot: when a
        # writer appended meanwhile, the primary key refuses the insert below, so an append
        # that is stored was checked against the stream's true end (the bound is exact).
        head = await conn.fetchrow(_HEAD, stream_id)
        version = head["version"]
        if expected_version is not None and version != expected_version:
            raise ConcurrencyError(stream_id, expected_version, version)
        size = await _size(conn, head, stream_id)
        if bounded and (
            version + len(events) > MAX_STREAM_EVENTS or size + added > MAX_STREAM_BYTES
        ):
            raise StreamFull(events[0].event_type, stream_id, version, size)
        totals = list(accumulate((text[2] for text in texts), initial=size))[1:]
        rows = [
            (stream_id, version + offset, event.event_id, event.event_type,
             event.schema_version, payload, metadata, total)
            for offset, (event, (payload, metadata, _), total) in enumerate(
                zip(events, texts, totals, strict=True), 1
            )
        ]  # fmt: skip
        if expected_version is not None:
            return await _insert(conn, _AT_VERSION, rows, head["transaction_id"], version)
        # at the end: claim the first version, giving way (after waiting for its transaction)
        # to a writer that took it; once it is ours, the versions after it are ours too
        claimed = await _insert(conn, _AT_END, rows[:1], head["transaction_id"], version)
        if claimed:
            rest = await _insert(conn, _AT_VERSION, rows[1:], head["transaction_id"], version)
            return claimed + rest
    raise ConcurrencyError(stream_id, version, None)


async def _insert(
    conn: asyncpg.Connection,
    statement: str,
    rows: list[tuple[Any, ...]],
    after_transaction: int | None,
    version: int,
) -> list[RecordedEvent]:
    """Insert `rows` (the stream's versions after `version`); the events inserted."""
    if not rows:
        return []
    try:
        inserted = await conn.fetch(
            statement, *map(list, zip(*rows, strict=True)), after_transaction
        )
    except asyncpg.UniqueViolationError as error:
        if "event_id" in str(error.constraint_name or ""):
            raise DuplicateEvent(str(error.detail)) from error
        raise ConcurrencyError(rows[0][0], version, None) from error
    return sorted((_record(row) for row in inserted), key=lambda r: r.stream_version)


async def read_stream(
    conn: asyncpg.Connection, stream_id: str, after_version: int = 0
) -> list[RecordedEvent]:
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2
            ORDER BY stream_version""",
        stream_id,
        after_version,
    )
    return [_record(row) for row in rows]


def after_sql(position: str) -> str:
    """SQL that holds for the events after the one at `position` (an SQL expression: 0, or
    the position of an event; for any other, it holds for none) in the store's order."""
    return f"""(transaction_id, global_position) > (
        coalesce((SELECT transaction_id FROM events WHERE global_position = {position}),
                 CASE WHEN {position} = 0 THEN '0'::xid8 END), {position})"""


# the oldest transaction still running: every one with a lower id has ended, so nothing can
# commit before an event below it any more (it is settled)
_HORIZON = "pg_snapshot_xmin(pg_current_snapshot())"
_READ_ALL = f"""SELECT {_COLUMNS}, transaction_id, transaction_id < {_HORIZON} AS settled
                FROM events WHERE {after_sql("$1")}
                ORDER BY transaction_id, global_position LIMIT $2"""
READ_WAIT = 2.0  # seconds `read_all` waits at most for the transactions that hold events back
_FIRST_CHECK, _LAST_CHECK = 0.001, 0.05  # seconds between checks of the horizon while waiting


async def read_all(
    conn: asyncpg.Connection, after_position: int = 0, limit: int = 500
) -> list[RecordedEvent]:
    """Events in the store's global order (see module) after the event at `after_position`
    (0: from the start; else the position of an event read from here, e.g. a checkpoint),
    each one settled: no event can commit before it any more.

    Committed events that older transactions still hold back are waited for, up to
    `READ_WAIT` seconds (those that end in that time are usually other writers committing in
    the same few milliseconds); past that it returns the settled ones alone, maybe none."""
    rows = await _committed(conn, after_position, limit)
    if rows and not rows[-1]["settled"]:
        target = rows[-1]["transaction_id"]
        deadline = time.monotonic() + READ_WAIT
        delay = _FIRST_CHECK
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            if await conn.fetchval(f"SELECT $1::xid8 < {_HORIZON}", target):
                rows = await _committed(conn, after_position, limit)
                break
            delay = min(delay * 2, _LAST_CHECK)
    return [_record(row) for row in takewhile(lambda row: row["settled"], rows)]


async def read_all_committed(
    conn: asyncpg.Connection, after_position: int = 0, limit: int = 500
) -> list[RecordedEvent]:
    """As `read_all`, without waiting for open transactions to end: every committed event.
    Only for a reader that keeps appends out another way (`LOCK TABLE events IN SHARE MODE`
    while it reads, as a rebuild's swap does): otherwise an event that commits later may sort
    before the ones read."""
    return [_record(row) for row in await _committed(conn, after_position, limit)]


async def _committed(conn: asyncpg.Connection, after_position: int, limit: int) -> list[Any]:
    """The committed events after `after_position` in the store's order, each with whether it
    is settled (those that are come first: they have the lowest transaction ids)."""
    rows: list[Any] = await conn.fetch(_READ_ALL, after_position, limit)
    if (
        not rows
        and after_position > 0
        and not await conn.fetchval(
            "SELECT true FROM events WHERE global_position = $1", after_position
        )
    ):
        raise ValueError(f"no event at position {after_position} to read after")
    return rows


async def event_exists(conn: asyncpg.Connection, event_id: Any) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM events WHERE event_id = $1", event_id))
