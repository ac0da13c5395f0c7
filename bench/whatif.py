"""Benchmark (not a test): the what-if replay's read of `ticket-events`, in events per second,
beside the raw consume rate of the same topic measured in the same run as the ratio's baseline.

    uv run python bench/whatif.py [--events 200000] [--repeat 3] [--keep] [--store]

Against the Kafka server of `.state/infra.env` (KAFKA_BOOTSTRAP_SERVERS), on a fresh topic
`bench-whatif-<hex>-ticket-events` (6 partitions, as the real one), and with `--store` the
PostgreSQL server (DATABASE_URL), in a fresh schema migrated as workflow's:

1. fill: about `--events` events of a synthetic half-year (January to June 2026) of
   `erp-vendor` (60 %) and `cloud-partner` (40 %) requests (`synthetic_log`): opened mostly in
   office hours, some on Saturday mornings and evenings; priorities low 30 %, medium 40 %, high
   20 %, critical 10 %; qualified and taken in charge (`erp-vendor`'s first response), asked
   for information (`cloud-partner`'s first response, 40 % of `erp-vendor`'s) and answered
   after 1 to 72 hours, commented, resolved and closed (5 % still worked at the end), each step
   a random number of business minutes after the last on the desk's calendar (the first
   responses scattered around the targets: about one in ten breached).
   Each event is folded by the one fold (`desk_policies.requests.evolve`) and published as the
   relay publishes it (`kafka_record`: CloudEvents headers, the `request-state` header), in the
   order the events happened, keyed by ticket;
2. baseline: the topic consumed raw (every partition assigned, no group, `getmany` with the
   same fetch sizes as the replay), records counted, nothing decoded;
3. the what-if read (`sla.entrypoints.log_sources.kafka_states` into
   `sla.domain.whatif.Histories`: what the command does under its progress bar), then the whole
   what-if (the read, then every request's verdicts under the terms in force and under the
   shipped example scenario, `docs/whatif/erp-vendor-critical-30min-saturday.yaml`, on every
   core as the command reads them: `compare_on_cores`).
4. with `--store`: the same events written by one COPY into the schema's events table (each
   with its state in its metadata, as workflow appends it); baseline: the same rows read raw
   (`store_rows`: the read-only cursor of the replay, the state's JSON text fetched, nothing
   parsed); then the what-if read from the store (`store_states` into `Histories`).

Each case runs `--repeat` times; the median rate and the min-max of the rounds are printed,
then the ratios to the raw reads. The topic (and schema) is deleted at the end unless `--keep`
(then the topic's prefix is printed, for `TOPIC_PREFIX=<prefix> python -m sla.entrypoints.whatif`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import random
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import structlog
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from notify import infra_env  # bench/notify.py: the same servers, found alike

from desk_contracts.base import Event
from desk_contracts.envelope import kafka_record
from desk_contracts.state import STATE_HEADER, STATE_METADATA
from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    InformationRequested,
    RequesterAnswered,
    TicketClosed,
    TicketCreated,
    TicketQualified,
    TicketResolved,
    WorkStarted,
)
from desk_contracts.topics import TICKET_EVENTS
from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from desk_policies.requests import Ticket, evolve, published
from sla.domain.business_time import BusinessTime
from sla.domain.scenario import apply_scenario
from sla.domain.whatif import Histories, Period, terms_of
from sla.entrypoints.log_sources import (
    collector_paused,
    gather,
    kafka_batches,
    kafka_states,
    store_rows,
    store_states,
)
from sla.entrypoints.whatif import compare_on_cores

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "whatif" / "erp-vendor-critical-30min-saturday.yaml"
PARTITIONS = 6
POLICIES = load_policies()
CALENDARS = shipped_calendars()
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DAYS = 177  # to the end of June
PRIORITIES = (("low", 30), ("medium", 40), ("high", 20), ("critical", 10))
DESKS = (("erp-vendor", 60), ("cloud-partner", 40))
# per desk: the status a request is qualified into (None: no such step) and the one its team
# works it in; the request type
FLOW = {
    "erp-vendor": ("qualified", "in_progress", "support", "SPT"),
    "cloud-partner": (None, "in_progress", "support", "SUP"),
}
AGENT, REQUESTER = "paul@desk.example", "anne@acme.example"


# ---------------------------------------------------------------------------- the log


def opened_at(rng: random.Random, zone: Any) -> datetime:
    """When a request is opened: office hours on weekdays mostly, Saturday mornings, evenings."""
    day = START + timedelta(days=rng.randrange(DAYS))
    kind = rng.random()
    if kind < 0.08:  # a Saturday morning (payroll runs at the weekend)
        day += timedelta(days=(5 - day.weekday()) % 7)
        hour = rng.uniform(8.0, 12.5)
    elif kind < 0.14:  # a weekday evening
        day += timedelta(days=-day.weekday() + rng.randrange(5))
        hour = rng.uniform(17.5, 21.0)
    else:
        day += timedelta(days=-day.weekday() + rng.randrange(5))
        hour = rng.uniform(8.0, 17.5)
    local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(hours=hour)
    return local.astimezone(UTC).replace(second=0, microsecond=0)


def business_later(calendar: BusinessTime, at: datetime, minutes: float) -> datetime:
    """`minutes` business minutes after `at` (at least a minute of wall time later)."""
    later = calendar.add(at, timedelta(minutes=max(1.0, minutes)))
    return max(later, at + timedelta(minutes=1)).replace(microsecond=0)


def request_events(rng: random.Random, number: int) -> list[Event]:
    """One synthetic request's events, in order (see the module)."""
    desk = rng.choices([d for d, _ in DESKS], [w for _, w in DESKS])[0]
    priority = rng.choices([p for p, _ in PRIORITIES], [w for _, w in PRIORITIES])[0]
    policy = POLICIES[desk]
    calendar = BUSINESS[policy.sla.calendar]
    qualify, work, request_type, prefix = FLOW[desk]
    target = policy.sla.target(request_type, priority)
    assert target is not None
    ticket = str(uuid.UUID(int=number + 1))
    at = opened_at(rng, calendar.zone)
    events: list[Event] = [
        TicketCreated(
            ticket_id=ticket,
            occurred_at=at,
            key=f"{prefix}-{10_000 + number}",
            policy_id=desk,
            request_type=request_type,
            priority=priority,
            subject="La paie ne part pas",
            description="La transmission SwissDec échoue depuis ce matin.",
            organisation_id=f"org-{number % 97}",
            requester_id=REQUESTER,
            created_by=REQUESTER,
            channel=Channel.PORTAL,
        )
    ]
    status = policy.initial_status
    acted = {"ticket_id": ticket, "actor_id": AGENT, "actor_role": "service_desk"}

    def move(cls: type[Any], to: str, minutes: float, **extra: Any) -> None:
        """The request moves to `to` `minutes` business minutes after its last event."""
        nonlocal at, status
        at = business_later(calendar, at, minutes)
        events.append(cls(occurred_at=at, from_status=status, to_status=to, **acted, **extra))
        status = to

    response = target.response * rng.lognormvariate(-0.8, 0.6)  # about 1 in 10 breached
    resolution = target.resolution * rng.lognormvariate(-0.9, 0.7)
    if qualify is not None:  # erp-vendor: taking the request in charge is its first response
        move(TicketQualified, qualify, response * rng.uniform(0.1, 0.5))
        move(WorkStarted, work, response * rng.uniform(0.5, 0.9))
        asks, asked_after = rng.random() < 0.4, resolution * 0.3
    else:  # cloud-partner: in progress is no response; asking the requester what it needs is
        move(WorkStarted, work, response * rng.uniform(0.05, 0.3))
        asks, asked_after = True, response * rng.uniform(0.6, 0.9)
    if at >= START + timedelta(days=DAYS + 3):  # taken in charge after the log's end
        return events
    if asks:
        move(InformationRequested, "waiting_customer", asked_after, comment="Version ?")
        at += timedelta(hours=rng.uniform(1, 72))  # the customer answers in wall-clock time
        answer = {**acted, "actor_id": REQUESTER, "actor_role": "requester"}
        events.append(
            RequesterAnswered(
                occurred_at=at, from_status=status, to_status=work, body="Version 12.4", **answer
            )
        )
        status = work
        resolution *= 0.7
    at = business_later(calendar, at, rng.uniform(5, 60))
    events.append(CommentAdded(occurred_at=at, body="Journaux analysés", public=False, **acted))
    if rng.random() < 0.05:  # still being worked at the end of the log
        return events
    move(TicketResolved, "resolved", resolution, resolution_code="done", comment="Corrigé")
    at += timedelta(hours=rng.uniform(1, 48))
    events.append(
        CommentAdded(
            occurred_at=at,
            body="Merci, c'est bon",
            public=True,
            ticket_id=ticket,
            actor_id=REQUESTER,
            actor_role="requester",
        )
    )
    move(TicketClosed, "closed", rng.uniform(5, 120), resolution_code="done")
    return events


