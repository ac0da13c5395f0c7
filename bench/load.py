"""Benchmark (not a test): the whole path under an open-loop load, POST to the requester's mail.

    uv run python bench/load.py [--rates 40,80,120] [--seconds 20] [--drain 60]
                                [--replicas 2 [--kill-replica-after 10]]

It starts the whole system as `scripts/run.sh` does (every service a process, on a fresh
database and fresh topics of the servers in `.state/infra.env`, flood limits raised, the
environment's `ADMISSION_*` and `SMTP_CONNECTIONS` passed on to try other settings), then for
each offered rate POSTs `saas-desk` requests to intake at fixed instants for `--seconds` seconds:
an open loop, each POST sent at its instant whether or not the earlier ones were answered, so a
slow system cannot slow the load down. Each request is timed until its acknowledgement (the
mail the notifier hands to the SMTP sink, which names each file by its arrival in nanoseconds)
is there. Before the next rate, the bench waits until every accepted request has its mail (or
`--drain` seconds).

Per rate it prints:

- offered/s, accepted/s (2xx answers), shed (503) and other answers; completed/s (mails over the
  time from the first POST to the last mail) and mails within the offered window per second;
- latency POST -> mail p50 / p95 / p99 / max, and the POST's own answer time p50 / p99;
- lost (accepted, no mail after the drain) and duplicated (more than one acknowledgement);
- CPU milliseconds per completed request for each process, read from `/proc` before and after
  (the services, the SMTP sink, PostgreSQL's postmaster and every backend, Kafka's JVM), and the
  sum without the sink and the load generator (this process, a lean HTTP/1.1 client, shown
  apart); in all, and beyond what the idle system burns (its CPU per second, measured for 10 s
  before the first rate, times the round's length): polling and heartbeats are a fixed cost;
- a stage view from the stores' own timestamps: TicketCreated appended in intake's store
  (`recorded_at`), then each consumer's first inbox row for that request (`processed_at`: the
  start of the transaction that applied it), then the mail's arrival; p50 / p99 from the POST.

Scaling out: `--replicas 2` starts two processes of each consumer service (workflow, sla,
notifier; they share each topic's partitions), and `--kill-replica-after S` SIGKILLs the second
of each S seconds into the first round: their partitions move to the first ones, and the round's
lost and duplicated counts say what the move cost.

Same-run baselines, printed with the ratio of the completed rate to each: raw asyncpg INSERTs (1
row per transaction, 4 connections: the shape of one event per transaction) and raw aiokafka
produce + consume of keyed CloudEvents records (from `bench/spine.py`).

PostgreSQL and Kafka are shared with anything else running on the machine: their CPU counts
whatever else used them meanwhile, so run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests/support"), str(ROOT / "deploy/local"), str(ROOT / "bench")]

import spine  # noqa: E402
from e2e_support import isolated_system  # noqa: E402
from identity_support import bearer  # noqa: E402
from system import System  # noqa: E402

from desk_eventstore.relay import idempotent_producer  # noqa: E402

ANNE = "anne@acme.example"
FLOOD_LIMITS = ("SUBMITTER", "DOMAIN", "DESK")
ENVIRONMENT = {f"REQUESTS_{kind}_HOURLY_LIMIT": "100000000" for kind in FLOOD_LIMITS}
PASSED_ON = ("ADMISSION_", "SMTP_CONNECTIONS")  # settings of this environment the system gets
ENVIRONMENT.update({k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)})
IDLE_SECONDS = 10.0  # CPU of the system with no load, measured before the first rate
KEEP_ALIVE = 2.0  # seconds a connection is reused after its last answer
CONSUMERS = ("workflow", "sla", "notifier")  # the services `--replicas` starts more of
TICKS = os.sysconf("SC_CLK_TCK")
SUBJECT_KEY = re.compile(rb"^Subject: \[([A-Z][A-Z0-9]*-[0-9]+)\]", re.MULTILINE)


def request_body(i: int) -> dict[str, object]:
    return {
        "policy_id": "saas-desk",
        "request_type": "problem_report",
        "priority": ("low", "medium", "high")[i % 3],
        "subject": f"Charge {i} : l'export mensuel échoue",
        "description": f"Erreur à chaque export depuis lundi (demande de charge {i}).",
        "organisation_id": "acme",
        "requester": ANNE,
        "language": "fr",
    }


# ---------------------------------------------------------------------------- CPU from /proc


def _cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds of `pid` (user + system), with its reaped children's when `children`."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICKS


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            continue
    return found


def _postmaster() -> int | None:
    pid_file = ROOT / ".state/postgres/data/postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def _kafka() -> int | None:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if args and args[0].endswith(b"java") and any(b"kafka" in a for a in args):
            return int(cmdline.parent.name)
    return None


def cpu_snapshot(system: System) -> dict[str, float]:
    """CPU seconds so far of every process on the path (PostgreSQL: postmaster, its reaped
    backends and the live ones)."""
    seconds = {name: _cpu_of(p.pid) for name, p in system.processes.items()}
    if (postmaster := _postmaster()) is not None:
        seconds["postgresql"] = _cpu_of(postmaster, children=True) + sum(
            _cpu_of(child) for child in _children(postmaster)
        )
    if (kafka := _kafka()) is not None:
        seconds["kafka"] = _cpu_of(kafka)
    seconds["load generator"] = _cpu_of(os.getpid())
    return seconds


# ---------------------------------------------------------------------------- the load


@dataclass
class Sent:
    at: float  # wall clock (time.time()) the POST was sent
    answered: float = 0.0
    status: int = 0
    key: str | None = None
    ticket_id: str | None = None
    error: str | None = None  # why there was no answer


@dataclass
class Round:
    rate: int
    seconds: float
    sent: list[Sent] = field(default_factory=list)
    mails: dict[str, list[float]] = field(default_factory=dict)  # key -> arrival instants
    cpu: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds the CPU figures cover
    idle: dict[str, float] = field(default_factory=dict)  # CPU seconds per second, no load
    stages: dict[str, list[float]] = field(default_factory=dict)


class RawClient:
    """A lean HTTP/1.1 client for the load (httpx costs ~20 ms of CPU per request here, more
    than the system under test): keep-alive connections, a new one whenever all are busy, each
    request pre-encoded but for its body; answers read by Content-Length."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        # with the instant each was last used: uvicorn closes a connection idle for 5 s
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.opened = 0

    async def post(self, path: str, body: dict[str, object], key: str) -> tuple[int, bytes]:
        data = json.dumps(body).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.head}"
            f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        while self.idle:
            reader, writer, used = self.idle.pop()
            if time.monotonic() - used < KEEP_ALIVE:
                break
            writer.close()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        if b"connection: close" in head.lower():
            writer.close()
        else:
            self.idle.append((reader, writer, time.monotonic()))
        return status, answer

    async def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()


