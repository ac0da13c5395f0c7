"""Reading the ticket log for the analysts' tools, from Kafka or from workflow's store, without
touching anyone's state.

- **Kafka** (`ticket-events`, with `TOPIC_PREFIX`): every partition assigned by hand, without
  a consumer group, from the beginning up to its end at the start of the read, so no offset of
  anyone's moves. Records come by large batches (`getmany`); the fast path takes only the
  `request-state` header of each (parsed by pydantic-core's JSON parser, about twice as fast
  as `json` on these objects), not the CloudEvent.
- **The store** (`DATABASE_URL`, workflow's schema): its events table read in global order in
  one read-only, repeatable-read transaction (a snapshot: appends meanwhile are not seen),
  through a server-side cursor; the state each event was stored with (`metadata.request`).

Both give the same thing per event: the request's state after it (JSON data), or, for the
exports, the whole `LogRecord`. `Progress` is told (records read, records in all) per batch.
`gather` folds the states into the requests' histories with the cycle collector paused (the
histories are hundreds of thousands of objects that live until the end and form no cycles;
its passes over them took more than half of the read's time).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic_core import from_json

from desk_contracts.state import STATE_HEADER, STATE_METADATA
from sla.domain.whatif import Histories, Period

__all__ = [
    "LogRecord",
    "Progress",
    "collector_paused",
    "gather",
    "kafka_batches",
    "kafka_records",
    "kafka_states",
    "store_records",
    "store_rows",
    "store_states",
]

Progress = Callable[[int, int], None]
FETCH_BYTES = 16 * 1024 * 1024  # per partition and fetch: large batches, few round trips
STORE_BATCH = 10_000  # rows per fetch of the store's cursor
_TYPE_HEADER = "ce_type"


def _nothing(done: int, total: int) -> None:
    """No progress shown."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One event of the log as the exports write it: its type, ticket and stream version, its
    payload as JSON text, and the request's state after it (None when it carries none)."""

    event_type: str
    ticket_id: str
    version: int
    data: str
    state: dict[str, Any] | None


async def kafka_batches(bootstrap: str, topic: str, progress: Progress) -> AsyncIterator[list[Any]]:
    """The raw records of every partition of `topic`, batch by batch, from the beginning up to
    each partition's end at the start."""
    consumer = AIOKafkaConsumer(
        topic,  # without a group, a subscription is assigned every partition of the topic
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=4 * FETCH_BYTES,
    )
    await consumer.start()
    try:
        partitions = await _assigned(consumer, topic, bootstrap)
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        total = sum(end[tp] - begin[tp] for tp in partitions)
        done = 0
        progress(0, total)
        remaining = {tp for tp in partitions if end[tp] > begin[tp]}
        for tp in partitions:
            consumer.seek(tp, begin[tp])
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                if records and records[-1].offset >= end[tp]:  # appended since the start
                    records = [r for r in records if r.offset < end[tp]]
                if records:
                    done += len(records)
                    yield records
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)  # read to its end: fetch no more of it
            progress(done, total)
    finally:
        await consumer.stop()


def _state(raw: bytes | str | None) -> dict[str, Any] | None:
    """A `request-state` as JSON data; None when absent, not JSON or not an object."""
    if raw is None:
        return None
    try:
        state = from_json(raw)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


async def _assigned(consumer: AIOKafkaConsumer, topic: str, bootstrap: str) -> list[TopicPartition]:
    """Every partition of `topic`, once the consumer has its metadata (10 s at most)."""
    for _ in range(100):
        assigned = consumer.assignment()
        if assigned:
            return sorted(assigned)
        await asyncio.sleep(0.1)
    raise SystemExit(f"no topic {topic} at {bootstrap}")


async def kafka_states(
    bootstrap: str, topic: str, progress: Progress = _nothing
) -> AsyncIterator[list[dict[str, Any]]]:
    """The published state of every record of `topic` (records without one are skipped), by
    batches, in each ticket's order. A header that is not JSON comes as an empty state, which
    `Histories` counts as unreadable: no record stops the replay."""
    loads = from_json
    async for records in kafka_batches(bootstrap, topic, progress):
        states = []
        for record in records:
            for name, value in reversed(record.headers):  # the state is among the last headers
                if name == STATE_HEADER:
                    try:
                        states.append(loads(value))
                    except ValueError:
                        states.append({})
                    break
        yield states


async def kafka_records(
    bootstrap: str, topic: str, progress: Progress = _nothing
) -> AsyncIterator[list[LogRecord]]:
    """Every record of `topic` as a `LogRecord`, by batches."""
    async for records in kafka_batches(bootstrap, topic, progress):
        batch = []
        for record in records:
            headers = dict(record.headers)
            parsed = _state(headers.get(STATE_HEADER))
            version = parsed["version"] if parsed else int(headers.get("ce_streamversion", b"0"))
            batch.append(
                LogRecord(
                    event_type=headers.get(_TYPE_HEADER, b"").decode(),
                    ticket_id=(record.key or b"").decode(errors="replace"),
                    version=version,
                    data=(record.value or b"{}").decode(errors="replace"),
                    state=parsed,
                )
            )
        yield batch


async def store_rows(
    url: str, schema: str, columns: str, progress: Progress
) -> AsyncIterator[list[asyncpg.Record]]:
    """`columns` (SQL) of every row of the store's events table, in global order, by batches
    of `STORE_BATCH`, in one read-only repeatable-read transaction."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            exists = await conn.fetchval("SELECT to_regclass('events') IS NOT NULL")
            if not exists:
                raise SystemExit(f"no events table in schema {schema!r}")
            total = await conn.fetchval(
                "SELECT coalesce(max(global_position) - min(global_position) + 1, 0) FROM events"
            )
            progress(0, total)
            cursor = await conn.cursor(f"SELECT {columns} FROM events ORDER BY global_position")
            done = 0
            while rows := await cursor.fetch(STORE_BATCH):
                done += len(rows)
                yield rows
                progress(done, max(total, done))
    finally:
        await conn.close()


async def store_states(
    url: str, schema: str = "workflow", progress: Progress = _nothing
) -> AsyncIterator[list[dict[str, Any]]]:
    """The state every event of the store was appended with, in global order, by batches."""
    loads = from_json
    column = f"metadata->>'{STATE_METADATA}'"
    async for rows in store_rows(url, schema, column, progress):
        yield [loads(row[0]) for row in rows if row[0] is not None]


async def store_records(
    url: str, schema: str = "workflow", progress: Progress = _nothing
) -> AsyncIterator[list[LogRecord]]:
    """Every event of the store as a `LogRecord`, in global order, by batches."""
    columns = f"event_type, stream_id, stream_version, payload::text, metadata->>'{STATE_METADATA}'"
    async for rows in store_rows(url, schema, columns, progress):
        yield [
            LogRecord(
                event_type=row[0],
                ticket_id=row[1],
                version=row[2],
                data=row[3],
                state=_state(row[4]),
            )
            for row in rows
        ]


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector paused for a read that makes many long-lived objects (see module)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def gather(
    batches: AsyncIterator[list[dict[str, Any]]], period: Period | None = None
) -> Histories:
    """The requests' histories of published states read by batches (`kafka_states`,
    `store_states`), up to the period's end."""
    histories = Histories(period or Period())
    with collector_paused():
        async for states in batches:
            histories.add_all(states)
    return histories