BUSINESS = {cid: BusinessTime(calendar) for cid, calendar in CALENDARS.items()}


def synthetic_log(events: int, seed: int = 15) -> list[tuple[datetime, bytes, bytes, Any]]:
    """About `events` records of synthetic requests, as (occurred at, key, value, headers), in
    the order the events happened."""
    rng = random.Random(seed)
    records: list[tuple[datetime, bytes, bytes, Any]] = []
    number = 0
    while len(records) < events:
        story = request_events(rng, number)
        number += 1
        state = Ticket.blank(POLICIES[story[0].policy_id], story[0].ticket_id)  # type: ignore[attr-defined]
        for version, event in enumerate(story, 1):
            state = evolve(state, event)
            key, value, headers = kafka_record(
                id=str(uuid.uuid4()),
                type=event.event_type,
                source="/desk/workflow",
                subject=event.ticket_id,
                time=event.occurred_at,
                data=event.model_dump(mode="json"),
                schema_version=event.schema_version,
                extensions={"streamversion": str(version), "correlationid": event.ticket_id},
                request_state=published(state).model_dump(mode="json"),
            )
            records.append((event.occurred_at, key, value, headers))
    records.sort(key=lambda r: r[0])
    return records


async def fill(
    bootstrap: str, topic: str, records: list[tuple[datetime, bytes, bytes, Any]]
) -> None:
    """Create the topic and produce every record (acknowledged)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1024 * 1024, acks="all"
    )
    await producer.start()
    try:
        for start in range(0, len(records), 20_000):
            acks = [
                await producer.send(topic, value, key=key, headers=headers)
                for _, key, value, headers in records[start : start + 20_000]
            ]
            await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def drop(bootstrap: str, topic: str) -> None:
    """Delete the topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()


