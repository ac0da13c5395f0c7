"""Rebuild workflow's read model (`tickets`) from its event store, then swap it in.

    uv run python -m workflow.entrypoints.rebuild        # DATABASE_URL, POLICIES_DIR as the service

Every stream is folded again from position 0 into a new table while the service keeps running,
with a progress bar on stderr. The swap takes the store's append lock, so no command can commit
between the last event read and the new table going live; the work under it is kept small: only
the events appended since the last read are folded there and only the requests they touched are
written again, then the new table replaces the old one in the same transaction. Each row holds
what the commands' `save_view` writes (`view_row`), its texts for search too (the description,
what people wrote since: `workflow.application.tickets.search_texts`).

Before the lock, the log is read in global order, `BATCH` events at a time without their
metadata (`read_all_payloads`), the next batch asked for while the current one is folded. A
request's row is copied into the new table (one COPY, on a second connection) as soon as the
last event its stream had when the rebuild started is folded (`stream_versions`): the server
computes the rows' search vectors, most of its work, while the log is still being folded. A
request changed after its row was copied is written again before the lock is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import asyncpg

from desk_contracts.base import Event
from desk_contracts.tickets import TicketCreated
from desk_eventstore.records import LoggedEvent
from desk_eventstore.store import APPEND_LOCK_CLASS, read_all_payloads, stream_versions
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve
from workflow.application.tickets import MAX_COMMENTS, VIEW_COLUMNS, search_texts, view_row

BATCH = 10_000  # events per read of the log
YIELD_EVERY = 1_000  # events folded between two chances for the next batch to come in


@dataclass
class Folded:
    """One request folded so far, with its texts for search (bounded as save_view keeps them)."""

    state: Ticket
    updated_at: datetime
    description: str = ""
    texts: list[str] = field(default_factory=list)
    written: int = 0  # characters of `texts`, with their separators

    def add(self, event: Event) -> None:
        """Keep what `event` holds for search, until `MAX_COMMENTS` characters are kept."""
        if isinstance(event, TicketCreated):
            self.description = event.description
        for text in search_texts([event]) if self.written < MAX_COMMENTS else ():
            self.texts.append(text)
            self.written += len(text) + 1

    def row(self) -> tuple[Any, ...]:
        """The request's row of the read model, as `save_view` writes a new one."""
        return view_row(self.state, self.updated_at, description=self.description, texts=self.texts)


@dataclass
class Fold:
    """Every request folded so far. Each one's row is made (`ready`, for the copy under way) as
    soon as the last version its stream had when the rebuild started (`ends`) is folded; one
    changed after its row was made, or that never reached such a version (opened since), is left
    for `unwritten`."""

    policies: dict[str, DeskPolicy]
    ends: dict[str, int]
    requests: dict[str, Folded] = field(default_factory=dict)
    ready: list[tuple[Any, ...]] = field(default_factory=list)
    handed: set[str] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)

    def apply(self, logged: LoggedEvent) -> None:
        """Fold one event into its request (events of streams that are not requests' are left)."""
        event = logged.to_event()
        folded = self.requests.get(logged.stream_id)
        if folded is None:
            if not isinstance(event, TicketCreated):
                return  # not a ticket stream
            policy = self.policies[event.policy_id]
            folded = Folded(Ticket.blank(policy, logged.stream_id), logged.recorded_at)
            self.requests[logged.stream_id] = folded
        folded.state = evolve(folded.state, event)
        folded.updated_at = logged.recorded_at
        folded.add(event)
        if logged.stream_id in self.handed:
            self.stale.add(logged.stream_id)
        elif logged.stream_version == self.ends.get(logged.stream_id):
            self.handed.add(logged.stream_id)
            self.ready.append(folded.row())

    def take(self) -> list[tuple[Any, ...]]:
        """The rows made ready since the last call."""
        ready, self.ready = self.ready, []
        return ready

    def unwritten(self) -> list[Folded]:
        """The requests whose rows are still to be written (see class), from now on handed."""
        left = self.stale | (self.requests.keys() - self.handed)
        self.handed |= left
        self.stale.clear()
        return [self.requests[ticket_id] for ticket_id in left]


class Copy:
    """One COPY of rows into the new table on its own connection, fed while the log is folded,
    so that the server computes their search vectors meanwhile. The fold waits while `BEHIND`
    rows wait for the server, so that memory stays bounded when the server is the slower."""

    BEHIND = 5_000

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.waiting: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
        self.task = asyncio.ensure_future(
            conn.copy_records_to_table(
                "tickets_rebuild", records=self._rows(), columns=VIEW_COLUMNS
            )
        )

    async def _rows(self) -> AsyncIterator[tuple[Any, ...]]:
        while (row := await self.waiting.get()) is not None:
            yield row

    async def hand(self, rows: list[tuple[Any, ...]]) -> None:
        """Hand `rows` over once fewer than `BEHIND` wait; raises the copy's error if it failed."""
        while True:
            if self.task.done():
                self.task.result()
            if self.waiting.qsize() < self.BEHIND:
                break
            await asyncio.sleep(0.01)
        for row in rows:
            self.waiting.put_nowait(row)

    async def close(self) -> None:
        """Wait until every row handed over is written."""
        self.waiting.put_nowait(None)
        await self.task


