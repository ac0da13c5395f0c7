"""Group commit against the real PostgreSQL server: shared transactions, each caller its answer."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from desk_eventstore.db import open_store
from desk_eventstore.group_commit import GroupCommit, Work
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append, append_to_streams, read_all

pytestmark = pytest.mark.integration

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


def new(n: int) -> NewEvent:
    return NewEvent(uuid.uuid4(), "Something", {"n": n})


class Refused(Exception):
    """A work's own failure."""


async def test_concurrent_works_share_transactions_and_each_gets_its_own_answer(
    pool: asyncpg.Pool,
) -> None:
    commits = GroupCommit(pool)

    async def one(n: int) -> int:
        async def work(conn: asyncpg.Connection) -> int:
            [recorded] = await append(conn, f"S-{n}", 0, [new(n)])
            return recorded.global_position

        return await commits.run(work)

    positions = await asyncio.gather(*(one(n) for n in range(60)))
    async with pool.acquire() as conn:
        stored = {e.stream_id: e.global_position for e in await read_all(conn, 0, 100)}
    assert stored == {f"S-{n}": positions[n] for n in range(60)}
    assert commits.works == 60
    assert commits.transactions < 60  # they were grouped


async def test_a_failing_work_takes_back_only_its_own_writes(pool: asyncpg.Pool) -> None:
    commits = GroupCommit(pool)

    async def work(conn: asyncpg.Connection, n: int) -> int:
        await append(conn, f"S-{n}", 0, [new(n)])
        if n % 3 == 1:
            raise Refused(f"work {n}")
        return n

    async def one(n: int) -> int | str:
        try:
            return await commits.run(lambda conn: work(conn, n))
        except Refused as error:
            return str(error)

    answers = await asyncio.gather(*(one(n) for n in range(12)))
    assert answers == [f"work {n}" if n % 3 == 1 else n for n in range(12)]
    async with pool.acquire() as conn:
        streams = {e.stream_id for e in await read_all(conn, 0, 100)}
    assert streams == {f"S-{n}" for n in range(12) if n % 3 != 1}


@dataclass(frozen=True)
class Opening:
    """A work that can also run with others of its kind: it opens stream S-n."""

    n: int

    async def __call__(self, conn: asyncpg.Connection) -> int:
        [recorded] = await append(conn, f"S-{self.n}", 0, [new(self.n)])
        if self.n % 5 == 4:
            raise Refused(f"work {self.n}")
        return recorded.stream_version


async def test_works_of_one_kind_run_as_a_set_and_one_by_one_when_the_set_cannot(
    pool: asyncpg.Pool,
) -> None:
    commits = GroupCommit(pool)
    sets: list[list[int]] = []

    async def together(conn: asyncpg.Connection, works: list[Opening]) -> list[int]:
        sets.append([work.n for work in works])
        if any(work.n % 5 == 4 for work in works):  # only one by one can tell which fails
            raise Refused("not as a set")
        await append_to_streams(conn, {f"S-{w.n}": [new(w.n)] for w in works}, new=True)
        return [1 for _ in works]

    async def one(n: int) -> int | str:
        try:
            return await commits.run(Opening(n), together=together)
        except Refused as error:
            return str(error)

    first = await asyncio.gather(*(one(n) for n in range(4)))  # none fails
    answers = await asyncio.gather(*(one(n) for n in range(10, 20)))
    assert first == [1, 1, 1, 1]
    assert answers == [f"work {n}" if n % 5 == 4 else 1 for n in range(10, 20)]
    assert max(len(s) for s in sets) > 1  # they ran as sets, each answered as alone
    assert commits.together >= len(sets[0])  # the first set committed as one
    async with pool.acquire() as conn:
        streams = sorted(e.stream_id for e in await read_all(conn, 0, 100))
    expected = [f"S-{n}" for n in [*range(4), *range(10, 20)] if n % 5 != 4]
    assert streams == sorted(expected)


async def test_a_transaction_lost_as_a_whole_fails_every_work_in_it(pool: asyncpg.Pool) -> None:
    commits = GroupCommit(pool)
    lost = asyncio.Event()

    async def work(conn: asyncpg.Connection, n: int) -> int:
        await append(conn, f"S-{n}", 0, [new(n)])
        if n == 3:
            lost.set()
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return n

    async def one(n: int) -> int | str:
        try:
            return await commits.run(lambda conn: work(conn, n))
        except Exception as error:
            return type(error).__name__

    answers = await asyncio.gather(*(one(n) for n in range(8)))
    assert lost.is_set()
    failed = [n for n, answer in enumerate(answers) if not isinstance(answer, int)]
    assert 3 in failed
    async with pool.acquire() as conn:
        streams = {e.stream_id for e in await read_all(conn, 0, 100)}
    # what committed is exactly what was answered with success
    assert streams == {f"S-{n}" for n, answer in enumerate(answers) if isinstance(answer, int)}


async def test_each_work_runs_in_its_callers_context(pool: asyncpg.Pool) -> None:
    commits = GroupCommit(pool)

    async def work(conn: asyncpg.Connection) -> str:
        await conn.execute("SELECT 1")
        return CALLER.get()

    async def one(n: int) -> str:
        CALLER.set(f"caller-{n}")
        return await commits.run(work)

    assert await asyncio.gather(*(one(n) for n in range(20))) == [f"caller-{n}" for n in range(20)]


async def test_two_processes_taking_rows_in_opposite_orders_never_deadlock(
    pool: asyncpg.Pool, database_url: str, schema: str
) -> None:
    """Each batch takes the store's lock before its works' own locks: two group commits on one
    store (two processes) whose works take the same two rows in opposite orders, at once."""
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE counters (name text PRIMARY KEY, n int NOT NULL);"
            "INSERT INTO counters VALUES ('a', 0), ('b', 0)"
        )
    other_pool = await open_store(database_url, schema, max_size=4)
    try:
        first, second = GroupCommit(pool), GroupCommit(other_pool)

        def taking(*names: str) -> Work[None]:
            async def work(conn: asyncpg.Connection) -> None:
                for name in names:
                    await conn.execute("UPDATE counters SET n = n + 1 WHERE name = $1", name)
                    await asyncio.sleep(0.002)  # let the other process take its first row

            return work

        calls = [first.run(taking("a")) for _ in range(10)] + [first.run(taking("b", "a"))]
        calls += [second.run(taking("b")) for _ in range(10)] + [second.run(taking("a", "b"))]
        await asyncio.wait_for(asyncio.gather(*calls), 20)
        async with pool.acquire() as conn:
            counts = dict(await conn.fetch("SELECT name, n FROM counters"))
        assert counts == {"a": 12, "b": 12}
    finally:
        await other_pool.close()


async def test_how_long_the_oldest_queued_work_has_waited_is_known(pool: asyncpg.Pool) -> None:
    commits = GroupCommit(pool)
    release = asyncio.Event()

    async def slow(conn: asyncpg.Connection) -> None:
        await release.wait()

    async def quick(conn: asyncpg.Connection) -> None:
        await conn.execute("SELECT 1")

    assert commits.waited() == 0
    first = asyncio.create_task(commits.run(slow))
    await asyncio.sleep(0.05)  # the first batch has started: nothing queued
    assert commits.waited() == 0
    second = asyncio.create_task(commits.run(quick))
    await asyncio.sleep(0.2)
    assert 0.15 < commits.waited() < 2  # the second waits behind the first batch
    release.set()
    await asyncio.gather(first, second)
    assert commits.waited() == 0