STORE_COLUMNS = [
    "stream_id", "stream_version", "event_id", "event_type", "schema_version", "payload",
    "metadata", "recorded_at",
]  # fmt: skip


async def fill_store(url: str, records: list[tuple[datetime, bytes, bytes, Any]]) -> str:
    """A fresh schema migrated as workflow's, its events table holding `records` as workflow
    appends them (the state in each event's metadata); returns the schema."""
    schema = f"bench_whatif_{secrets.token_hex(3)}"
    migrations = migrations_in("workflow", resources.files("workflow") / "migrations")
    pool = await open_store(url, schema, migrations)
    await pool.close()

    def rows() -> Any:
        """The events table's rows of the records (`STORE_COLUMNS`)."""
        for at, key, value, headers in records:
            named = dict(headers)
            state = named[STATE_HEADER].decode()
            yield (
                key.decode(),
                int(named["ce_streamversion"]),
                uuid.uuid4(),
                named["ce_type"].decode(),
                1,
                value.decode(),
                f'{{"{STATE_METADATA}": {state}}}',
                at,
            )

    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.copy_records_to_table("events", records=rows(), columns=STORE_COLUMNS)
        await conn.execute("ANALYZE events")
    finally:
        await conn.close()
    return schema


async def drop_schema(url: str, schema: str) -> None:
    """Drop the schema and everything in it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


# ---------------------------------------------------------------------------- rounds


async def raw_round(bootstrap: str, topic: str) -> int:
    """Consume every record of the topic as the replay does (`kafka_batches`), counting them
    only: nothing decoded."""
    count = 0
    async for records in kafka_batches(bootstrap, topic, lambda done, total: None):
        count += len(records)
    return count


async def read_round(bootstrap: str, topic: str) -> Histories:
    """The what-if's read: every published state into the requests' histories."""
    return await gather(kafka_states(bootstrap, topic))


async def raw_store_round(url: str, schema: str) -> int:
    """Read every row's state as text through the replay's cursor, counting them only."""
    count = 0
    column = f"metadata->>'{STATE_METADATA}'"
    async for rows in store_rows(url, schema, column, lambda done, total: None):
        count += len(rows)
    return count


async def store_round(url: str, schema: str) -> Histories:
    """The what-if's read from the store: every stored state into the requests' histories."""
    return await gather(store_states(url, schema))


def whole_round(bootstrap: str, topic: str) -> int:
    """The read, then the comparison under the example scenario; returns the changes found."""
    histories = asyncio.run(read_round(bootstrap, topic))
    scenario = apply_scenario(yaml.safe_load(EXAMPLE.read_text()), POLICIES, CALENDARS)
    assert histories.last_at is not None
    with collector_paused():
        report = compare_on_cores(
            list(histories.requests.values()),
            terms_of(POLICIES, CALENDARS),
            terms_of(scenario.policies, scenario.calendars),
            histories.last_at,
            Period(),
            None,
        )
    return len(report.changes)


def timed(repeat: int, round_: Callable[[], Any]) -> tuple[list[float], Any]:
    """Seconds of each of `repeat` rounds, and the last round's result."""
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = round_()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def line(label: str, count: int, seconds: list[float], detail: str = "") -> float:
    """Print the median rate of `count` events over the rounds; returns it."""
    rates = [count / s for s in seconds]
    median = statistics.median(rates)
    print(
        f"   {label:<46} {median:>10,.0f} events/s  (rounds {min(rates):,.0f}-{max(rates):,.0f})"
        f"{'  ' + detail if detail else ''}",
        flush=True,
    )
    return median