async def offer(intake: RawClient, rate: int, seconds: float, first: int) -> list[Sent]:
    """POST `rate` requests per second for `seconds` at fixed instants (open loop)."""
    count = int(rate * seconds)
    sent: list[Sent] = []
    began = time.perf_counter()

    async def one(i: int) -> None:
        record = Sent(at=time.time())
        sent.append(record)
        try:
            status, answer = await intake.post(
                "/requests", request_body(first + i), f"load-{first + i}"
            )
            record.status = status
            if status < 300:
                body = json.loads(answer)
                record.key, record.ticket_id = body["key"], body.get("ticket_id")
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            record.status, record.error = -1, type(error).__name__
        record.answered = time.time()

    tasks = []
    for i in range(count):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return sent


def read_mails(folder: Path, seen: dict[Path, None], mails: dict[str, list[float]]) -> None:
    """Acknowledgements arrived since the last look, by request key (the file name's instant)."""
    for path in folder.glob("*.eml"):
        if path in seen:
            continue
        seen[path] = None
        with path.open("rb") as file:
            found = SUBJECT_KEY.search(file.read(4096))
        if found:
            key = found.group(1).decode()
            mails.setdefault(key, []).append(int(path.name.split("-")[0]) / 1e9)


async def wait_for_mails(
    folder: Path,
    keys: set[str],
    seen: dict[Path, None],
    mails: dict[str, list[float]],
    drain: float,
) -> None:
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        read_mails(folder, seen, mails)
        if keys <= mails.keys():
            return
        await asyncio.sleep(0.5)


async def stages(system: System, rounds: list[Round]) -> None:
    """Each request's stage instants from the stores' timestamps, as seconds after its POST."""
    conn = await asyncpg.connect(system.database_url)
    try:
        schemas = [
            r["table_schema"]
            for r in await conn.fetch(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'inbox'"
            )
        ]
        for one in rounds:
            posted = {s.ticket_id: s.at for s in one.sent if s.ticket_id}
            ids = list(posted)
            appended = await conn.fetch(
                """SELECT stream_id, min(recorded_at) AS at FROM intake.events
                   WHERE stream_id = any($1::text[]) GROUP BY stream_id""",
                ids,
            )
            one.stages["appended (intake)"] = [
                r["at"].timestamp() - posted[r["stream_id"]] for r in appended
            ]
            for schema in schemas:
                rows = await conn.fetch(
                    f"""SELECT consumer, stream_id, min(processed_at) AS at FROM "{schema}".inbox
                        WHERE stream_id = any($1::text[]) GROUP BY consumer, stream_id""",
                    ids,
                )
                for r in rows:
                    service, *_, topic = r["consumer"].split(".")  # not the run's topic prefix
                    one.stages.setdefault(f"applied by {service} ({topic})", []).append(
                        r["at"].timestamp() - posted[r["stream_id"]]
                    )
    finally:
        await conn.close()


