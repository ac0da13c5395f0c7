"""Benchmark (not a test): the spine against raw aiokafka and raw asyncpg, in one run.

    uv run python bench/spine.py [--events 20000] [--appends 5000] [--repeat 3]
                                 [--parts kafka,pg,store,relay]

Against the real servers of `.state/infra.env` (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS), it
measures, in this order:

1. raw aiokafka: an idempotent producer (acks=all, the settings of `idempotent_producer`)
   sends `--events` ~300-byte JSON values with a key to a fresh 6-partition topic, then a
   consumer reads them all back. Also the same produce with the 11 CloudEvents headers the relay
   adds, to tell the cost of the headers from the cost of the relay.
2. raw asyncpg: `--appends` INSERTs of comparable rows (text stream id, uuid, jsonb payload and
   metadata, identity primary key) into a fresh schema: one row per transaction (1, 4 and 16
   connections), batches of 10 and of 100 rows per transaction (executemany).
3. the event store: `desk_eventstore.store.append` of one event per append on rotating
   distinct streams, with 1, 4 and 16 concurrent writers, and 10 events per append.
4. the relay: `OutboxRelay` + `idempotent_producer` publishing `--events` pre-appended events
   to a fresh topic, timed from start until it has published (and checkpointed) the last one;
   a consumer then checks that every event arrived.
5. the ratios of the event store to raw asyncpg (same transaction shape) and of the relay to
   the raw produce, the latter also by CPU per event.

Beside each rate it prints this process's CPU time per unit (the servers' is not included): for
the relay and the raw produce that is the whole client-side cost, and on a shared machine it
varies less than the rate.

`--parts` runs only some of them (`--parts kafka,relay`: the relay beside its baseline); a
ratio is printed when both its sides ran.
Each case runs `--repeat` times (fresh rows / messages each round); it prints the median rate
and the min-max of the rounds, because on a small shared machine one round is noisy.
Everything it creates (schemas `bench_spine_*`, topics `bench.spine.*`) is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from desk_eventstore.db import open_store
from desk_eventstore.records import NewEvent
from desk_eventstore.relay import OutboxRelay, idempotent_producer
from desk_eventstore.store import append

PARTITIONS = 6
PARTS = ("kafka", "pg", "store", "relay")  # the cases, in the order they run
STREAMS = 1000  # distinct stream ids the writers rotate over
WRITERS = (1, 4, 16)  # concurrent connections of the one-row / one-event cases
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- payloads


def payload(i: int) -> dict[str, Any]:
    """A ticket-like JSON object of about 300 bytes once serialized."""
    return {
        "ticket_id": f"T-{i:08d}",
        "desk": "saas-desk",
        "channel": "email",
        "requester": {"email": f"user{i % 997}@example.com", "name": "Ada Lovelace"},
        "subject": "Cannot log in after the password reset",
        "description": "Since this morning the login page says my password is wrong, twice.",
        "priority": "normal",
        "created_at": "2025-01-15T09:30:00+00:00",
    }


def value_of(i: int) -> bytes:
    return json.dumps(payload(i), separators=(",", ":")).encode()


def cloudevents_headers(i: int) -> list[tuple[str, bytes]]:
    """The same 11 headers the relay's envelope carries."""
    attributes = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "type": "TicketCreated",
        "source": "bench",
        "subject": f"ticket-{i % STREAMS}",
        "time": datetime.now(UTC).isoformat(),
        "dataschema": "urn:desk:schema:TicketCreated:v1",
        "schemaversion": "1",
        "streamversion": "1",
        "correlationid": str(uuid.uuid4()),
    }
    headers = [("ce_" + k, v.encode()) for k, v in attributes.items()]
    headers.append(("content-type", b"application/json"))
    return headers


def new_event(i: int) -> NewEvent:
    return NewEvent(
        event_id=uuid.uuid4(),
        event_type="TicketCreated",
        payload=payload(i),
        metadata={"correlationid": str(uuid.uuid4())},
    )


# ---------------------------------------------------------------------------- results


class Span(NamedTuple):
    """A timed stretch: wall-clock seconds, and the CPU seconds this process spent in it (the
    servers' CPU not included). On a shared machine the CPU per unit varies less than the rate."""

    wall: float
    cpu: float