def run(aw: Callable[[], Awaitable[Any]]) -> Callable[[], Any]:
    """A round that runs the coroutine `aw` makes in a new event loop."""
    return lambda: asyncio.run(aw())


def main() -> int:
    """Fill, measure, print (see the module); returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the log (about)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case (median shown)")
    parser.add_argument("--keep", action="store_true", help="keep the topic (prints its prefix)")
    parser.add_argument("--store", action="store_true", help="also read from a workflow store")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    env = infra_env()
    bootstrap, url = env.get("KAFKA_BOOTSTRAP_SERVERS"), env.get("DATABASE_URL")
    if not bootstrap:
        print("KAFKA_BOOTSTRAP_SERVERS is needed: source .state/infra.env", file=sys.stderr)
        return 2
    if args.store and not url:
        print("DATABASE_URL is needed for --store: source .state/infra.env", file=sys.stderr)
        return 2
    prefix = f"bench-whatif-{secrets.token_hex(3)}-"
    topic = prefix + TICKET_EVENTS
    started = time.perf_counter()
    records = synthetic_log(args.events)
    made = time.perf_counter() - started
    asyncio.run(fill(bootstrap, topic, records))
    produced = time.perf_counter() - started - made
    schema = asyncio.run(fill_store(url, records)) if args.store and url else None
    events = len(records)
    size = sum(len(v) + sum(len(h[1]) for h in hs) for _, _, v, hs in records)
    del records
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        print(
            f"what-if benchmark {datetime.now(UTC):%Y-%m-%d %H:%M}Z · {os.cpu_count()} cores · "
            f"Python {platform.python_version()} · load {load} · {events:,} events "
            f"({size / 1e6:,.0f} MB of values and headers; made in {made:.1f} s, produced in "
            f"{produced:.1f} s) · --repeat {args.repeat} · "
            f"topic {topic}",
            flush=True,
        )
        print("1. baseline: the topic consumed raw", flush=True)
        seconds, count = timed(args.repeat, run(lambda: raw_round(bootstrap, topic)))
        assert count == events, (count, events)
        raw = line("raw consume (getmany, records counted)", events, seconds)
        print("2. the what-if", flush=True)
        seconds, histories = timed(args.repeat, run(lambda: read_round(bootstrap, topic)))
        assert histories.records == events, (histories.records, events)
        read = line(
            "read: request-state headers into histories",
            events,
            seconds,
            f"{len(histories.requests):,} requests",
        )
        seconds, changes = timed(args.repeat, lambda: whole_round(bootstrap, topic))
        whole = line(
            "read + verdicts now and under the example", events, seconds, f"{changes:,} changes"
        )
        if schema and url:
            print(f"3. from the store (schema {schema})", flush=True)
            seconds, count = timed(args.repeat, run(lambda: raw_store_round(url, schema)))
            assert count == events, (count, events)
            raw_store = line("raw read (the replay's cursor, nothing parsed)", events, seconds)
            seconds, histories = timed(args.repeat, run(lambda: store_round(url, schema)))
            assert histories.records == events, (histories.records, events)
            store = line("read: stored states into histories", events, seconds)
        print("4. ratios", flush=True)
        print(f"   what-if read / raw consume          {read / raw:.2f}x", flush=True)
        print(f"   whole what-if / raw consume         {whole / raw:.2f}x", flush=True)
        if schema:
            print(f"   what-if read, store / raw read      {store / raw_store:.2f}x", flush=True)
    finally:
        if schema and url and not args.keep:
            asyncio.run(drop_schema(url, schema))
        if args.keep:
            print(f"kept: TOPIC_PREFIX={prefix}", flush=True)
        else:
            asyncio.run(drop(bootstrap, topic))
    return 0


if __name__ == "__main__":
    sys.exit(main())
