"""Benchmark (not a test): rebuilding workflow's read model from its log, in events per second,
beside raw reads of the same rows measured in the same run as the ratio's baseline.

    uv run python bench/rebuild.py [--events 100000] [--repeat 3]

Against the PostgreSQL server of `.state/infra.env` (DATABASE_URL), in a fresh schema migrated
as the service's (the event store's and workflow's migrations):

1. fill: about `--events` events of `cloud-partner` requests, each a `TicketCreated` then 1 to 7
   of the commands an agent and the requester give (assign, start, comments, information
   requested and answered, resolve, confirm), decided and folded by the real domain code
   (`decide`, `evolve`), each with the request's state in its metadata as `execute` writes it.
   One history per length is made that way; the requests are copies of them with their own ids
   and keys, interleaved in the log by blocks of 500 (event 1 of each, then event 2...), and
   written with one COPY;
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
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg
import structlog
from notify import infra_env  # bench/notify.py: the same servers, found alike

from desk_contracts.base import Event
from desk_contracts.state import STATE_METADATA
from desk_contracts.tickets import Channel, TicketCreated
from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_eventstore.records import NewEvent
from desk_eventstore.store import APPEND_LOCK_CLASS, encoded
from desk_policies.loader import load_policies
from desk_policies.requests import Ticket, evolve, published
from workflow.application.tickets import open_stream
from workflow.domain.commands import (
    Actor,
    AddComment,
    Assign,
    Command,
    ConfirmResolution,
    RequestInformation,
    Resolve,
    StartWork,
)
from workflow.domain.decide import decide
from workflow.domain.rules import Rejection
from workflow.entrypoints.rebuild import rebuild

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Actor(id="paul@partner.example", role="agent")
ANNE = Actor(id="anne@acme.example", role="requester", organisation_id="acme")
COMMANDS: list[Command] = [
    Assign(actor=AGENT, assignee_id="paul@partner.example"),
    StartWork(actor=AGENT),
    AddComment(actor=AGENT, body="Les journaux montrent des requêtes lentes", public=False),
    RequestInformation(actor=AGENT, comment="Quelle version de Jira utilisez-vous ?"),
    AddComment(actor=ANNE, body="Jira 9.12.4, hébergé chez nous", public=True),
    Resolve(actor=AGENT, resolution_code="done", comment="Index reconstruit, cache vidé"),
    ConfirmResolution(actor=ANNE),
]
TEMPLATE_ID = str(uuid.UUID(int=0))
TEMPLATE_KEY = "SUP-99999999"
BLOCK = 500  # requests interleaved in the log
READ_BATCH = 2000
EVENT_COLUMNS = (
    "stream_id, stream_version, event_id, event_type, schema_version, payload, metadata, "
    "recorded_at, stream_bytes"
)
# the store's append lock, SHARE as appends take it (they take it again, already held)
LOCK = "SELECT pg_advisory_xact_lock_shared($1, hashtext(current_schema()))"
TRY_LOCK = "SELECT pg_try_advisory_xact_lock_shared($1, hashtext(current_schema()))"
READ = (
    "SELECT global_position, stream_id, stream_version, event_id, event_type, schema_version, "
    "payload, metadata, recorded_at FROM events"
)


# ---------------------------------------------------------------------------- the log


def opening(ticket_id: str, key: str, at: datetime) -> TicketCreated:
    """The `TicketCreated` of one request, as intake writes it."""
    return TicketCreated(
        ticket_id=ticket_id,
        occurred_at=at,
        key=key,
        policy_id="cloud-partner",
        request_type="support",
        priority="high",
        subject="Jira est très lent depuis la mise à jour",
        description="Depuis la mise à jour de samedi, chaque page met dix secondes à s'afficher.",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )


def history(length: int) -> list[tuple[str, str, str]]:
    """The events (type, payload, metadata as JSON) of the template request after `length`
    commands, decided and folded by the domain code, with the state `execute` stores."""
    created = opening(TEMPLATE_ID, TEMPLATE_KEY, NOW)
    state = evolve(Ticket.blank(POLICIES["cloud-partner"], TEMPLATE_ID), created)
    events: list[tuple[Event, Ticket]] = [(created, state)]
    for minutes, command in enumerate(COMMANDS[:length], 1):
        decision = decide(state, command, NOW + timedelta(minutes=minutes))
        if isinstance(decision, Rejection):
            raise AssertionError(f"{command}: {decision}")
        for event in decision:
            state = evolve(state, event)
            events.append((event, state))
    written = []
    for event, after in events:
        metadata = {
            "correlationid": TEMPLATE_ID,
            STATE_METADATA: published(after).model_dump(mode="json"),
        }
        payload, meta = encoded(NewEvent.from_event(event, metadata=metadata))
        written.append((event.event_type, payload, meta))
    return written


def requests_for(events: int) -> list[list[tuple[str, str, str]]]:
    """Template histories, one per request, until about `events` events in all."""
    templates = [history(length) for length in range(1, len(COMMANDS) + 1)]
    chosen: list[list[tuple[str, str, str]]] = []
    total = 0
    while total < events:
        template = templates[len(chosen) % len(templates)]
        chosen.append(template)
        total += len(template)
    return chosen


def log_rows(requests: list[list[tuple[str, str, str]]]) -> Iterator[tuple[Any, ...]]:
    """The rows of the events table: each request its own id and key, interleaved by block."""
    recorded = NOW
    for start in range(0, len(requests), BLOCK):
        block = list(enumerate(requests[start : start + BLOCK], start))
        sizes = [0] * len(block)
        for version in range(1, max(len(events) for _, events in block) + 1):
            for slot, (n, events) in enumerate(block):
                if version > len(events):
                    continue
                ticket_id = str(uuid.UUID(int=n + 1))
                key = f"SUP-{100_000 + n}"
                event_type, payload, metadata = events[version - 1]
                payload = payload.replace(TEMPLATE_ID, ticket_id).replace(TEMPLATE_KEY, key)
                metadata = metadata.replace(TEMPLATE_ID, ticket_id).replace(TEMPLATE_KEY, key)
                sizes[slot] += len(payload.encode()) + len(metadata.encode())
                recorded += timedelta(milliseconds=3)
                yield (
                    ticket_id,
                    version,
                    uuid.uuid4(),
                    event_type,
                    1,
                    payload,
                    metadata,
                    recorded,
                    sizes[slot],
                )


async def fill(conn: asyncpg.Connection, schema: str, events: int) -> tuple[int, int]:
    """Write the log (see module); returns how many events and requests it holds."""
    requests = requests_for(events)
    rows = list(log_rows(requests))
    await conn.copy_records_to_table(
        "events", records=rows, columns=EVENT_COLUMNS.split(", "), schema_name=schema
    )
    await conn.execute("ANALYZE events")
    return len(rows), len(requests)


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