# ---------------------------------------------------------------------------- baselines


async def baselines(database_url: str, bootstrap: str, n: int) -> dict[str, float]:
    """Raw asyncpg 1-row INSERTs on 4 connections, raw aiokafka produce and consume (per s)."""
    schema = f"bench_load_{uuid.uuid4().hex[:6]}"
    topic = f"bench.load.{uuid.uuid4().hex[:6]}"
    figures: dict[str, float] = {}
    setup = await asyncpg.connect(database_url)
    try:
        await setup.execute(f'CREATE SCHEMA "{schema}"')
        await setup.execute(f'SET search_path TO "{schema}"')
        await setup.execute(spine.RAW_TABLE)
        conns = [
            await asyncpg.connect(database_url, server_settings={"search_path": schema})
            for _ in range(4)
        ]
        try:
            inserted = await spine.insert_rows(conns, n, 1)
            figures["raw asyncpg INSERT, 1 row/tx, 4 conns"] = n / inserted.wall
        finally:
            for conn in conns:
                await conn.close()
        await setup.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await setup.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    producer = idempotent_producer(bootstrap, "bench-load")
    await producer.start()
    try:
        await spine.create_topic(admin, topic)
        await spine.warm_up(producer, topic)
        produced = await spine.produce_all(producer, topic, n, with_headers=True)
        figures["raw aiokafka produce + CloudEvents headers"] = n / produced.wall
        seen, consumed = await spine.consume_all(bootstrap, topic, n + spine.WARM_UP)
        figures["raw aiokafka consume"] = seen / consumed.wall
        await admin.delete_topics([topic])
    finally:
        await producer.stop()
        await admin.close()
    return figures


# ---------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(one: Round, raw: dict[str, float]) -> None:
    accepted = [s for s in one.sent if 200 <= s.status < 300]
    shed = sum(1 for s in one.sent if s.status == 503)
    other = dict(
        Counter(s.error or s.status for s in one.sent if s.status != 503 and s not in accepted)
    )
    keys = {s.key: s for s in accepted if s.key}
    latencies = [min(one.mails[k]) - s.at for k, s in keys.items() if k in one.mails]
    lost = sum(1 for k in keys if k not in one.mails)
    duplicated = sum(1 for k in keys if len(one.mails.get(k, [])) > 1)
    first = min(s.at for s in one.sent)
    arrivals = [min(one.mails[k]) for k in keys if k in one.mails]
    completed = len(arrivals) / (max(arrivals) - first) if arrivals else 0.0
    in_window = sum(1 for a in arrivals if a <= first + one.seconds) / one.seconds
    answers = [s.answered - s.at for s in one.sent]
    print(f"\n## offered {one.rate}/s for {one.seconds:.0f} s ({len(one.sent)} POSTs)")
    print(
        f"accepted {len(accepted) / one.seconds:.1f}/s, shed (503) {shed}, "
        f"other answers {other or 'none'}; "
        f"completed {completed:.1f}/s, mails within the window {in_window:.1f}/s; "
        f"lost {lost}, duplicated {duplicated}"
    )
    print(
        "POST -> mail   p50 {:.3f} s  p95 {:.3f} s  p99 {:.3f} s  max {:.3f} s".format(
            pct(latencies, 0.5),
            pct(latencies, 0.95),
            pct(latencies, 0.99),
            max(latencies, default=float("nan")),
        )
    )
    print(f"POST answered  p50 {pct(answers, 0.5):.3f} s  p99 {pct(answers, 0.99):.3f} s")
    done = max(len(arrivals), 1)
    ours = {k: v for k, v in one.cpu.items() if k not in ("smtp-sink", "load generator")}
    net = {k: max(0.0, v - one.idle.get(k, 0.0) * one.elapsed) for k, v in ours.items()}
    print(
        f"CPU per completed request: {1000 * sum(ours.values()) / done:.2f} ms in all, "
        f"{1000 * sum(net.values()) / done:.2f} ms beyond the idle system's "
        f"({sum(one.idle[k] for k in ours if k in one.idle):.3f} CPU s/s over "
        f"{one.elapsed:.0f} s), of which (in all / beyond idle)"
    )
    for name, seconds in sorted(ours.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<16} {1000 * seconds / done:6.2f} ms  {1000 * net[name] / done:6.2f} ms")
    for name in ("smtp-sink", "load generator"):
        print(f"  (not counted) {name:<16} {1000 * one.cpu.get(name, 0) / done:6.2f} ms")
    print("stages, seconds after the POST:")
    for name, values in sorted(one.stages.items(), key=lambda kv: pct(kv[1], 0.5)):
        print(f"  {name:<40} p50 {pct(values, 0.5):.3f}  p99 {pct(values, 0.99):.3f}")
    print(f"  {'mail in the SMTP sink':<40} p50 {pct(latencies, 0.5):.3f}  "
          f"p99 {pct(latencies, 0.99):.3f}")  # fmt: skip
    for name, rate in raw.items():
        print(f"  completed / {name} ({rate:,.0f}/s): {completed / rate:.4f}x")


