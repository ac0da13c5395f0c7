"""Append-only event store on PostgreSQL: optimistic concurrency per stream, global order.

Appends take a transaction-scoped advisory lock before inserting, so global positions become
visible in the order they were assigned: a reader of the global order never skips an event
whose transaction commits late. A NOTIFY in the same transaction wakes the relay after each append.

Every event is checked where it is appended, for every service alike: one that could never be
stored or published (larger than `MAX_EVENT_BYTES`, below the topics' `max.message.bytes`; text
that is not valid Unicode; NUL, which PostgreSQL cannot store; a number that is not finite) is
refused with `EventRefused`, before it can reach the outbox and stop the relay.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from desk_contracts.topics import MAX_EVENT_BYTES
from desk_eventstore.records import NewEvent, RecordedEvent

APPEND_LOCK_CLASS = 7_301_002  # with hashtext(current_schema()): one append lock per store
NOTIFY_CHANNEL = "events_appended"

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


# an escaped NUL in JSON text: "\u0000" preceded by an even number of backslashes
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _json(event_type: str, value: Mapping[str, Any]) -> tuple[str, int]:
    """`value` as compact JSON text (as the relay publishes it) and its size in UTF-8 bytes."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
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
    payload, payload_size = _json(event.event_type, event.payload)
    metadata, metadata_size = _json(event.event_type, event.metadata)
    if payload_size + metadata_size > MAX_EVENT_BYTES:
        raise EventTooLarge(event.event_type, payload_size + metadata_size)
    return payload, metadata


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
) -> list[RecordedEvent]:
    """Append `events` after `expected_version` (0 = new stream; None = wherever the stream
    ends, for writers that only need order, not a decision on a known state) in the caller's
    transaction.

    Raises ConcurrencyError when the stream moved, DuplicateEvent when an event id is known,
    EventRefused (before any insert) when an event can never be stored or published.
    """
    if not events:
        return []
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await append(conn, stream_id, expected_version, events)
    texts = [encoded(event) for event in events]
    # One round trip for the lock and the version check. The version is read from the
    # statement's snapshot, which may predate the lock: a writer that slipped in meanwhile is
    # then caught by the primary key below, still as a ConcurrencyError.
    row = await conn.fetchrow(
        """SELECT pg_advisory_xact_lock($1, hashtext(current_schema())) IS NULL AS locked,
                  (SELECT coalesce(max(stream_version), 0) FROM events
                   WHERE stream_id = $2) AS version""",
        APPEND_LOCK_CLASS,
        stream_id,
    )
    actual = row["version"]
    if expected_version is None:  # read again under the lock: the snapshot above may be older
        expected_version = await stream_version(conn, stream_id)
    elif actual != expected_version:
        raise ConcurrencyError(stream_id, expected_version, actual)
    rows: list[tuple[Any, ...]] = [
        (
            stream_id,
            expected_version + offset,
            event.event_id,
            event.event_type,
            event.schema_version,
            payload,
            metadata,
        )
        for offset, (event, (payload, metadata)) in enumerate(zip(events, texts, strict=True), 1)
    ]
    try:  # insert and wake the relay (NOTIFY is delivered at commit) in one round trip
        inserted = await conn.fetch(
            f"""WITH appended AS (
                    INSERT INTO events (stream_id, stream_version, event_id, event_type,
                                        schema_version, payload, metadata)
                    SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[],
                                         $5::int[], $6::jsonb[], $7::jsonb[])
                    RETURNING {_COLUMNS})
                SELECT appended.*, pg_notify('{NOTIFY_CHANNEL}', '') IS NULL AS notified
                FROM appended""",
            *map(list, zip(*rows, strict=True)),
        )
    except asyncpg.UniqueViolationError as error:
        if "event_id" in str(error.constraint_name or ""):
            raise DuplicateEvent(str(error.detail)) from error
        raise ConcurrencyError(stream_id, expected_version, None) from error
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


async def read_all(
    conn: asyncpg.Connection, after_position: int = 0, limit: int = 500
) -> list[RecordedEvent]:
    """Events in global order after `after_position`; safe against late commits (see module)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM events WHERE global_position > $1
            ORDER BY global_position LIMIT $2""",
        after_position,
        limit,
    )
    return [_record(row) for row in rows]


async def event_exists(conn: asyncpg.Connection, event_id: Any) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM events WHERE event_id = $1", event_id))
