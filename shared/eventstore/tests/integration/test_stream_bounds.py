"""The store's bound per stream against the real PostgreSQL server: a person's append past
`MAX_STREAM_EVENTS` events or `MAX_STREAM_BYTES` bytes is refused whole with `StreamFull` and
writes nothing; the desk's own appends (`bounded=False`) pass and count; the bytes are kept on
each event (`stream_bytes`). Small bounds by monkeypatch, and once the real constants."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from desk_contracts.topics import MAX_EVENT_BYTES, MAX_STREAM_BYTES, MAX_STREAM_EVENTS
from desk_eventstore import store
from desk_eventstore.migrate import apply_migrations, event_store_migrations
from desk_eventstore.records import NewEvent
from desk_eventstore.store import StreamFull, append, encoded, read_stream

pytestmark = pytest.mark.integration


def comment(body: str = "hello") -> NewEvent:
    return NewEvent(uuid.uuid4(), "CommentAdded", {"body": body}, metadata={"correlationid": "c"})


def size_of(event: NewEvent) -> int:
    payload, metadata = encoded(event)
    return len(payload.encode()) + len(metadata.encode())


async def kept_bytes(conn: asyncpg.Connection, stream_id: str) -> int | None:
    """The bytes the stream holds, as its last event carries them."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT stream_bytes FROM events WHERE stream_id = $1
           ORDER BY stream_version DESC LIMIT 1""",
        stream_id,
    )


async def test_a_person_s_append_past_the_event_bound_is_refused_and_writes_nothing(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_STREAM_EVENTS", 3)
    async with pool.acquire() as conn:
        await append(conn, "T-1", 0, [comment(), comment()])
        with pytest.raises(StreamFull) as batch:  # 2 + 2 > 3: refused whole
            await append(conn, "T-1", 2, [comment(), comment()])
        await append(conn, "T-1", 2, [comment()])
        with pytest.raises(StreamFull) as full:
            await append(conn, "T-1", 3, [comment()])
        with pytest.raises(StreamFull):  # at the stream's end too
            await append(conn, "T-1", None, [comment()])
        assert len(await read_stream(conn, "T-1")) == 3
        assert await append(conn, "T-2", 0, [comment()])  # other streams are not concerned
    assert "stream 'T-1' has reached its size limit (3 events" in str(full.value)
    assert full.value.events == 3 and batch.value.events == 2
    assert isinstance(full.value, store.EventRefused)  # every HTTP edge maps it (409)


async def test_a_person_s_append_past_the_byte_bound_is_refused_and_writes_nothing(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = size_of(comment("x" * 300))
    monkeypatch.setattr(store, "MAX_STREAM_BYTES", 3 * one + 10)
    async with pool.acquire() as conn:
        for version in range(3):
            await append(conn, "T-1", version, [comment("x" * 300)])
        assert await kept_bytes(conn, "T-1") == 3 * one
        with pytest.raises(StreamFull) as full:
            await append(conn, "T-1", 3, [comment("x" * 300)])
        assert await kept_bytes(conn, "T-1") == 3 * one  # the refusal wrote nothing
        assert len(await read_stream(conn, "T-1")) == 3
    assert f"{3 * one} bytes" in str(full.value)


async def test_the_desk_s_own_events_are_appended_to_a_full_stream_and_counted(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_STREAM_EVENTS", 2)
    reminder = NewEvent(uuid.uuid4(), "ReminderSent", {"days_waiting": 3})
    async with pool.acquire() as conn:
        await append(conn, "T-1", 0, [comment(), comment()])
        with pytest.raises(StreamFull):
            await append(conn, "T-1", 2, [comment()])
        (sent,) = await append(conn, "T-1", None, [reminder], bounded=False)
        assert sent.stream_version == 3
        with pytest.raises(StreamFull):  # people stay refused
            await append(conn, "T-1", 3, [comment()])
        assert await kept_bytes(conn, "T-1") == 2 * size_of(comment()) + size_of(reminder)


async def test_the_real_bounds_refuse_the_2001st_event_and_the_ninth_megabyte(
    pool: asyncpg.Pool,
) -> None:
    assert (MAX_STREAM_EVENTS, MAX_STREAM_BYTES) == (2_000, 8 * 1024 * 1024)
    async with pool.acquire() as conn:
        for start in range(0, MAX_STREAM_EVENTS, 500):
            await append(conn, "T-count", start, [comment() for _ in range(500)])
        with pytest.raises(StreamFull):
            await append(conn, "T-count", MAX_STREAM_EVENTS, [comment()])
        big = "x" * (MAX_EVENT_BYTES - 200)  # the largest a single event may be, about
        fits = MAX_STREAM_BYTES // size_of(comment(big))
        for version in range(fits):
            await append(conn, "T-bytes", version, [comment(big)])
        with pytest.raises(StreamFull):
            await append(conn, "T-bytes", fits, [comment(big)])
        kept = await kept_bytes(conn, "T-bytes")
    assert kept is not None and MAX_STREAM_BYTES - MAX_EVENT_BYTES < kept <= MAX_STREAM_BYTES


async def test_streams_written_before_the_bound_are_counted_by_its_migration(
    database_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = event_store_migrations()
    before, (bound,), after = migrations[:4], migrations[4:5], migrations[5:]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
        await apply_migrations(conn, before)
        await conn.execute(  # as appends wrote them before stream_bytes existed
            """INSERT INTO events (stream_id, stream_version, event_id, event_type, payload)
               VALUES ('T-old', 1, gen_random_uuid(), 'CommentAdded', $1),
                      ('T-old', 2, gen_random_uuid(), 'CommentAdded', $1)""",
            json.dumps({"body": "x" * 5_000}),
        )
        await apply_migrations(conn, [bound, *after])
        kept = await kept_bytes(conn, "T-old")
        assert kept is not None and 10_000 < kept < 10_100
        monkeypatch.setattr(store, "MAX_STREAM_BYTES", 12_000)
        with pytest.raises(StreamFull):
            await append(conn, "T-old", 2, [comment("x" * 2_000)])
        await append(conn, "T-old", 2, [comment("x" * 1_000)])
    finally:
        await conn.close()
