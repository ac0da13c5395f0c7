"""The store's global order under concurrent writers, against the real PostgreSQL server: appends
do not wait for one another, yet a reader that moves on from a checkpoint sees every event once,
each stream in version order, and the per-stream checks hold."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from itertools import pairwise

import asyncpg
import pytest

from desk_eventstore import store
from desk_eventstore.records import NewEvent, RecordedEvent
from desk_eventstore.store import StreamFull, append, read_all, read_stream

pytestmark = pytest.mark.integration


def new(n: int = 0) -> NewEvent:
    return NewEvent(uuid.uuid4(), "Something", {"n": n})


async def test_appends_to_two_streams_do_not_wait_for_each_other(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as first, pool.acquire() as second:
        transaction = first.transaction()
        await transaction.start()
        await append(first, "one", 0, [new()])  # open, holding its position
        await asyncio.wait_for(append(second, "two", 0, [new()]), 2)  # commits meanwhile
        await transaction.commit()
        events = await read_all(first, 0)
    assert sorted(e.stream_id for e in events) == ["one", "two"]


async def test_concurrent_writers_a_reader_from_a_checkpoint_sees_every_event_once(
    pool: asyncpg.Pool,
) -> None:
    """8 writers on 8 connections; each transaction sleeps, appends 1-3 events, sleeps and
    commits (a few roll back instead), so positions and commits interleave in every order: a
    later position commits first. The reader resumes from its last event's position, as the
    relay does from its checkpoint."""
    rng = random.Random(13)
    writers, transactions = 8, 30
    done = asyncio.Event()
    committed: list[RecordedEvent] = []

    async def writer(w: int) -> None:
        async with pool.acquire() as conn:
            version = 0
            for t in range(transactions):
                transaction = conn.transaction()
                await transaction.start()
                await asyncio.sleep(rng.uniform(0, 0.02))
                recorded = await append(
                    conn, f"w{w}", version, [new(t) for _ in range(rng.randint(1, 3))]
                )
                await asyncio.sleep(rng.uniform(0, 0.02))
                if rng.random() < 0.1:
                    await transaction.rollback()  # a gap in the positions, for good
                    continue
                await transaction.commit()
                committed.extend(recorded)
                version += len(recorded)

    async def reader() -> list[RecordedEvent]:
        seen: list[RecordedEvent] = []
        checkpoint = 0
        async with pool.acquire() as conn:
            while True:
                finished = done.is_set()
                batch = await read_all(conn, checkpoint, 7)
                seen.extend(batch)
                checkpoint = batch[-1].global_position if batch else checkpoint
                if finished and not batch:
                    return seen
                await asyncio.sleep(rng.uniform(0, 0.005))

    read_task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    done.set()
    seen = await read_task

    ids = [event.event_id for event in seen]
    assert len(ids) == len(set(ids)), "an event was read twice"
    assert sorted(ids) == sorted(event.event_id for event in committed), "an event was skipped"
    async with pool.acquire() as conn:
        assert [e.event_id for e in await read_all(conn, 0, 10_000)] == ids  # one order
    streams: dict[str, list[RecordedEvent]] = defaultdict(list)
    for event in seen:
        streams[event.stream_id].append(event)
    for events in streams.values():
        assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
        positions = [e.global_position for e in events]
        assert positions == sorted(positions)
    # the writers overlapped: some committed in another order than their positions
    assert any(b.global_position < a.global_position for a, b in pairwise(committed))


async def test_appends_at_the_stream_s_end_from_racing_writers_all_land_in_turn(
    pool: asyncpg.Pool,
) -> None:
    async def write(n: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await append(conn, "T-end", None, [new(n), new(n)])
            await asyncio.sleep(0.01)  # hold the version for a while

    await asyncio.gather(*(write(n) for n in range(8)))
    async with pool.acquire() as conn:
        events = await read_stream(conn, "T-end")
    assert [e.stream_version for e in events] == list(range(1, 17))
    assert [e.payload["n"] for e in events][::2] == [e.payload["n"] for e in events][1::2]


async def test_the_stream_bound_holds_for_racing_writers_at_its_end(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_STREAM_EVENTS", 5)

    async def write(n: int) -> bool:
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await append(conn, "T-full", None, [new(n)])
                    await asyncio.sleep(0.01)
                return True
            except StreamFull:
                return False

    results = await asyncio.gather(*(write(n) for n in range(10)))
    async with pool.acquire() as conn:
        events = await read_stream(conn, "T-full")
    assert results.count(True) == 5
    assert [e.stream_version for e in events] == [1, 2, 3, 4, 5]


async def test_a_reader_waits_for_open_appends_only_so_long_then_reads_nothing_new(
    pool: asyncpg.Pool,
) -> None:
    """An append left open holds the high-water mark back: the reader gives up after `wait`
    (reading nothing, not what was committed behind it), and the writers it queued meanwhile go
    on; once the append ends, the next read has everything."""
    async with pool.acquire() as slow, pool.acquire() as fast, pool.acquire() as reader:
        await append(fast, "before", 0, [new()])
        transaction = slow.transaction()
        await transaction.start()
        await append(slow, "slow", 0, [new()])
        await append(fast, "fast", 0, [new()])  # committed behind the open one
        started = time.monotonic()
        assert await read_all(reader, 0, wait=0.3) == []
        assert 0.25 < time.monotonic() - started < 2
        await asyncio.wait_for(append(fast, "after", 0, [new()]), 1)  # not held up for good
        await transaction.commit()
        events = await read_all(reader, 0)
    assert [e.stream_id for e in events] == ["before", "slow", "fast", "after"]
