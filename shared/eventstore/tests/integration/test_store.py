"""The event store against the real PostgreSQL server: versions, concurrency, global order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from desk_contracts.tickets import CommentAdded
from desk_eventstore.db import KEEPALIVE, open_store
from desk_eventstore.inbox import first_time
from desk_eventstore.records import NewEvent
from desk_eventstore.store import (
    ConcurrencyError,
    DuplicateEvent,
    EventRefused,
    append,
    append_to_streams,
    read_all,
    read_all_payloads,
    read_stream,
    stream_versions,
)

pytestmark = pytest.mark.integration


def new(n: int = 0) -> NewEvent:
    return NewEvent(uuid.uuid4(), "Something", {"n": n}, metadata={"correlationid": "c-1"})


async def test_append_then_read_stream_in_version_order(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await append(conn, "T-1", 0, [new(1), new(2)])
        await append(conn, "T-1", 2, [new(3)])
        events = await read_stream(conn, "T-1")
    assert [e.stream_version for e in events] == [1, 2, 3]
    assert [e.payload["n"] for e in events] == [1, 2, 3]
    assert events[0].metadata == {"correlationid": "c-1"}


async def test_wrong_expected_version_is_a_clear_concurrency_error(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await append(conn, "T-2", 0, [new()])
        with pytest.raises(ConcurrencyError, match="at version 1, expected version 0"):
            await append(conn, "T-2", 0, [new()])
        assert len(await read_stream(conn, "T-2")) == 1


async def test_racing_writers_on_one_stream_exactly_one_wins(pool: asyncpg.Pool) -> None:
    async def write() -> bool:
        async with pool.acquire() as conn:
            try:
                await append(conn, "T-3", 0, [new()])
                return True
            except ConcurrencyError:
                return False

    results = await asyncio.gather(*(write() for _ in range(8)))
    assert results.count(True) == 1


async def test_same_event_id_twice_is_refused(pool: asyncpg.Pool) -> None:
    event = new()
    async with pool.acquire() as conn:
        await append(conn, "T-4", 0, [event])
        with pytest.raises(DuplicateEvent):
            await append(conn, "T-5", 0, [event])


async def test_new_streams_open_together_as_each_alone_would(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        opened = {"N-1": [new(1), new(2)], "N-2": [new(3)]}
        assert await append_to_streams(conn, opened, new=True) == 3
        assert [(e.stream_version, e.payload["n"]) for e in await read_stream(conn, "N-1")] == [
            (1, 1),
            (2, 2),
        ]
        await append(conn, "N-2", 1, [new(4)])  # then appended to as any stream
        known = new(5)
        await append(conn, "N-3", 0, [known])
        refusals = [
            ({"N-4": [new()], "N-1": [new()]}, ConcurrencyError, "'N-1' is at version 2"),
            ({"N-6": [new()], "N-7": [known]}, DuplicateEvent, "event_id"),
            ({"N-8": [new()], "N-9": [NewEvent(uuid.uuid4(), "Bad", {"t": "\0"})]},
             EventRefused, "NUL"),
        ]  # fmt: skip
        for streams, error, message in refusals:
            with pytest.raises(error, match=message):
                await append_to_streams(conn, streams, new=True)
        ids = {e.stream_id for e in await read_all(conn, 0, 100)}
    assert ids == {"N-1", "N-2", "N-3"}  # a refused set opens none of its streams


async def test_a_reader_never_skips_an_event_that_commits_late(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as slow, pool.acquire() as reader:
        transaction = slow.transaction()
        await transaction.start()
        await append(slow, "slow", 0, [new()])  # holds the append lock, not committed yet

        async def fast_writer() -> None:
            async with pool.acquire() as conn:
                await append(conn, "fast", 0, [new()])

        fast = asyncio.create_task(fast_writer())
        await asyncio.sleep(0.3)
        assert await read_all(reader, 0) == []  # nothing visible may jump the queue
        await transaction.commit()
        await fast
        seen = await read_all(reader, 0)
    assert [e.stream_id for e in seen] == ["slow", "fast"]


async def test_global_order_read_while_writing_collects_every_event(pool: asyncpg.Pool) -> None:
    writers, per_writer = 6, 40
    done = asyncio.Event()

    async def writer(w: int) -> None:
        async with pool.acquire() as conn:
            for i in range(per_writer):
                await append(conn, f"w{w}", i, [new(i)])

    async def reader() -> list[int]:
        seen: list[int] = []
        position = 0
        async with pool.acquire() as conn:
            while True:
                finished = done.is_set()
                batch = await read_all(conn, position, 50)
                seen.extend(e.global_position for e in batch)
                position = batch[-1].global_position if batch else position
                if finished and not batch:
                    return seen

    read_task = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    done.set()
    seen = await read_task
    async with pool.acquire() as conn:
        stored = [e.global_position for e in await read_all(conn, 0, 10_000)]
    assert len(stored) == writers * per_writer
    assert seen == stored


async def test_inbox_applies_each_event_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await first_time(conn, "notifier", "e-1", "T-1")
        assert not await first_time(conn, "notifier", "e-1", "T-1")
        assert await first_time(conn, "sla", "e-1", "T-1")


async def test_migrations_are_applied_once(database_url: str, schema: str) -> None:
    first = await open_store(database_url, schema)
    second = await open_store(database_url, schema)
    async with second.acquire() as conn:
        rows = await conn.fetch("SELECT source, version FROM schema_migrations")
    await first.close()
    await second.close()
    assert [(r["source"], r["version"]) for r in rows] == [("eventstore", n) for n in range(1, 7)]


async def test_every_session_of_a_store_has_short_keepalives(pool: asyncpg.Pool) -> None:
    """So a replica whose host vanished loses its session, and its advisory locks (relay
    leadership, notifier leases), in seconds rather than the system's two hours."""
    async with pool.acquire() as conn:
        settings = [await conn.fetchval(f"SHOW {name}") for name in KEEPALIVE]
    assert settings == ["5", "5", "3"]


def comment(ticket_id: str, body: str) -> NewEvent:
    event = CommentAdded(
        ticket_id=ticket_id,
        occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        actor_id="paul@desk.example",
        actor_role="agent",
        body=body,
        public=True,
    )
    return NewEvent.from_event(event, metadata={"state": {"large": "x" * 100}})


async def test_the_log_read_for_a_fold_is_the_log_read_whole_without_ids_and_metadata(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await append(conn, "T-1", 0, [comment("T-1", "un"), comment("T-1", "deux")])
        await append(conn, "T-2", 0, [comment("T-2", "trois")])
        await append(conn, "T-1", 2, [comment("T-1", "quatre")])
        whole = await read_all(conn, 0)
        logged = await read_all_payloads(conn, 0)
        later = await read_all_payloads(conn, whole[0].global_position, 2)
    assert [
        (e.global_position, e.stream_id, e.stream_version, e.event_type, e.recorded_at)
        for e in logged
    ] == [
        (e.global_position, e.stream_id, e.stream_version, e.event_type, e.recorded_at)
        for e in whole
    ]
    events = [e.to_event() for e in logged]
    assert events == [e.to_event() for e in whole]
    assert [e.body for e in events if isinstance(e, CommentAdded)] == [
        "un",
        "deux",
        "trois",
        "quatre",
    ]
    assert later == logged[1:3]


async def test_stream_versions_are_each_stream_s_last(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await stream_versions(conn) == {}
        await append(conn, "T-1", 0, [new(1), new(2)])
        await append(conn, "T-2", 0, [new(3)])
        await append(conn, "T-1", 2, [new(4)])
        assert await stream_versions(conn) == {"T-1": 3, "T-2": 1}
