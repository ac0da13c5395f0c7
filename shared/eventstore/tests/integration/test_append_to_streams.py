"""Appends to many streams at once against the real PostgreSQL server: each stream's events
after its last, in order, the bytes counted; a known id or a full stream appends nothing;
concurrent writers of the same streams take turns without a gap or a deadlock."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from desk_eventstore import store
from desk_eventstore.records import NewEvent
from desk_eventstore.store import (
    DuplicateEvent,
    StreamFull,
    append,
    append_to_streams,
    encoded,
    read_all,
    read_stream,
)

pytestmark = pytest.mark.integration


def new(n: int = 0) -> NewEvent:
    return NewEvent(uuid.uuid4(), "Something", {"n": n}, metadata={"correlationid": "c"})


def size_of(event: NewEvent) -> int:
    payload, metadata = encoded(event)
    return len(payload.encode()) + len(metadata.encode())


async def test_each_stream_s_events_follow_its_last_in_order(pool: asyncpg.Pool) -> None:
    older, first, second = new(1), new(2), new(3)
    async with pool.acquire() as conn:
        await append(conn, "T-1", 0, [older])
        appended = await append_to_streams(
            conn, {"T-1": [first, second], "T-2": [new(4)], "T-3": []}
        )
        one, two = await read_stream(conn, "T-1"), await read_stream(conn, "T-2")
        bytes_kept = await conn.fetchval(
            "SELECT stream_bytes FROM events WHERE stream_id = 'T-1' AND stream_version = 3"
        )
        logged = await read_all(conn, 0)
    assert appended == 3
    assert [(e.stream_version, e.payload["n"]) for e in one] == [(1, 1), (2, 2), (3, 3)]
    assert [e.payload["n"] for e in two] == [4]
    assert bytes_kept == size_of(older) + size_of(first) + size_of(second)
    assert len(logged) == 4


async def test_a_known_event_id_appends_nothing(pool: asyncpg.Pool) -> None:
    known = new()
    async with pool.acquire() as conn:
        await append(conn, "T-1", 0, [known])
        with pytest.raises(DuplicateEvent):
            async with conn.transaction():
                await append_to_streams(conn, {"T-2": [new()], "T-3": [known]})
        assert await read_stream(conn, "T-2") == []


async def test_a_bounded_append_to_a_full_stream_appends_nothing(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_STREAM_EVENTS", 2)
    async with pool.acquire() as conn:
        await append(conn, "T-1", 0, [new(), new()])
        with pytest.raises(StreamFull):
            await append_to_streams(conn, {"T-1": [new()], "T-2": [new()]})
        assert await read_stream(conn, "T-2") == []
        await append_to_streams(conn, {"T-1": [new()]}, bounded=False)  # the desk's own
        assert len(await read_stream(conn, "T-1")) == 3


async def test_concurrent_writers_of_the_same_streams_take_turns(pool: asyncpg.Pool) -> None:
    streams = [f"T-{n}" for n in range(10)]

    async def write(order: list[str]) -> None:
        async with pool.acquire() as conn:
            for _ in range(5):
                await append_to_streams(conn, {stream: [new()] for stream in order})
                await append(conn, order[0], None, [new()])

    await asyncio.gather(write(streams), write(streams[::-1]), write(streams[3:] + streams[:3]))
    async with pool.acquire() as conn:
        for stream in streams:
            versions = [e.stream_version for e in await read_stream(conn, stream)]
            assert versions == list(range(1, len(versions) + 1))
        total = await conn.fetchval("SELECT count(*) FROM events")
    assert total == 3 * 5 * (len(streams) + 1)
