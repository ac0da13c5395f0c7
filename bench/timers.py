"""Benchmark (not a test): the sla service's durable timers, 1,000,000 armed, the due ones fired
by one and by two replicas (processes), in timers per second and lateness, beside raw
`FOR UPDATE SKIP LOCKED` + `UPDATE` batches of the same rows measured in the same run as the
ratio's baseline.

    uv run python bench/timers.py [--armed 1000000] [--rate 1000] [--seconds 40]
                                  [--backlog 20000] [--replicas 1,2]

Against the PostgreSQL server of `.state/infra.env` (DATABASE_URL), in a fresh schema migrated
as the service's (the event store's and sla's migrations):

1. the due query (`fire_due`'s, 100 rows, in a transaction rolled back) timed on an almost
   empty table (the 1,000 due rows it takes from), then again once `--armed` timers lie in the
   future beside them, and the idle probe (nothing due) on both;
2. fill: `--armed` timers spread over the next 30 days, written by COPY (then vacuumed and
   checkpointed: a table at rest, not one just loaded): 30 % SLA
   warnings, 30 % SLA breaches, 25 % reminders, 15 % auto-close; one SLA request in ten has the
   state and steps sla keeps of it (the rest of the requests are not known yet: the tables hold
   about what a desk of that size keeps);
3. for each `--replicas` count, two cases, each first with the raw baseline then with the
   service's own loop (`sla.bootstrap.fire_timers`: `fire_due` run by the runtime's `repeat`
   as the service runs it), each replica a process of its own with its own pool (one
   connection) and the service's logging (JSON at info, to /dev/null), started before the
   case's rows are written:
   a. steady: `--seconds` seconds of timers falling due at `--rate` per second, a few seconds
      after the replicas start, with the 1,000,000 others armed in the future. The mix is that
      of the fill; each SLA request is of a desk like erp-vendor on the 24/7 calendar, critical,
      created 45 (a warning) or 60 (a breach) minutes before its timer, with 1 to 4 events
      (its creation, the requester's comments), its state and steps as sla keeps them, its
      earlier response warning already fired for a breach; one SLA timer in ten has no state
      (sla does not know the request: stale, marked and skipped). The lateness of a timer is
      the instant the batch that fired it committed (the end of the call of `fire_due` that
      took it: its `fired_at` is that call's `now`) minus its `fire_at`;
   b. backlog: `--backlog` timers already due (the service back after downtime) committed at
      once while the replicas idle: fired per second from that commit to the last batch's.
   Checks: every timer of the case handled once (the replicas' counts add up to the rows, each
   row marked), exactly one event appended per firing timer id, none for a stale one. CPU per
   timer: the replicas' processes and their PostgreSQL backends (from /proc), over the timers.

The relay (publishing the appended events to Kafka) does not run: its cost is measured by
bench/spine.py. The schema is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from notify import infra_env  # bench/notify.py: the same servers, found alike

import sla.bootstrap
from desk_contracts.state import RequestState
from desk_contracts.tickets import Channel, CommentAdded, TicketCreated
from desk_eventstore.db import keep_session, open_store, session_settings
from desk_eventstore.migrate import migrations_in
from desk_platform.logging import configure_logging
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve, published
from sla.application.timers import Desks
from sla.bootstrap import TICK_SECONDS
from sla.domain.timeline import Step, Timeline
from sla.domain.timers import Timer, TimerKind, plan_timers

HERE = Path(__file__).resolve()
DESK = "erp-always"  # erp-vendor's rules on the 24/7 calendar: clocks that run at any hour
PROBE_ROWS = 1_000
PROBE_ROUNDS = 200
BATCH = 100  # the batch size of the baseline: fire_due's
PREPARE_SECONDS = [0.0005]  # seconds to make and write a due timer's rows, as last measured
TIMER_COLUMNS = [
    "timer_id",
    "ticket_id",
    "kind",
    "occurrence",
    "fire_at",
    "armed_version",
    "clock",
    "days_waiting",
    "fired_at",
]
DUE_QUERY = """SELECT * FROM timers WHERE fired_at IS NULL AND fire_at <= $1
               ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED"""
RAW_TAKE = """SELECT timer_id FROM timers WHERE fired_at IS NULL AND fire_at <= $1
              ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED"""
RAW_MARK = "UPDATE timers SET fired_at = $2 WHERE timer_id = ANY($1::uuid[])"
# the kind of each of 20 consecutive timers: 30 % warnings, 30 % breaches, 25 % reminders,
# 15 % auto-close
MIX = [TimerKind.SLA_WARNING] * 6 + [TimerKind.SLA_BREACH] * 6 + [TimerKind.REMINDER] * 5
MIX += [TimerKind.AUTO_CLOSE] * 3
MIX = [MIX[(i * 7) % 20] for i in range(20)]  # interleaved


def desks() -> Desks:
    """The shipped desks and `DESK`, erp-vendor on the 24/7 calendar."""
    policies = load_policies()
    erp = policies["erp-vendor"]
    policies[DESK] = erp.model_copy(
        update={"id": DESK, "sla": erp.sla.model_copy(update={"calendar": "always"})}
    )
    return Desks(policies, shipped_calendars())


# ---------------------------------------------------------------------------- rows


@dataclass
class Rows:
    """What a case writes: timers, and the states, steps and fired occurrences of its requests;
    which timers must append an event and which are stale."""

    timers: list[tuple[Any, ...]] = field(default_factory=list)
    states: list[tuple[Any, ...]] = field(default_factory=list)
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    occurrences: list[tuple[Any, ...]] = field(default_factory=list)
    firing: list[uuid.UUID] = field(default_factory=list)
    stale: list[uuid.UUID] = field(default_factory=list)


def timer_row(timer: Timer, fired_at: datetime | None = None) -> tuple[Any, ...]:
    return (
        timer.command_id,
        timer.ticket_id,
        timer.kind.value,
        timer.occurrence,
        timer.fire_at,
        timer.armed_version,
        timer.clock,
        timer.days_waiting,
        fired_at,
    )


def waiting_timer(ticket_id: str, kind: TimerKind, fire_at: datetime) -> Timer:
    """A reminder or an auto-close of a request waiting for its customer (armed at version 3)."""
    days = 10 if kind is TimerKind.REMINDER else 20
    return Timer(ticket_id, kind, fire_at, 3, f"{kind.value}:{days}d:v2", days_waiting=days)


def sla_request(
    policy: DeskPolicy, ticket_id: str, created_at: datetime, events: int
) -> list[RequestState]:
    """The states a critical request publishes: its creation, then `events - 1` comments of its
    requester a minute apart (the response clock keeps running)."""
    opened = TicketCreated(
        ticket_id=ticket_id,
        occurred_at=created_at,
        key=f"SPT-{uuid.UUID(ticket_id).int % 10**8}",
        policy_id=policy.id,
        request_type="support",
        priority="critical",
        subject="Paie bloquée",
        description="SwissDec refuse la transmission",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )
    state = evolve(Ticket.blank(policy, ticket_id), opened)
    states = [published(state)]
    for minute in range(1, events):
        comment = CommentAdded(
            ticket_id=ticket_id,
            occurred_at=created_at + timedelta(minutes=minute),
            actor_id="anne@acme.example",
            actor_role="requester",
            body="Toujours bloqué",
            public=True,
        )
        state = evolve(state, comment)
        states.append(published(state))
    return states


def add_sla_request(
    rows: Rows, desks: Desks, ticket_id: str, created_at: datetime, events: int, due: datetime
) -> None:
    """The request's states, steps and every timer it arms; those before `due` fired."""
    policy, calendar = desks.of(DESK)
    states = sla_request(policy, ticket_id, created_at, events)
    timeline = Timeline.of(states)
    last = states[-1]
    for state in states:
        step = Step.of(state)
        rows.steps.append((ticket_id, step.version, step.at, step.status, step.priority))
    rows.states.append((ticket_id, last.version, last.model_dump_json()))
    for timer in plan_timers(timeline, last, policy, calendar, step.at, fired=set()):
        if timer.fire_at < due:
            rows.timers.append(timer_row(timer, timer.fire_at))
            rows.occurrences.append((ticket_id, timer.occurrence))
        else:
            rows.timers.append(timer_row(timer))