async def kill_replicas(system: System, after: float) -> list[str]:
    """`after` seconds on, SIGKILL every second replica of the consumer services (their
    partitions move to the first); returns their names. They are left out of the system's
    processes from then on (their CPU of that round is not counted)."""
    await asyncio.sleep(after)
    killed = []
    for name in [f"{service}-2" for service in CONSUMERS]:
        if (process := system.processes.pop(name, None)) is not None:
            system.commands.pop(name, None)
            process.kill()
            await asyncio.to_thread(process.wait)
            killed.append(name)
    print(f"killed {', '.join(killed)} {after:.0f} s into the first round", flush=True)
    return killed


async def run(
    system: System, rates: list[int], seconds: float, drain: float, kill_after: float | None
) -> list[Round]:
    headers = bearer(ANNE, audience="intake", signer=system.signer(), organisation="acme")
    seen: dict[Path, None] = {}
    done: list[Round] = []
    intake = RawClient(system.url("intake"), headers)
    try:
        # warm up: connections, prepared statements, every consumer's first batch
        warm = await offer(intake, 10, 2, 10_000_000)
        mails: dict[str, list[float]] = {}
        await wait_for_mails(system.mail_folder, {s.key for s in warm if s.key}, seen, mails, drain)
        before = cpu_snapshot(system)
        await asyncio.sleep(IDLE_SECONDS)
        after = cpu_snapshot(system)
        idle = {k: (after[k] - before.get(k, 0.0)) / IDLE_SECONDS for k in after}
        first = 0
        for rate in rates:
            one = Round(rate, seconds)
            one.idle = idle
            before, began = cpu_snapshot(system), time.monotonic()
            killing = (
                asyncio.create_task(kill_replicas(system, kill_after))
                if kill_after is not None and not done
                else None
            )
            one.sent = await offer(intake, rate, seconds, first)
            if killing is not None:
                await killing
            first += len(one.sent)
            keys = {s.key for s in one.sent if s.key and 200 <= s.status < 300}
            await wait_for_mails(system.mail_folder, keys, seen, one.mails, drain)
            after = cpu_snapshot(system)
            one.elapsed = time.monotonic() - began
            one.cpu = {k: after[k] - before.get(k, 0.0) for k in after}
            done.append(one)
            await asyncio.sleep(2)
            read_mails(system.mail_folder, seen, one.mails)  # late duplicates count
    finally:
        await intake.close()
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="40,80,120")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--drain", type=float, default=60)
    parser.add_argument("--baseline-records", type=int, default=5000)
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="processes of each consumer service (workflow, sla, notifier)",
    )
    parser.add_argument(
        "--kill-replica-after",
        type=float,
        help="seconds into the first round to SIGKILL the second replica of each (--replicas 2)",
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (ROOT / ".state/infra.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    state = Path(tempfile.mkdtemp(prefix="bench-load-"))
    name = f"bench_load_{uuid.uuid4().hex[:6]}"
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} cores", flush=True)
    with isolated_system(
        env["DATABASE_URL"],
        env["KAFKA_BOOTSTRAP_SERVERS"],
        state,
        name,
        environment=ENVIRONMENT,
        replicas={service: args.replicas for service in CONSUMERS if args.replicas > 1},
    ) as system:
        raw = asyncio.run(
            baselines(env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"], args.baseline_records)
        )
        for label, rate in raw.items():
            print(f"baseline {label}: {rate:,.0f}/s", flush=True)
        rounds = asyncio.run(run(system, rates, args.seconds, args.drain, args.kill_replica_after))
        asyncio.run(stages(system, rounds))
        for one in rounds:
            report(one, raw)
        print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
