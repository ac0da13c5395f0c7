"""Append-only event store on PostgreSQL: optimistic concurrency per stream, global order.

Appends do not wait for one another: each holds the store's append lock in SHARE mode until it
commits, and an exclusive lock of its stream, so two writers of one stream take turns and the
version read under that lock is the stream's. Readers of the global order (`read_all`) read
only up to the store's high-water mark (migration `0006_high_water.sql`): the store's lock taken
exclusively for an instant, so that no open append can still commit below it. A reader never skips
an event whose transaction commits late, and waits at most `wait` seconds for the open appends
(new ones queue behind it meanwhile), else reads nothing new that time. A NOTIFY in the same
transaction wakes the relay after each append.

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

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import accumulate
from typing import Any

import asyncpg

from desk_contracts.topics import MAX_EVENT_BYTES, MAX_STREAM_BYTES, MAX_STREAM_EVENTS
from desk_eventstore.records import LoggedEvent, NewEvent, RecordedEvent

# with hashtext(current_schema()): one append lock per store, SHARE for appends, exclusive for
# what must see no append in flight (the high-water mark, a rebuild's swap); the same number in
# migrations/0006_high_water.sql
APPEND_LOCK_CLASS = 7_301_002
READ_WAIT = 0.2  # seconds a reader of the global order waits for the open appends
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


# The store's lock shared, the stream's exclusive, then the stream's last event, found by the
# primary key: its version is the stream's, its `stream_bytes` the JSON the stream holds (NULL
# for a stream written before they were kept)
_HEAD = """SELECT pg_advisory_xact_lock_shared($1, hashtext(current_schema())) IS NULL AS store,
                  pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || $2, 0))
                      IS NULL AS stream,
                  coalesce(last.stream_version, 0) AS version, last.stream_bytes AS bytes
           FROM (SELECT 1) AS one LEFT JOIN LATERAL (
               SELECT stream_version, stream_bytes FROM events WHERE stream_id = $2
               ORDER BY stream_version DESC LIMIT 1) AS last ON true"""
_COUNTED = """SELECT coalesce(sum(octet_length(payload::text) + octet_length(metadata::text)), 0)
              FROM events WHERE stream_id = $1"""


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


_INSERT = """INSERT INTO events (stream_id, stream_version, event_id, event_type,
                                schema_version, payload, metadata, stream_bytes)
             SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[],
                                  $5::int[], $6::jsonb[], $7::jsonb[], $8::bigint[])"""


async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> list[RecordedEvent]:
    """Insert the events' rows, count their bytes and wake the relay (NOTIFY is delivered at
    commit) at once; DuplicateEvent for a known event id (a version taken meanwhile is left to
    the caller: asyncpg's UniqueViolationError)."""
    with _duplicates_refused():
        inserted = await conn.fetch(
            f"""WITH appended AS ({_INSERT} RETURNING {_COLUMNS})
                SELECT appended.*, pg_notify('{NOTIFY_CHANNEL}', '') IS NULL AS notified
                FROM appended""",
            *map(list, zip(*rows, strict=True)),
        )
    return sorted((_record(row) for row in inserted), key=lambda r: (r.stream_id, r.stream_version))


@contextmanager
def _duplicates_refused() -> Iterator[None]:
    """A known event id as DuplicateEvent."""
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        if "event_id" in str(error.constraint_name or ""):
            raise DuplicateEvent(str(error.detail)) from error
        raise


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
    transaction. `bounded`: a person's write, refused when the stream is full (see module).

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
    # One round trip for the locks, the version check and the stream's size. Both are read from
    # the statement's snapshot, which may predate the locks: a writer of the stream that slipped
    # in meanwhile is then caught by the primary key below, still as a ConcurrencyError.
    row = await conn.fetchrow(_HEAD, APPEND_LOCK_CLASS, stream_id)
    actual = row["version"]
    if expected_version is None:  # read again under the lock: the snapshot above may be older
        row = await conn.fetchrow(_HEAD, APPEND_LOCK_CLASS, stream_id)
        expected_version = row["version"]
    elif actual != expected_version:
        raise ConcurrencyError(stream_id, expected_version, actual)
    size = await _size(conn, row, stream_id)
    rows = _rows(stream_id, expected_version, events, texts, size, bounded=bounded)
    try:
        return await _insert(conn, rows)
    except asyncpg.UniqueViolationError as error:
        raise ConcurrencyError(stream_id, expected_version, None) from error


def _rows(
    stream_id: str,
    expected_version: int,
    events: Sequence[NewEvent],
    texts: Sequence[tuple[str, str, int]],
    size: int,
    *,
    bounded: bool,
) -> list[tuple[Any, ...]]:
    """The rows of `events` appended after `expected_version` to a stream holding `size`
    bytes: each with its version and the bytes its stream holds up to it. StreamFull when a
    `bounded` append would pass the stream's bound."""
    added = sum(text[2] for text in texts)
    if bounded and (
        expected_version + len(events) > MAX_STREAM_EVENTS or size + added > MAX_STREAM_BYTES
    ):
        raise StreamFull(events[0].event_type, stream_id, expected_version, size)
    totals = list(accumulate((text[2] for text in texts), initial=size))[1:]
    return [
        (
            stream_id,
            expected_version + offset,
            event.event_id,
            event.event_type,
            event.schema_version,
            payload,
            metadata,
            total,
        )
        for offset, (event, (payload, metadata, _), total) in enumerate(
            zip(events, texts, totals, strict=True), 1
        )
    ]


# A multi-stream append takes the store's lock shared, then its streams' locks in the order
# given (sorted, so that two such appends sharing streams cannot deadlock), in one statement:
# each stream's lock is taken on a row joined to the store's, so after it; then reads each
# stream's last event in a statement whose snapshot follows the locks
_LOCK_STREAMS = """WITH store AS MATERIALIZED (
                       SELECT pg_advisory_xact_lock_shared($1, hashtext(current_schema()))
                           IS NULL AS taken)
                   SELECT count(pg_advisory_xact_lock(
                       hashtextextended(current_schema() || '/' || s.stream_id, 0)))
                   FROM store, unnest($2::text[]) AS s(stream_id)
                   WHERE store.taken IS NOT NULL"""
_HEADS = """SELECT s.stream_id, coalesce(last.stream_version, 0) AS version,
                   last.stream_bytes AS bytes
            FROM unnest($1::text[]) AS s(stream_id) LEFT JOIN LATERAL (
                SELECT stream_version, stream_bytes FROM events WHERE stream_id = s.stream_id
                ORDER BY stream_version DESC LIMIT 1) AS last ON true"""


async def append_to_streams(
    conn: asyncpg.Connection,
    events: Mapping[str, Sequence[NewEvent]],
    *,
    bounded: bool = True,
    new: bool = False,
) -> int:
    """Append each stream's `events` wherever that stream ends (`append` with no expected
    version, for writers that only need order), all of them in the caller's transaction with
    three round trips whatever the number of streams: the locks, the streams' heads, the
    insert. `bounded`: a person's write, refused when a stream is full (see
    module). Under the streams' locks no other append can take their next versions. Returns
    how many events were appended (they are not read back: a writer that needs their positions
    uses `append`). `new`: the streams are opened (`append` at version 0): ConcurrencyError,
    before any insert, when one of them exists already.

    Raises DuplicateEvent when an event id is known, EventRefused (before any insert) when an
    event can never be stored or published, StreamFull (before any insert) when a bounded append
    would pass a stream's bound; nothing is appended then.
    """
    streams = sorted(stream_id for stream_id, stream in events.items() if stream)
    if not streams:
        return 0
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await append_to_streams(conn, events, bounded=bounded, new=new)
    texts = {stream_id: [_encoded(event) for event in events[stream_id]] for stream_id in streams}
    await conn.fetchval(_LOCK_STREAMS, APPEND_LOCK_CLASS, streams)
    rows: list[tuple[Any, ...]] = []
    for head in await conn.fetch(_HEADS, streams):
        stream_id, version = head["stream_id"], head["version"]
        if new and version:
            raise ConcurrencyError(stream_id, 0, version)
        stream, encoded_events = events[stream_id], texts[stream_id]
        size = await _size(conn, head, stream_id)
        rows.extend(_rows(stream_id, version, stream, encoded_events, size, bounded=bounded))
    with _duplicates_refused():  # the rows not read back: one NOTIFY, nothing decoded
        appended = await conn.fetchrow(
            f"""WITH appended AS ({_INSERT} RETURNING 1)
                SELECT count(*), pg_notify('{NOTIFY_CHANNEL}', '') IS NULL AS notified
                FROM appended""",
            *map(list, zip(*rows, strict=True)),
        )
    return int(appended[0])


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


async def high_water(conn: asyncpg.Connection, wait: float = READ_WAIT) -> int | None:
    """The highest global position no open append can still fall below, or None when the open
    appends did not end within `wait` seconds (see module). Outside a transaction it holds the
    store's lock for an instant; inside one, until that ends."""
    high: int | None = await conn.fetchval(
        "SELECT events_high_water($1)", max(round(wait * 1000), 1)
    )
    return high


async def stream_versions(conn: asyncpg.Connection) -> dict[str, int]:
    """Every stream's version (its last event's) as they stand now, in one pass over the
    primary key: where a fold of the whole log (a rebuild) knows that a stream is complete."""
    rows = await conn.fetch("SELECT stream_id, max(stream_version) FROM events GROUP BY stream_id")
    return {stream_id: version for stream_id, version in rows}


async def read_all(
    conn: asyncpg.Connection, after_position: int = 0, limit: int = 500, wait: float = READ_WAIT
) -> list[RecordedEvent]:
    """Events in global order after `after_position`, up to the high-water mark; safe against
    late commits, and empty when the open appends kept it waiting past `wait` (see module)."""
    rows = await _read_log(conn, _COLUMNS, after_position, limit, wait)
    return [_record(row) for row in rows]


async def read_all_payloads(
    conn: asyncpg.Connection, after_position: int = 0, limit: int = 500, wait: float = READ_WAIT
) -> list[LoggedEvent]:
    """`read_all` without the events' ids and metadata, their payloads left as JSON text: what a
    fold of the whole log (a rebuild) needs, for a fraction of the reading and decoding (the
    metadata, with the request's state, is most of an event's bytes); up to the high-water mark
    too."""
    columns = "global_position, stream_id, stream_version, event_type, schema_version, payload, "
    rows = await _read_log(conn, columns + "recorded_at", after_position, limit, wait)
    return [LoggedEvent(*row) for row in rows]


async def _read_log(
    conn: asyncpg.Connection, columns: str, after_position: int, limit: int, wait: float
) -> list[asyncpg.Record]:
    """`columns` of the events after `after_position` in global order, up to the high-water
    mark (none when the open appends kept it waiting past `wait`)."""
    high = await high_water(conn, wait)
    if high is None or high <= after_position:
        return []
    return list(
        await conn.fetch(
            f"""SELECT {columns} FROM events WHERE global_position > $1 AND global_position <= $3
                ORDER BY global_position LIMIT $2""",
            after_position,
            limit,
            high,
        )
    )


async def event_exists(conn: asyncpg.Connection, event_id: Any) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM events WHERE event_id = $1", event_id))