def due_rows(desks: Desks, start: datetime, count: int, spacing: timedelta) -> Rows:
    """`count` timers falling due from `start`, one every `spacing`, of the mix (see module)."""
    rows = Rows()
    for n in range(count):
        due = start + n * spacing
        kind = MIX[n % len(MIX)]
        ticket_id = str(uuid.uuid4())
        if kind in (TimerKind.REMINDER, TimerKind.AUTO_CLOSE):
            timer = waiting_timer(ticket_id, kind, due)
            rows.timers.append(timer_row(timer))
            rows.firing.append(timer.command_id)
            continue
        clock = "response"
        occurrence = f"{clock}:{'warning' if kind is TimerKind.SLA_WARNING else 'breach'}:critical"
        if n % 10 == 3:  # sla does not know the request: stale
            timer = Timer(ticket_id, kind, due, 1, occurrence, clock)
            rows.timers.append(timer_row(timer))
            rows.stale.append(timer.command_id)
            continue
        before = timedelta(minutes=45 if kind is TimerKind.SLA_WARNING else 60)
        events = 1 + n % 4
        # the comments shift the arming instant, not the clock: it runs from the creation
        add_sla_request(rows, desks, ticket_id, due - before, events, due)
        version = events
        rows.firing.append(Timer(ticket_id, kind, due, version, occurrence, clock).command_id)
    return rows