async def _fold(
    conn: asyncpg.Connection,
    fold: Fold,
    position: int,
    progress: Callable[[int], None],
    copy: Copy | None = None,
) -> int:
    """Fold every event after `position`, handing the rows made ready to `copy`; returns the last
    position read."""
    reading = asyncio.ensure_future(read_all_payloads(conn, position, BATCH))
    try:
        while batch := await reading:
            position = batch[-1].global_position
            reading = asyncio.ensure_future(read_all_payloads(conn, position, BATCH))
            for n, logged in enumerate(batch, 1):
                fold.apply(logged)
                if n % YIELD_EVERY == 0 or n == len(batch):
                    if copy is not None:
                        await copy.hand(fold.take())
                    await asyncio.sleep(0)  # the next batch comes in while this one is folded
            progress(position)
    finally:
        reading.cancel()  # when folding failed: the read under way is not wanted
    return position


async def _rewrite(conn: asyncpg.Connection, requests: Collection[Folded]) -> None:
    """Write the rows of `requests` into the new table, in place of any they had."""
    if requests:
        await conn.execute(
            "DELETE FROM tickets_rebuild WHERE ticket_id = ANY($1::text[])",
            [folded.state.ticket_id for folded in requests],
        )
        await conn.copy_records_to_table(
            "tickets_rebuild", records=[f.row() for f in requests], columns=VIEW_COLUMNS
        )


async def rebuild(
    url: str,
    schema: str,
    policies: dict[str, DeskPolicy],
    progress: Callable[[int], None],
    *,
    starting: Callable[[int], None] | None = None,
) -> int:
    """Rebuild the read model of the store in `schema` (see module); `progress` is told each
    position reached, `starting` the log's last position when the rebuild starts. Returns how
    many requests the new read model holds."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    writer = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        with _collector_paused():
            return await _rebuild(conn, writer, policies, progress, starting)
    finally:
        await asyncio.gather(conn.close(), writer.close())


async def _rebuild(
    conn: asyncpg.Connection,
    writer: asyncpg.Connection,
    policies: dict[str, DeskPolicy],
    progress: Callable[[int], None],
    starting: Callable[[int], None] | None,
) -> int:
    """`rebuild` on its two connections: `conn` reads and swaps, `writer` copies."""
    await conn.execute(
        "DROP TABLE IF EXISTS tickets_rebuild; "
        "CREATE TABLE tickets_rebuild (LIKE tickets INCLUDING ALL)"
    )
    if starting is not None:
        starting(await conn.fetchval("SELECT coalesce(max(global_position), 0) FROM events"))
    fold = Fold(policies, await stream_versions(conn))
    copy = Copy(writer)
    try:
        position = await _fold(conn, fold, 0, progress, copy)
    except BaseException:
        copy.task.cancel()
        raise
    await copy.close()
    await _rewrite(conn, fold.unwritten())
    async with conn.transaction():
        await conn.execute(  # no command commits until the swap is done
            "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", APPEND_LOCK_CLASS
        )
        await _fold(conn, fold, position, progress)
        await _rewrite(conn, fold.unwritten())
        await conn.execute("ALTER TABLE tickets RENAME TO tickets_replaced")
        await conn.execute("ALTER TABLE tickets_rebuild RENAME TO tickets")
        await conn.execute("DROP TABLE tickets_replaced")
    return len(fold.requests)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cycle collector paused: a fold makes millions of objects that live until its end and
    form no cycles, and the collector's passes over them took a sixth of its time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ProgressBar:
    """The rebuild's progress on `stream`: the position reached of the log's last position at
    the start, with the rate and the time left, redrawn at most `REDRAW_S` apart on a terminal
    (a line every `LINE_S` otherwise, e.g. in a job's log), and a final line."""

    REDRAW_S = 0.25
    LINE_S = 10.0
    WIDTH = 30

    def __init__(
        self, stream: TextIO = sys.stderr, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.drawn = self.started
        self.last = 0
        self.position = 0
        self.terminal = stream.isatty()

    def start(self, last: int) -> None:
        """The rebuild starts: `last` is the log's last position."""
        self.started = self.drawn = self.clock()
        self.last = last
        self.draw()

    def __call__(self, position: int) -> None:
        """The rebuild has folded the log up to `position`."""
        self.position = position
        if self.clock() - self.drawn >= (self.REDRAW_S if self.terminal else self.LINE_S):
            self.draw()

    def draw(self) -> None:
        """Draw the bar as it stands now."""
        now = self.clock()
        self.drawn = now
        total = max(self.last, self.position)  # events appended meanwhile go past the start's
        done = self.position / total if total else 1.0
        rate = self.position / max(now - self.started, 1e-6)
        left = _duration((total - self.position) / rate) if rate else "-:--"
        filled = round(done * self.WIDTH)
        print(
            "\r" if self.terminal else "",
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] "
            f"{done:6.1%}  {self.position:,} / {total:,}  {rate:,.0f} events/s  "
            f"ETA {left}",
            sep="",
            end="" if self.terminal else "\n",
            file=self.stream,
            flush=True,
        )

    def finish(self, requests: int) -> None:
        """The new read model, of `requests` requests, is live."""
        self.draw()
        seconds = self.clock() - self.started
        print(
            "\n" if self.terminal else "",
            f"read model rebuilt: {requests:,} requests from "
            f"{self.position:,} events in {_duration(seconds)} "
            f"({self.position / max(seconds, 1e-6):,.0f} events/s), live at "
            f"{datetime.now(UTC):%H:%M:%S} UTC",
            sep="",
            file=self.stream,
            flush=True,
        )


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def main() -> None:
    from desk_policies.loader import load_policies

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schema", default="workflow")
    args = parser.parse_args()
    extra = [Path(os.environ["POLICIES_DIR"])] if os.environ.get("POLICIES_DIR") else []
    bar = ProgressBar()
    count = asyncio.run(
        rebuild(
            os.environ["DATABASE_URL"], args.schema, load_policies(*extra), bar, starting=bar.start
        )
    )
    bar.finish(count)


if __name__ == "__main__":
    main()
