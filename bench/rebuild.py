"""Benchmark (not a test): rebuilding workflow's read model from its log, in events per second,
beside raw reads of the same rows measured in the same run as the ratio's baseline.

    uv run python bench/rebuild.py [--events 100000] [--repeat 3]

Against the PostgreSQL server of `.state/infra.env` (DATABASE_URL), in a fresh schema migrated
as the service's (the event store's and workflow's migrations):

1. fill: about `--events` events of `cloud-partner` requests (`bench/histories.py`: each a
   `TicketCreated` then 1 to 7 of the commands an agent and the requester give, decided and
   folded by the real domain code, each with the request's state in its metadata as `execute`
   writes it; copies of one history per length with their own ids and keys, interleaved in the
   log by blocks of 500), written with one COPY;
2. baselines: the same rows read raw, in global order, (a) by keyset reads of 2000 rows (the
   rebuild's read size on `main`), the JSON left as text, and (b) by one COPY out of the query;
3. the rebuild (`workflow.entrypoints.rebuild.rebuild`, progress not shown) while a writer
   opens a new request every 20 ms as the service does (`open_stream`: the append, under the
   store's append lock, and its row, in one transaction), trying the append lock first on its
   own: the longest it then waited for it, held by the rebuild, tells how long commands were
   held by the swap (the slowest whole opening is printed too: on a busy machine it also waits
   for the CPU). After
   each round the read model must hold every request, those opened during the rebuild
   included.

Each case runs `--repeat` times; the median rate and the min-max of the rounds are printed,
then the ratios of the rebuild to the baselines. The schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import asyncpg
import structlog
from histories import POLICIES, copy_log, opening, requests_for
from notify import infra_env  # bench/notify.py: the same servers, found alike

from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_eventstore.store import APPEND_LOCK_CLASS
from workflow.application.tickets import open_stream
from workflow.entrypoints.rebuild import rebuild

READ_BATCH = 2000
# the store's append lock, SHARE as appends take it (they take it again, already held)
LOCK = "SELECT pg_advisory_xact_lock_shared($1, hashtext(current_schema()))"
TRY_LOCK = "SELECT pg_try_advisory_xact_lock_shared($1, hashtext(current_schema()))"
READ = (
    "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, "
    "payload, metadata, recorded_at FROM events"
)


# ---------------------------------------------------------------------------- the log


async def fill(conn: asyncpg.Connection, schema: str, events: int) -> tuple[int, int]:
    """Write the log (see module); returns how many events and requests it holds."""
    requests = requests_for(events)
    written = await copy_log(conn, schema, requests)
    await conn.execute("ANALYZE events")
    return written, len(requests)


# ---------------------------------------------------------------------------- rounds


async def keyset_round(conn: asyncpg.Connection) -> int:
    """Read every event in global order, `READ_BATCH` rows at a time; returns how many."""
    count, position = 0, 0
    while rows := await conn.fetch(
        f"{READ} WHERE global_position > $1 ORDER BY global_position LIMIT $2",
        position,
        READ_BATCH,
    ):
        count += len(rows)
        position = rows[-1]["global_position"]
    return count


async def copy_round(conn: asyncpg.Connection) -> int:
    """Copy every event out in global order to nowhere; returns the bytes received."""
    received = 0

    async def discard(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)

    await conn.copy_from_query(f"{READ} ORDER BY global_position", output=discard)
    return received


async def rebuild_round(url: str, schema: str, opened: list[int]) -> tuple[int, float, float]:
    """The rebuild while a writer opens a request every 20 ms; returns the requests rebuilt,
    the longest the writer waited for the append lock and the slowest opening (seconds)."""
    writer = await asyncpg.connect(url, server_settings={"search_path": schema})
    waited = slowest = 0.0
    done = asyncio.Event()

    async def open_requests() -> None:
        nonlocal waited, slowest
        while not done.is_set():
            n = 10_000_000 + opened[0]
            created = opening(str(uuid.UUID(int=n)), f"SUP-{n}", datetime.now(UTC))
            started = time.perf_counter()
            async with writer.transaction():
                if not await writer.fetchval(TRY_LOCK, APPEND_LOCK_CLASS):  # the rebuild has it
                    asked = time.perf_counter()
                    await writer.execute(LOCK, APPEND_LOCK_CLASS)
                    waited = max(waited, time.perf_counter() - asked)
                await open_stream(writer, POLICIES, created, str(uuid.uuid4()), None)
            slowest = max(slowest, time.perf_counter() - started)
            opened[0] += 1
            await asyncio.sleep(0.02)

    task = asyncio.create_task(open_requests())
    try:
        count = await rebuild(url, schema, POLICIES, lambda _: None)
    finally:
        done.set()
        await task
        await writer.close()
    return count, waited, slowest


async def timed(repeat: int, round_: Callable[[], Awaitable[Any]]) -> tuple[list[float], Any]:
    """Seconds of each of `repeat` rounds, and the last round's result."""
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await round_()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def line(label: str, count: int, seconds: list[float], detail: str = "") -> float:
    """Print the median rate of `count` events over the rounds; returns it."""
    rates = [count / s for s in seconds]
    median = statistics.median(rates)
    print(
        f"   {label:<44} {median:>10,.0f} events/s  (rounds {min(rates):,.0f}-{max(rates):,.0f})"
        f"{'  ' + detail if detail else ''}",
        flush=True,
    )
    return median


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the log (about)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case (median shown)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    url = infra_env().get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is needed: source .state/infra.env", file=sys.stderr)
        return 2
    schema = f"bench_rebuild_{secrets.token_hex(3)}"
    pool = await open_store(
        url, schema, migrations_in("workflow", resources.files("workflow") / "migrations")
    )
    await pool.close()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        pg_version = (await conn.fetchval("SHOW server_version")).split()[0]
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        started = time.perf_counter()
        events, requests = await fill(conn, schema, args.events)
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('events'))")
        print(
            f"rebuild benchmark {datetime.now(UTC):%Y-%m-%d %H:%M}Z · {os.cpu_count()} cores · "
            f"Python {platform.python_version()} · PostgreSQL {pg_version} · load {load} · "
            f"{events:,} events of {requests:,} requests ({size}, written in "
            f"{time.perf_counter() - started:.1f} s) · --repeat {args.repeat} · schema {schema}",
            flush=True,
        )
        print("1. baselines: the same rows read raw", flush=True)
        seconds, _ = await timed(args.repeat, lambda: keyset_round(conn))
        keyset = line(f"keyset reads of {READ_BATCH} rows", events, seconds)
        seconds, received = await timed(args.repeat, lambda: copy_round(conn))
        copied = line("COPY out", events, seconds, f"{received / 1e6:,.0f} MB")
        print("2. the rebuild (a request opened every 20 ms meanwhile)", flush=True)
        opened = [0]
        waits: list[float] = []
        seconds = []
        for _ in range(args.repeat):
            before = opened[0]
            began = time.perf_counter()
            count, waited, slowest = await rebuild_round(url, schema, opened)
            seconds.append(time.perf_counter() - began)
            waits.append(waited)
            expected = requests + opened[0]  # those opened after the swap were written by it
            held = await conn.fetchval("SELECT count(*) FROM tickets")
            if held != expected or not requests <= count <= expected:
                raise AssertionError(f"{count} rebuilt, {held} held, {expected} expected")
            print(
                f"   round: {opened[0] - before} requests opened meanwhile, the append lock "
                f"waited for {waited * 1000:,.0f} ms at most, the slowest opening "
                f"{slowest * 1000:,.0f} ms",
                flush=True,
            )
        rebuilt = line(
            "rebuild",
            events,
            seconds,
            f"commands held {statistics.median(waits) * 1000:,.0f} ms at most (median)",
        )
        print("3. ratios", flush=True)
        print(f"   rebuild / keyset reads   {rebuilt / keyset:.2f}x", flush=True)
        print(f"   rebuild / COPY out       {rebuilt / copied:.2f}x", flush=True)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