def future_rows(armed: int, start: datetime, template: RequestState) -> Iterator[Rows]:
    """`armed` timers over the 30 days after `start`, in blocks; one SLA request in ten known
    (its state the template's, its own id)."""
    spacing = timedelta(days=30) / armed
    template_json = template.model_dump_json()
    block = 50_000
    for first in range(0, armed, block):
        rows = Rows()
        for n in range(first, min(first + block, armed)):
            due = start + n * spacing
            kind = MIX[n % len(MIX)]
            ticket_id = str(uuid.UUID(int=n + 1))
            if kind in (TimerKind.REMINDER, TimerKind.AUTO_CLOSE):
                rows.timers.append(timer_row(waiting_timer(ticket_id, kind, due)))
                continue
            label = "warning" if kind is TimerKind.SLA_WARNING else "breach"
            timer = Timer(ticket_id, kind, due, 1, f"resolution:{label}:medium", "resolution")
            rows.timers.append(timer_row(timer))
            if n % 10 == 0:
                state = template_json.replace(template.ticket_id, ticket_id)
                rows.states.append((ticket_id, 1, state))
                rows.steps.append((ticket_id, 1, start, template.status, "medium"))
        yield rows


async def write(conn: asyncpg.Connection, schema: str, rows: Rows) -> None:
    """COPY the rows in one transaction: they are seen at once."""
    async with conn.transaction():
        for table, records, columns in (
            ("request_states", rows.states, ["ticket_id", "version", "state"]),
            ("request_steps", rows.steps, ["ticket_id", "version", "at", "status", "priority"]),
            ("fired_occurrences", rows.occurrences, ["ticket_id", "occurrence"]),
            ("timers", rows.timers, TIMER_COLUMNS),
        ):
            if records:
                await conn.copy_records_to_table(
                    table, records=records, columns=columns, schema_name=schema
                )


# ---------------------------------------------------------------------------- the due query


async def due_query_ms(conn: asyncpg.Connection, now: datetime) -> tuple[float, float]:
    """Median milliseconds of the due query taking 100 rows, and of it finding none."""
    taking, idle = [], []
    for _ in range(PROBE_ROUNDS):
        transaction = conn.transaction()
        await transaction.start()
        started = time.perf_counter()
        rows = await conn.fetch(DUE_QUERY, now, BATCH)
        taking.append(time.perf_counter() - started)
        await transaction.rollback()
        assert len(rows) == BATCH
        started = time.perf_counter()
        await conn.fetch(DUE_QUERY, now - timedelta(days=3650), BATCH)
        idle.append(time.perf_counter() - started)
    return statistics.median(taking) * 1000, statistics.median(idle) * 1000