class Stopwatch:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> Span:
        return Span(time.perf_counter() - self.wall, time.process_time() - self.cpu)


class Results:
    def __init__(self, repeat: int) -> None:
        self.repeat = repeat
        self.rates: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # median CPU microseconds of this process per unit
        self.units: dict[str, str] = {}

    def record(self, key: str, label: str, unit: str, count: int, spans: list[Span]) -> None:
        rates = [count / span.wall for span in spans]
        median = statistics.median(rates)
        self.rates[key] = median
        self.cpu[key] = statistics.median(span.cpu for span in spans) / count * 1e6
        self.units[key] = unit
        spread = f"rounds {min(rates):,.0f}-{max(rates):,.0f}" if len(rates) > 1 else "1 round"
        seconds = statistics.median(span.wall for span in spans)
        detail = (
            f"{count:,} {unit}/round, {seconds:.2f} s; {spread}; CPU {self.cpu[key]:.1f} us/{unit}"
        )
        print(f"  {label:<50} {median:>9,.0f} {unit}/s   ({detail})", flush=True)

    async def measure(
        self, key: str, label: str, unit: str, count: int, round_: Callable[[], Awaitable[Span]]
    ) -> None:
        """Run `round_` (which does fresh work and returns the span it timed) `repeat` times."""
        self.record(key, label, unit, count, [await round_() for _ in range(self.repeat)])


async def timed(work: Awaitable[Any]) -> Span:
    watch = Stopwatch()
    await work
    return watch.stop()


# ---------------------------------------------------------------------------- kafka


async def create_topic(admin: AIOKafkaAdminClient, name: str) -> None:
    await admin.create_topics([NewTopic(name, PARTITIONS, 1)])


WARM_UP = 8 * PARTITIONS  # records sent before timing, so leader elections are not timed


@contextmanager
def quiet_kafka_retries() -> Iterator[None]:
    """A fresh topic's first sends hit NotLeaderForPartition and retry: expected, not timed."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def warm_up(producer: AIOKafkaProducer, topic: str) -> None:
    """Metadata, connection and a leader for every partition, before the clock starts."""
    with quiet_kafka_retries():
        acks = [
            await producer.send(topic, b"{}", key=b"warm-up", partition=i % PARTITIONS)
            for i in range(WARM_UP)
        ]
        await asyncio.gather(*acks)


async def consume_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60
) -> tuple[int, Span]:
    """Read `topic` from the beginning until `expected` records; returns (count, span)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        watch = Stopwatch()  # before assign: the fetcher starts prefetching on assign
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        seen = 0
        while seen < expected:
            if time.perf_counter() - watch.wall > timeout:
                break
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(len(records) for records in batches.values())
        return seen, watch.stop()
    finally:
        await consumer.stop()


async def produce_all(producer: AIOKafkaProducer, topic: str, n: int, with_headers: bool) -> Span:
    """Send n records without waiting, then wait for every acknowledgement; returns the span."""
    values = [value_of(i) for i in range(n)]
    keys = [f"ticket-{i % STREAMS}".encode() for i in range(n)]
    watch = Stopwatch()
    acks = []
    for i in range(n):
        headers = cloudevents_headers(i) if with_headers else None
        acks.append(await producer.send(topic, values[i], key=keys[i], headers=headers))
    await asyncio.gather(*acks)
    return watch.stop()


