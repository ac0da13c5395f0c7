"""Group commit: the writes of concurrent callers to one store share one transaction.

A commit waits for its WAL flush, and the writes of a request hold their locks (its number's
sequence, its desk's counters) until they commit: one transaction per request makes a door take
one flush per request, one request at a time. `GroupCommit.run(work)` queues `work` (a
coroutine function given the connection); one task takes everything queued while the previous
transaction committed (at most `max_batch`), runs each work in one transaction and commits
once. Each caller gets its own answer: the work's result, or the exception it raised, that work
alone rolled back. Works rarely fail, so a batch first runs without savepoints (two round trips
a work saved); when one fails, the batch is rolled back and run again with each work behind its
own savepoint. A transaction that fails as a whole (the connection lost, the
commit refused) fails every work in it that had not failed on its own: none of them happened.

The transaction takes the store's group-commit lock first, so every lock a work takes after it
(counters, sequences, idempotency keys, streams) is taken while holding that one: two batches,
in one process or in two sharing the store, cannot deadlock on the order they take them in
(other writers of the store do not take it, and are not held up by it). There is
no waiting for company: a caller alone is committed at once, and batches grow only while the
store is busy.

Works of one kind can also run as one set (`run(work, together=...)`): consecutive works in a
batch given the same `together` function are handed to it at once, so that it does with a few
statements for all what each work does with its own (one insert of many rows instead of one per
work). It must answer exactly as the works would one by one; when it cannot (it raises), the
batch is rolled back and run again work by work, each behind its savepoint, as for a failure.

Each work runs in its caller's context (what it logs carries its caller's correlation id; a set
runs in the drain's). A caller that gives up (cancelled) before its work starts is skipped; once
started, its work runs to its commit like the others'.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import structlog

from desk_eventstore import tracecontext

log = structlog.get_logger(__name__)

T = TypeVar("T")
Work = Callable[[asyncpg.Connection], Coroutine[Any, Any, T]]
# given the works of one kind, in their order: each one's result, in the same order
Together = Callable[[asyncpg.Connection, list[Any]], Coroutine[Any, Any, list[Any]]]

MAX_BATCH = 64
# with hashtext(current_schema()): one batch at a time per store
GROUP_LOCK_CLASS = 7_301_005


@dataclass
class _Queued:
    work: Work[Any]
    together: Together | None = None
    context: contextvars.Context = field(default_factory=contextvars.copy_context)
    queued_at: float = field(default_factory=time.monotonic)
    answer: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """One store's group commit (see the module); one per process and pool."""

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = MAX_BATCH) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self._queue: deque[_Queued] = deque()
        self._task: asyncio.Task[None] | None = None
        self.transactions = 0  # committed, for the curious (benchmarks, tests)
        self.works = 0
        self.together = 0  # of those works, committed as part of a set

    def waited(self) -> float:
        """How long the oldest work still queued has waited, in seconds (0: none waits): the
        store's queue, which admission may watch."""
        return time.monotonic() - self._queue[0].queued_at if self._queue else 0.0

    async def run(self, work: Work[T], *, together: Together | None = None) -> T:
        """Run `work` in the next shared transaction; its result once that has committed.
        `together`: a function that runs this work with the others of its kind queued beside it
        (given the works themselves, it answers as each would: see the module)."""
        queued = _Queued(work, together)
        self._queue.append(queued)
        if self._task is None or self._task.done():
            # its own context: a work runs in its caller's (log context, trace), never in
            # another's; what the drain does itself is in no trace
            self._task = asyncio.create_task(self._drain(), context=tracecontext.quiet_context())
        result: T = await queued.answer
        return result

    async def _drain(self) -> None:
        """Commit batches until nothing is queued (cancelled: so is every work still here)."""
        batch: list[_Queued] = []
        try:
            while self._queue:
                batch = []
                while self._queue and len(batch) < self.max_batch:
                    queued = self._queue.popleft()
                    if not queued.answer.done():  # its caller gave up before it started
                        batch.append(queued)
                if batch:
                    await self._commit(batch)
        except asyncio.CancelledError:
            for queued in [*batch, *self._queue]:
                queued.answer.cancel()
            self._queue.clear()
            raise

    async def _commit(self, batch: list[_Queued]) -> None:
        together = 0
        try:
            try:
                together = await self._transaction(batch, savepoints=False)
            except _WorkFailed as failed:  # rolled back whole
                if len(batch) == 1:  # nothing else to keep: its own failure is its answer
                    batch[0].error = failed.error
                else:  # again, each work behind a savepoint, so the others are kept
                    await self._transaction(batch, savepoints=True)
        except Exception as error:  # the transaction failed as a whole: none of it happened
            log.warning("group_commit_failed", works=len(batch), error=type(error).__name__)
            _answer(batch, error)
            return
        self.transactions += 1
        self.works += len(batch)
        self.together += together
        _answer(batch, None)

    async def _transaction(self, batch: list[_Queued], *, savepoints: bool) -> int:
        """Run the batch in one transaction; without `savepoints` (two round trips a work
        saved: works rarely fail) the first failure rolls it all back (`_WorkFailed`), and
        works of one kind run as sets. Returns how many works ran as part of a set."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", GROUP_LOCK_CLASS
            )
            if savepoints:
                for queued in batch:
                    queued.result = queued.error = None
                    await _attempt(conn, queued)
                return 0
            kinds = _kinds(batch)
            for kind in kinds:
                try:
                    if len(kind) == 1:  # alone: as itself
                        kind[0].result = await _run(conn, kind[0])
                        continue
                    together = kind[0].together
                    assert together is not None
                    results = await together(conn, [queued.work for queued in kind])
                except Exception as error:
                    raise _WorkFailed(error) from error
                for queued, result in zip(kind, results, strict=True):
                    queued.result = result
            return sum(len(kind) for kind in kinds if len(kind) > 1)


class _WorkFailed(Exception):
    """A work failed in a transaction without savepoints: it is rolled back whole."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _kinds(batch: list[_Queued]) -> list[list[_Queued]]:
    """The batch cut into runs of consecutive works given the same `together` function (a
    work without one is a run of its own)."""
    runs: list[list[_Queued]] = []
    for queued in batch:
        if runs and queued.together is not None and runs[-1][0].together is queued.together:
            runs[-1].append(queued)
        else:
            runs.append([queued])
    return runs


async def _run(conn: asyncpg.Connection, queued: _Queued) -> Any:
    """The work's result, computed in its caller's context."""
    return await asyncio.create_task(queued.work(conn), context=queued.context)


async def _attempt(conn: asyncpg.Connection, queued: _Queued) -> None:
    """Run one work in a savepoint, keeping its result or the exception it raised."""
    savepoint = conn.transaction()
    await savepoint.start()
    try:
        result = await _run(conn, queued)
    except Exception as error:
        await savepoint.rollback()  # should this fail, the whole transaction fails
        queued.error = error
        return
    await savepoint.commit()
    queued.result = result


def _answer(batch: list[_Queued], failed: BaseException | None) -> None:
    """Hand each caller its own outcome; `failed`: the transaction's error for the works that
    did not fail on their own."""
    for queued in batch:
        if queued.answer.done():
            continue
        if queued.error is not None:
            queued.answer.set_exception(queued.error)
        elif failed is not None:
            queued.answer.set_exception(failed)
        else:
            queued.answer.set_result(queued.result)