# ---------------------------------------------------------------------------- replicas


def cpu_of_backend(pid: int) -> float:
    """CPU seconds a PostgreSQL backend (on this machine) has used; 0 when it is elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def raw_batch(pool: asyncpg.Pool, now: datetime) -> int:
    """The baseline: take due rows as fire_due does and mark them, nothing else."""
    async with pool.acquire() as conn, conn.transaction():
        ids = [row["timer_id"] for row in await conn.fetch(RAW_TAKE, now, BATCH)]
        if ids:
            await conn.execute(RAW_MARK, ids, now)
        return len(ids)


async def replica(url: str, schema: str, mode: str) -> None:
    """One replica: the service's timer loop (`fire_timers`, its `fire_due` replaced by the raw
    batch for the baseline) until told to stop on stdin; prints each call's `now`, end and
    count, and the CPU used, as JSON."""
    reports = os.fdopen(os.dup(1), "w")  # the service's logs go to /dev/null, as it writes them
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    configure_logging("sla", "json", "info")
    # one connection kept (asyncpg replaces one after 50,000 queries): its backend's CPU is read
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=1,
        max_queries=10**9,
        server_settings=session_settings(schema),
        reset=keep_session,  # as the service's pool (open_store)
    )
    assert pool is not None
    async with pool.acquire() as conn:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
    calls: list[tuple[float, float, int]] = []
    service_fire_due = vars(sla.bootstrap)["fire_due"]

    async def logged(pool: asyncpg.Pool, desks: Desks, now: datetime) -> int:
        if mode == "raw":
            handled = await raw_batch(pool, now)
        else:
            handled = await service_fire_due(pool, desks, now)
        if handled:
            calls.append((now.timestamp(), time.time(), handled))
        return handled

    vars(sla.bootstrap)["fire_due"] = logged  # what the service's loop calls
    runtime = ServiceRuntime("sla", Settings())
    sla.bootstrap.fire_timers(runtime, pool, desks(), lambda: datetime.now(UTC))
    stop = asyncio.Event()
    cpu, backend_cpu = time.process_time(), cpu_of_backend(backend)
    loops = [asyncio.create_task(loop(stop)) for loop in runtime.loops]
    print("ready", file=reports, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    stop.set()
    await asyncio.gather(*loops)
    report = {
        "calls": calls,
        "cpu": time.process_time() - cpu,
        "backend_cpu": cpu_of_backend(backend) - backend_cpu,
    }
    print(json.dumps(report), file=reports, flush=True)
    await pool.close()


class Replicas:
    """`count` replica processes of `mode` (raw or service)."""

    def __init__(self, url: str, schema: str, mode: str, count: int) -> None:
        self.processes = [
            subprocess.Popen(
                [sys.executable, str(HERE), "--replica", mode, "--schema", schema],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "DATABASE_URL": url},
            )
            for _ in range(count)
        ]

    def ready(self) -> None:
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"replica did not start: {line!r}")

    def stop(self) -> list[dict[str, Any]]:
        reports = []
        for process in self.processes:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write("stop\n")
            process.stdin.flush()
        for process in self.processes:
            assert process.stdout is not None
            reports.append(json.loads(process.stdout.readline()))
            process.wait()
        return reports


# ---------------------------------------------------------------------------- cases


@dataclass
class Outcome:
    timers: int
    seconds: float  # from the first instant due (steady) or the commit (backlog) to the last
    lateness: list[float]
    cpu: float
    backend_cpu: float

    @property
    def rate(self) -> float:
        return self.timers / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.lateness)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def unfired(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM timers WHERE timer_id = ANY($1::uuid[]) AND fired_at IS NULL",
            ids,
        )
    )


async def check(
    conn: asyncpg.Connection, mode: str, rows: Rows, reports: list[dict[str, Any]]
) -> None:
    """Every timer of the case handled once; one event per firing timer, none for stale ones."""
    ids = rows.firing + rows.stale
    handled = sum(call[2] for report in reports for call in report["calls"])
    left = await unfired(conn, ids)
    if handled != len(ids) or left:
        raise AssertionError(f"{handled} handled, {left} left unfired, of {len(ids)} timers")
    if mode == "raw":
        return
    counts = dict(
        await conn.fetch(
            """SELECT event_id, count(*) FROM events WHERE event_id = ANY($1::uuid[])
               GROUP BY event_id""",
            rows.firing + rows.stale,
        )
    )
    missing = [i for i in rows.firing if counts.get(i) != 1]
    stale = [i for i in rows.stale if i in counts]
    if missing or stale:
        raise AssertionError(f"{len(missing)} firing timers without one event, {len(stale)} stale")


async def lateness(
    conn: asyncpg.Connection, rows: Rows, reports: list[dict[str, Any]]
) -> list[float]:
    """Per timer of the case: the end of the call that fired it (its `fired_at` is the call's
    `now`) minus its fire_at."""
    ended = {round(call[0], 6): call[1] for report in reports for call in report["calls"]}
    ids = rows.firing + rows.stale
    marks = await conn.fetch(
        """SELECT extract(epoch FROM fire_at)::float8, extract(epoch FROM fired_at)::float8
           FROM timers WHERE timer_id = ANY($1::uuid[])""",
        ids,
    )
    return [ended[round(fired_at, 6)] - fire_at for fire_at, fired_at in marks]


async def steady(
    conn: asyncpg.Connection, url: str, schema: str, mode: str, count: int, args: Any
) -> Outcome:
    """Case a (see module)."""
    the_desks = desks()
    total = args.rate * args.seconds
    replicas = Replicas(url, schema, mode, count)
    replicas.ready()  # idle until the rows are written and the first is due
    # late enough that the rows are written before the first is due
    began = time.perf_counter()
    start = datetime.now(UTC) + timedelta(seconds=5 + 2 * total * PREPARE_SECONDS[0])
    rows = due_rows(the_desks, start, total, timedelta(seconds=1) / args.rate)
    await write(conn, schema, rows)
    PREPARE_SECONDS[0] = (time.perf_counter() - began) / total
    if datetime.now(UTC) > start:
        print(f"   (the rows were written {datetime.now(UTC) - start} late)", flush=True)
    ids = rows.firing + rows.stale
    deadline = start + timedelta(seconds=args.seconds + 600)  # a slow firer catches up
    while datetime.now(UTC) < deadline:
        await asyncio.sleep(1)
        if datetime.now(UTC) > start + timedelta(seconds=args.seconds) and not await unfired(
            conn, ids
        ):
            break
    reports = replicas.stop()
    await check(conn, mode, rows, reports)
    late = await lateness(conn, rows, reports)
    last = max(call[1] for report in reports for call in report["calls"])
    return Outcome(
        len(ids),
        last - start.timestamp(),
        late,
        sum(r["cpu"] for r in reports),
        sum(r["backend_cpu"] for r in reports),
    )


async def backlog(
    conn: asyncpg.Connection, url: str, schema: str, mode: str, count: int, args: Any
) -> Outcome:
    """Case b (see module)."""
    the_desks = desks()
    due = datetime.now(UTC) - timedelta(seconds=10)
    rows = due_rows(the_desks, due, args.backlog, timedelta(seconds=10) / args.backlog)
    replicas = Replicas(url, schema, mode, count)
    replicas.ready()
    await write(conn, schema, rows)
    committed = time.time()
    ids = rows.firing + rows.stale
    while await unfired(conn, ids):
        await asyncio.sleep(0.2)
    reports = replicas.stop()
    await check(conn, mode, rows, reports)
    last = max(call[1] for report in reports for call in report["calls"])
    return Outcome(
        len(ids),
        last - committed,
        [],
        sum(r["cpu"] for r in reports),
        sum(r["backend_cpu"] for r in reports),
    )


def show(label: str, outcome: Outcome) -> None:
    cpu = (outcome.cpu + outcome.backend_cpu) / outcome.timers * 1e6
    client, server = (1e6 * part / outcome.timers for part in (outcome.cpu, outcome.backend_cpu))
    where = f"{client:,.0f} + {server:,.0f}"
    text = f"   {label:<26} {outcome.rate:>8,.0f} fired/s"
    if outcome.lateness:
        ms = [outcome.percentile(p) * 1000 for p in (0.5, 0.95, 0.99)]
        ms.append(max(outcome.lateness) * 1000)
        text += "  lateness p50/p95/p99/max " + "/".join(f"{m:,.0f}" for m in ms) + " ms"
    text += f"  CPU {cpu:,.0f} µs/timer (replicas + backends {where})"
    print(text, flush=True)


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--armed", type=int, default=1_000_000, help="timers in the future")
    parser.add_argument("--rate", type=int, default=1_000, help="timers due per second")
    parser.add_argument("--seconds", type=int, default=40, help="seconds of due timers")
    parser.add_argument("--backlog", type=int, default=20_000, help="timers due at once")
    parser.add_argument("--replicas", default="1,2", help="replica counts")
    parser.add_argument("--replica", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    url = infra_env().get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is needed: source .state/infra.env", file=sys.stderr)
        return 2
    if args.replica:
        await replica(url, args.schema, args.replica)
        return 0
    schema = f"bench_timers_{secrets.token_hex(3)}"
    pool = await open_store(
        url, schema, migrations_in("sla", resources.files("sla") / "migrations")
    )
    await pool.close()
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        pg_version = (await conn.fetchval("SHOW server_version")).split()[0]
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        now = datetime.now(UTC)
        probe = due_rows(desks(), now - timedelta(days=1), PROBE_ROWS, timedelta(seconds=1))
        await write(conn, schema, probe)
        await conn.execute("ANALYZE timers")
        empty = await due_query_ms(conn, now)
        started = time.perf_counter()
        template = sla_request(desks().policies[DESK], str(uuid.UUID(int=0)), now, 1)[-1]
        for rows in future_rows(args.armed, now + timedelta(hours=2), template):
            await write(conn, schema, rows)
        await conn.execute("VACUUM ANALYZE")  # a table at rest, not one just loaded
        await conn.execute("CHECKPOINT")
        filled = time.perf_counter() - started
        full = await due_query_ms(conn, now)
        await conn.execute("DELETE FROM timers WHERE fire_at < $1", now)
        await conn.execute("VACUUM timers")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('timers'))")
        print(
            f"timers benchmark {datetime.now(UTC):%Y-%m-%d %H:%M}Z · {os.cpu_count()} cores · "
            f"Python {platform.python_version()} · PostgreSQL {pg_version} · load {load} · "
            f"{args.armed:,} timers armed ({size}, written in {filled:.1f} s) · due "
            f"{args.rate:,}/s for {args.seconds} s, backlog {args.backlog:,} · tick "
            f"{TICK_SECONDS} s · schema {schema}",
            flush=True,
        )
        print("1. the due query (median of 200)", flush=True)
        print(
            f"   {PROBE_ROWS:,} rows, all due:         take 100 {empty[0]:.2f} ms, "
            f"none due {empty[1]:.2f} ms",
            flush=True,
        )
        print(
            f"   + {args.armed:,} armed in the future: take 100 {full[0]:.2f} ms, "
            f"none due {full[1]:.2f} ms",
            flush=True,
        )
        ratios = []
        for count in [int(c) for c in args.replicas.split(",")]:
            for name, case in (("steady", steady), ("backlog", backlog)):
                print(f"{count} replica{'s' if count > 1 else ''}, {name}", flush=True)
                raw = await case(conn, url, schema, "raw", count, args)
                show("raw take + mark", raw)
                fired = await case(conn, url, schema, "service", count, args)
                show("fire_due (the service)", fired)
                ratios.append((f"{count} x {name}", fired, raw))
        print("ratios: fire_due / raw (fired/s; CPU per timer)", flush=True)
        for label, fired, raw in ratios:
            per = (fired.cpu + fired.backend_cpu) / fired.timers
            per_raw = (raw.cpu + raw.backend_cpu) / raw.timers
            print(
                f"   {label:<14} {fired.rate / raw.rate:.2f}x  CPU {per / per_raw:.1f}x",
                flush=True,
            )
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