async def bench_kafka(
    bootstrap: str, run: str, n: int, results: Results, topics: list[str]
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        cases = (
            ("raw", False, "kafka_produce", "raw aiokafka produce (idempotent, acks=all)"),
            ("rawce", True, "kafka_produce_ce", "raw aiokafka produce + CloudEvents headers"),
        )
        for suffix, with_headers, key, label in cases:
            topic = f"bench.spine.{suffix}.{run}"
            topics.append(topic)
            await create_topic(admin, topic)
            producer = idempotent_producer(bootstrap, f"bench-spine-{suffix}")
            await producer.start()
            try:
                await warm_up(producer, topic)
                await results.measure(
                    key,
                    label,
                    "msg",
                    n,
                    functools.partial(produce_all, producer, topic, n, with_headers),
                )
            finally:
                await producer.stop()
            if not with_headers:  # read back everything the rounds produced, in one go
                expected = n * results.repeat + WARM_UP
                seen, span = await consume_all(bootstrap, topic, expected)
                if seen != expected:
                    print(f"  !! consumer saw {seen} of {expected} records", flush=True)
                label = "raw aiokafka consume (6 partitions, all rounds)"
                results.record("kafka_consume", label, "msg", seen, [span])
    finally:
        await admin.close()


# ---------------------------------------------------------------------------- postgres


RAW_TABLE = """CREATE TABLE rows (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id  text   NOT NULL,
    event_id   uuid   NOT NULL,
    event_type text   NOT NULL,
    payload    jsonb  NOT NULL,
    metadata   jsonb  NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())"""
RAW_INSERT = (
    "INSERT INTO rows (stream_id, event_id, event_type, payload, metadata) "
    "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)"
)


def raw_row(i: int) -> tuple[Any, ...]:
    return (
        f"ticket-{i % STREAMS}",
        uuid.uuid4(),
        "TicketCreated",
        json.dumps(payload(i)),
        json.dumps({"correlationid": str(uuid.uuid4())}),
    )


async def insert_rows(conns: list[asyncpg.Connection], n: int, per_tx: int) -> Span:
    """n fresh rows, `per_tx` per transaction, spread over `conns` writing concurrently."""
    rows = [raw_row(i) for i in range(n)]

    async def writer(conn: asyncpg.Connection, part: list[tuple[Any, ...]]) -> None:
        if per_tx == 1:  # a single statement is its own transaction
            for row in part:
                await conn.execute(RAW_INSERT, *row)
            return
        for start in range(0, len(part), per_tx):
            async with conn.transaction():
                await conn.executemany(RAW_INSERT, part[start : start + per_tx])

    k = len(conns)
    return await timed(asyncio.gather(*(writer(c, rows[w::k]) for w, c in enumerate(conns))))


async def bench_raw_pg(url: str, schema: str, n: int, results: Results) -> None:
    setup = await asyncpg.connect(url)
    try:
        await setup.execute(f'CREATE SCHEMA "{schema}"')
        await setup.execute(f'SET search_path TO "{schema}"')
        await setup.execute(RAW_TABLE)
    finally:
        await setup.close()
    conns = [
        await asyncpg.connect(url, server_settings={"search_path": schema})
        for _ in range(max(WRITERS))
    ]
    try:
        await insert_rows(conns, 400, 1)  # warm-up: prepared statements, caches
        one = conns[:1]
        m = results.measure
        for k in WRITERS:
            await m(
                f"pg_1x{k}",
                f"raw asyncpg INSERT, 1 row/tx, {k} conn{'s' if k > 1 else ''}",
                "row",
                n,
                functools.partial(insert_rows, conns[:k], n, 1),
            )
        await m(
            "pg_10",
            "raw asyncpg INSERT, 10 rows/tx (executemany)",
            "row",
            n,
            lambda: insert_rows(one, n, 10),
        )
        await m(
            "pg_100",
            "raw asyncpg INSERT, 100 rows/tx (executemany)",
            "row",
            n,
            lambda: insert_rows(one, n, 100),
        )
    finally:
        for c in conns:
            await c.close()


class Appender:
    """Appends to rotating streams of its own, tracking each stream's version."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.rounds = 0

    async def run(self, conns: list[asyncpg.Connection], n: int, per_append: int) -> Span:
        """n events, `per_append` per append, spread over `conns` appending concurrently."""
        self.rounds += 1
        prefix = f"r{self.rounds}-{len(conns)}x{per_append}"

        async def writer(conn: asyncpg.Connection, w: int, appends: int) -> None:
            for i in range(appends):
                stream = f"{prefix}-w{w}-ticket-{i % (STREAMS // len(conns))}"
                version = self.versions.get(stream, 0)
                events = [new_event(i) for _ in range(per_append)]
                await append(conn, stream, version, events)
                self.versions[stream] = version + per_append

        k = len(conns)
        appends = [n // per_append // k + (w < n // per_append % k) for w in range(k)]
        return await timed(asyncio.gather(*(writer(c, w, appends[w]) for w, c in enumerate(conns))))


async def bench_store(url: str, schema: str, n: int, results: Results) -> None:
    size = max(WRITERS)
    pool = await open_store(url, schema, min_size=size, max_size=size)
    conns = [await pool.acquire() for _ in range(size)]
    try:
        appender = Appender()
        await appender.run(conns, 400, 1)  # warm-up
        one = conns[:1]
        m = results.measure
        for k in WRITERS:
            await m(
                f"store_1x{k}",
                f"event store append, 1 ev/append, {k} writer{'s' if k > 1 else ''}",
                "ev",
                n,
                functools.partial(appender.run, conns[:k], n, 1),
            )
        await m(
            "store_10",
            "event store append, 10 ev/append, 1 writer",
            "ev",
            n,
            lambda: appender.run(one, n, 10),
        )
    finally:
        for c in conns:
            await pool.release(c)
        await pool.close()


async def relay_round(
    url: str, schema: str, pool: asyncpg.Pool, producer: AIOKafkaProducer, topic: str, n: int
) -> Span:
    """Append n events (100 per append, untimed), then time a fresh relay publishing them."""
    async with pool.acquire() as conn:
        base = await conn.fetchval("SELECT count(*) FROM events")
        for start in range(0, n, 100):
            count = min(100, n - start)
            stream = f"ticket-{base + start}"  # a new stream per append
            recorded = await append(conn, stream, 0, [new_event(start + k) for k in range(count)])
        last_position = recorded[-1].global_position
    # same relay name every round: it resumes from the previous round's checkpoint
    relay = OutboxRelay(url, schema, producer, lambda _event: topic, source="bench")
    stop = asyncio.Event()
    watch = Stopwatch()
    task = asyncio.create_task(relay.run(stop))
    deadline = watch.wall + 120
    # `published` grows right after the checkpoint UPDATE of each batch
    while relay.published < n and time.perf_counter() < deadline and not task.done():
        await asyncio.sleep(0.002)
    span = watch.stop()
    stop.set()
    await task
    async with pool.acquire() as conn:
        checkpoint = await conn.fetchval(
            "SELECT position FROM relay_checkpoints WHERE relay = 'outbox'"
        )
    if relay.published != n or checkpoint != last_position:
        print(
            f"  !! relay published {relay.published} of {n}, checkpoint {checkpoint} "
            f"(last position {last_position})",
            flush=True,
        )
    return span


async def bench_relay(
    url: str, bootstrap: str, schema: str, run: str, n: int, results: Results, topics: list[str]
) -> None:
    topic = f"bench.spine.relay.{run}"
    topics.append(topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await create_topic(admin, topic)
    finally:
        await admin.close()

    pool = await open_store(url, schema, min_size=1, max_size=2)
    producer = idempotent_producer(bootstrap, "bench-spine-relay")
    await producer.start()
    try:
        await warm_up(producer, topic)
        await results.measure(
            "relay",
            "relay publish (OutboxRelay + idempotent_producer)",
            "ev",
            n,
            lambda: relay_round(url, schema, pool, producer, topic, n),
        )
    finally:
        await producer.stop()
        await pool.close()
    expected = n * results.repeat + WARM_UP
    seen, _ = await consume_all(bootstrap, topic, expected)
    status = "all" if seen == expected else f"ONLY {seen - WARM_UP:,} of"
    print(
        f"  {'':<50} consumer check: {status} {expected - WARM_UP:,} relayed events on the topic",
        flush=True,
    )


# ---------------------------------------------------------------------------- main


async def cleanup(url: str, bootstrap: str, schemas: list[str], topics: list[str]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    if topics:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            doomed = [t for t in topics if t in existing]
            if doomed:
                await admin.delete_topics(doomed)
        finally:
            await admin.close()
    print(f"cleaned up: schemas {', '.join(schemas)}; topics {', '.join(topics)}")


def ratio(results: Results, key: str, base: str, label: str, base_label: str) -> str:
    r, b = results.rates[key], results.rates[base]
    unit, base_unit = results.units[key], results.units[base]
    left = f"{label} {r:,.0f} {unit}/s"
    return f"{left:<50} = {r / b:.2f} x {base_label} ({b:,.0f} {base_unit}/s)"


def cpu_ratio(results: Results, key: str, base: str, label: str, base_label: str) -> str:
    r, b = results.cpu[key], results.cpu[base]
    unit, base_unit = results.units[key], results.units[base]
    left = f"{label} CPU {r:.1f} us/{unit}"
    return f"{left:<50} = {r / b:.2f} x {base_label} ({b:.1f} us/{base_unit})"


def load_env() -> None:
    env_file = REPO / ".state" / "infra.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                name, _, value = line[len("export ") :].partition("=")
                os.environ.setdefault(name.strip(), value.strip().strip("'\""))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--events", type=int, default=20_000, help="Kafka messages / relayed events"
    )
    parser.add_argument(
        "--appends", type=int, default=5_000, help="rows / appends per Postgres case"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds per case (median shown)")
    parser.add_argument(
        "--parts",
        type=lambda text: set(text.split(",")),
        default=set(PARTS),
        help=f"comma-separated cases to run, of {','.join(PARTS)} (default: all)",
    )
    args = parser.parse_args()
    if unknown := args.parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    load_env()
    url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not url or not bootstrap:
        print(
            "DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS are needed: source .state/infra.env "
            "(or run: bash deploy/local/infra.sh start)",
            file=sys.stderr,
        )
        return 2

    run = secrets.token_hex(3)
    load_start = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    probe = await asyncpg.connect(url)
    pg_version = (await probe.fetchval("SHOW server_version")).split()[0]
    sync = await probe.fetchval("SHOW synchronous_commit")
    await probe.close()
    print(
        f"spine benchmark {datetime.now(UTC):%Y-%m-%d %H:%M}Z · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · "
        f"PostgreSQL {pg_version} (synchronous_commit={sync}) · "
        f"Kafka at {bootstrap} · value {len(value_of(0))} bytes · "
        f"--events {args.events:,} --appends {args.appends:,} --repeat {args.repeat} · "
        f"parts {','.join(p for p in PARTS if p in args.parts)} · run {run}",
        flush=True,
    )

    results = Results(args.repeat)
    schemas = [f"bench_spine_raw_{run}", f"bench_spine_store_{run}", f"bench_spine_relay_{run}"]
    topics: list[str] = []
    total = time.perf_counter()
    try:
        if "kafka" in args.parts:
            print("1. Kafka baseline", flush=True)
            await bench_kafka(bootstrap, run, args.events, results, topics)
        if "pg" in args.parts:
            print("2. PostgreSQL baseline", flush=True)
            await bench_raw_pg(url, schemas[0], args.appends, results)
        if "store" in args.parts:
            print("3. event store append", flush=True)
            await bench_store(url, schemas[1], args.appends, results)
        if "relay" in args.parts:
            print("4. outbox relay", flush=True)
            await bench_relay(url, bootstrap, schemas[2], run, args.events, results, topics)
    finally:
        await cleanup(url, bootstrap, schemas, topics)

    print("5. ratios", flush=True)
    pairs = [
        (
            f"store_1x{k}",
            f"pg_1x{k}",
            f"store append 1 ev/append, {k} writer{'s' if k > 1 else ''}",
            f"raw INSERT 1 row/tx, {k} conn{'s' if k > 1 else ''}",
        )
        for k in WRITERS
    ]
    pairs += [
        ("store_10", "pg_10", "store append 10 ev/append", "raw INSERT 10 rows/tx"),
        ("store_10", "pg_100", "store append 10 ev/append", "raw INSERT 100 rows/tx"),
        ("relay", "kafka_produce", "relay publish", "raw aiokafka produce"),
        ("relay", "kafka_produce_ce", "relay publish", "raw produce + CE headers"),
    ]
    for key, base, label, base_label in pairs:
        if key not in results.rates or base not in results.rates:
            continue
        line = ratio(results, key, base, label, base_label)
        print("  " + line, flush=True)
    for key, base, label, base_label in pairs[-2:]:  # the client's CPU is the relay's own cost
        if key in results.cpu and base in results.cpu:
            print("  " + cpu_ratio(results, key, base, label, base_label), flush=True)
    scaling = [f"{k} writers {results.rates[f'store_1x{k}']:,.0f} ev/s" for k in WRITERS
               if f"store_1x{k}" in results.rates]  # fmt: skip
    if len(scaling) > 1:
        print("  store append scaling: " + ", ".join(scaling), flush=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    elapsed = time.perf_counter() - total
    print(f"total {elapsed:.1f} s · load average at start {load_start}, at end {load}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
