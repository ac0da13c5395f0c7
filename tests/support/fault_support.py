"""Fault-injection helpers: a private PostgreSQL and Kafka that a test may restart, a steady
open-loop client of intake, and the read-outs that say whether anything was lost or doubled."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from identity_support import bearer

from desk_contracts.topics import MAIN_TOPICS, dead_letter
from desk_platform.deadletter import ERROR, ORIGIN_GROUP
from desk_platform.identity import Signer

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deploy" / "local" / "infra.sh"
SCHEMAS = ("intake", "workflow", "sla", "notifier")


@dataclass
class PrivateInfra:
    """A PostgreSQL cluster and a Kafka broker of one test's own (state in `state`): restarting
    them disturbs nobody else's tests."""

    state: Path
    database_url: str = ""
    kafka_bootstrap: str = ""
    started_at: float = field(default_factory=time.monotonic)  # for the test's whole duration

    def _run(self, *args: str, timeout: float = 180.0) -> str:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
        }
        env["DESK_STATE_DIR"] = str(self.state)
        result = subprocess.run(
            ["bash", str(INFRA), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"infra.sh {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> None:
        for line in self._run("start").splitlines():
            name, _, value = line.partition("=")
            if name == "DATABASE_URL":
                self.database_url = value.strip()
            elif name == "KAFKA_BOOTSTRAP_SERVERS":
                self.kafka_bootstrap = value.strip()
        if not (self.database_url and self.kafka_bootstrap):
            raise RuntimeError(f"infra.sh start in {self.state} did not report both servers")

    def restart_postgres(self) -> float:
        """Crash PostgreSQL (immediate shutdown: recovery at start) and start it on its port."""
        started = time.monotonic()
        self._run("restart-postgres", "--crash", timeout=120)
        return time.monotonic() - started

    def restart_kafka(self) -> float:
        """Stop the broker and start it again on its ports. Not SIGKILL: a killed KRaft broker
        cannot register again before its old session expires (9 s more of outage, no other
        difference to the clients)."""
        started = time.monotonic()
        self._run("restart-kafka", timeout=120)
        return time.monotonic() - started

    def stop(self) -> None:
        self._run("stop", timeout=120)


@contextmanager
def private_infra(state: Path) -> Iterator[PrivateInfra]:
    """Fresh servers in `state` (what an earlier run left there is stopped and removed first),
    stopped after; their logs stay in `state` for a post-mortem, their data does not."""
    infra = PrivateInfra(state)
    if state.exists():
        infra.stop()
        shutil.rmtree(state)
    state.mkdir(parents=True)
    try:
        infra.start()
        yield infra
    finally:
        infra.stop()
        shutil.rmtree(state / "postgres" / "data", ignore_errors=True)
        shutil.rmtree(state / "kafka" / "data", ignore_errors=True)


REQUESTERS = (
    ("anne@acme.example", "acme", "fr"),
    ("bruno@acme.example", "acme", "fr"),
    ("carla@globex.example", "globex", "en"),
    ("dan@initech.example", "initech", "en"),
)


@dataclass
class Offer:
    """One request the client wants accepted, and what happened to it."""

    number: int
    idempotency_key: str
    requester: str
    attempts: int = 0
    answers: list[str] = field(default_factory=list)  # status code or error name, per attempt
    ticket_id: str | None = None
    key: str | None = None
    created: bool = False
    refused: str | None = None  # a 4xx: the client would not retry

    def body(self) -> dict[str, str]:
        requester, organisation, language = REQUESTERS[self.number % len(REQUESTERS)]
        return {
            "policy_id": "saas-desk",
            "request_type": "problem_report",
            "priority": "medium",
            "subject": f"Export {self.number} fails",
            "description": f"Steady load, request {self.number}",
            "organisation_id": organisation,
            "requester": requester,
            "language": language,
        }


@dataclass
class SteadyLoad:
    """An open-loop client: a new request every 1/`rate` s for `duration` s whatever the
    answers, each retried with the same Idempotency-Key on connection errors and 5xx (a 503's
    Retry-After honoured), as a real client would, until `patience` s after it was first sent.
    Each request is sent by its requester, with an identity `signer` signs (the system's key)."""

    intake_url: str
    run_id: str
    signer: Signer
    rate: float = 6.0
    duration: float = 50.0
    patience: float = 60.0
    offers: list[Offer] = field(default_factory=list)

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.intake_url, timeout=5.0) as client:
            tasks = []
            started = time.monotonic()
            for number in range(int(self.rate * self.duration)):
                await asyncio.sleep(max(0.0, started + number / self.rate - time.monotonic()))
                offer = Offer(number, f"{self.run_id}-{number}", REQUESTERS[number % 4][0])
                self.offers.append(offer)
                tasks.append(asyncio.create_task(self._offer(client, offer)))
            await asyncio.gather(*tasks)

    async def _offer(self, client: httpx.AsyncClient, offer: Offer) -> None:
        deadline = time.monotonic() + self.patience
        pause = 0.25
        requester, organisation, _ = REQUESTERS[offer.number % len(REQUESTERS)]
        identity = bearer(
            requester, audience="intake", organisation=organisation, signer=self.signer
        )
        while True:
            offer.attempts += 1
            retry_after = 0.0
            try:
                response = await client.post(
                    "/requests",
                    json=offer.body(),
                    headers={"Idempotency-Key": offer.idempotency_key, **identity},
                )
                offer.answers.append(str(response.status_code))
                if response.status_code in (200, 201):
                    answer = response.json()
                    if offer.ticket_id not in (None, answer["ticket_id"]):
                        offer.refused = (
                            f"one key, two tickets: {offer.ticket_id} then {answer['ticket_id']}"
                        )
                    offer.ticket_id, offer.key = answer["ticket_id"], answer["key"]
                    offer.created = offer.created or response.status_code == 201
                    return
                if response.status_code < 500:
                    offer.refused = f"{response.status_code} {response.text[:300]}"
                    return
                retry_after = float(response.headers.get("Retry-After", "0") or 0)
            except httpx.TransportError as error:
                offer.answers.append(type(error).__name__)
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(min(max(pause, retry_after), 2.0))
            pause = min(pause * 2, 2.0)

    def accepted(self) -> list[Offer]:
        return [o for o in self.offers if o.ticket_id is not None and o.refused is None]

    def answers(self) -> dict[str, int]:
        """How often each answer came (status codes, transport errors), over every attempt."""
        return dict(Counter(a for o in self.offers for a in o.answers))


async def not_in_workflow(workflow_url: str, offers: list[Offer], signer: Signer) -> dict[str, str]:
    """The requests workflow does not show with exactly their `TicketCreated` history, and what
    it shows instead (by request key), read by an agent of their desk (`signer` signs who)."""
    wrong: dict[str, str] = {}
    agent = bearer(
        "paul@desk.example", audience="workflow", roles={"saas-desk": ["agent"]}, signer=signer
    )
    async with httpx.AsyncClient(base_url=workflow_url, timeout=10.0, headers=agent) as client:
        semaphore = asyncio.Semaphore(8)

        async def check(offer: Offer) -> None:
            async with semaphore:
                try:
                    response = await client.get(f"/requests/{offer.key}")
                except httpx.TransportError as error:
                    wrong[str(offer.key)] = type(error).__name__
                    return
            if response.status_code != 200:
                wrong[str(offer.key)] = f"{response.status_code} {response.text[:200]}"
                return
            view = response.json()
            history = [entry["type"] for entry in view["history"]]
            if view["ticket_id"] != offer.ticket_id or history != ["TicketCreated"]:
                wrong[str(offer.key)] = f"ticket {view['ticket_id']}, history {history}"

        await asyncio.gather(*(check(offer) for offer in offers))
    return wrong


def acknowledgements(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """The messages of the SMTP sink by the request key their subject starts with:
    (Message-ID, To) of each, one entry per message received."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(folder.glob("*.eml")):
        with path.open("rb") as raw:
            headers = parser.parse(raw)
        subject = str(headers["Subject"] or "")
        key = subject[1 : subject.find("]")] if subject.startswith("[") else ""
        found.setdefault(key, []).append((str(headers["Message-ID"]), str(headers["To"])))
    return found


async def applied_by_consumers(
    database_url: str, groups: dict[str, str], tickets: set[str]
) -> dict[str, int]:
    """For each consumer group (group -> its service schema), how many of `tickets` it has
    applied an event of (its inbox)."""
    conn = await asyncpg.connect(database_url)
    try:
        counts = {}
        for group, schema in groups.items():
            rows = await conn.fetch(
                f'SELECT DISTINCT stream_id FROM "{schema}".inbox WHERE consumer = $1', group
            )
            counts[group] = len(tickets & {row["stream_id"] for row in rows})
        return counts
    finally:
        await conn.close()


async def deliveries(database_url: str) -> list[dict[str, Any]]:
    """The notifier's recorded messages (sent or not), with their state."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """SELECT ticket_id, recipient, message_id, status, attempts, last_error,
                      next_attempt_at, created_at, sent_at, now() AS checked_at
               FROM notifier.deliveries"""
        )
        return [dict(row) for row in rows]
    finally:
        await conn.close()


async def claimed_deliveries(conn: asyncpg.Connection) -> list[str]:
    """Message-IDs a sender has claimed and not yet marked sent (their next attempt pushed
    into the future by the claim's lease)."""
    rows = await conn.fetch(
        "SELECT message_id FROM notifier.deliveries WHERE status = 'pending' "
        "AND next_attempt_at > now()"
    )
    return [row["message_id"] for row in rows]


async def created_in_intake(database_url: str) -> int:
    """How many `TicketCreated` intake's event store holds (one per request, if none twice)."""
    conn = await asyncpg.connect(database_url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM intake.events WHERE event_type = 'TicketCreated'"
        )
        return int(count)
    finally:
        await conn.close()


async def parked_rows(database_url: str) -> list[dict[str, Any]]:
    """Every parked event of every service schema (a ticket a consumer stopped applying)."""
    conn = await asyncpg.connect(database_url)
    try:
        found: list[dict[str, Any]] = []
        for schema in SCHEMAS:
            rows = await conn.fetch(
                f'SELECT consumer, stream_id, event_id, reason FROM "{schema}".parked'
            )
            found += [{"schema": schema, **dict(row)} for row in rows]
        return found
    finally:
        await conn.close()


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    group: str
    event_id: str
    error: str


async def dead_letters(bootstrap: str, prefix: str) -> list[DeadLetter]:
    """Every record of the run's dead-letter topics, read from the beginning to the end."""
    topics = [dead_letter(prefix + topic) for topic in MAIN_TOPICS]
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        for _ in range(300):  # without a group, every partition is assigned with the metadata
            partitions = list(consumer.assignment())
            if {tp.topic for tp in partitions} == set(topics):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"dead-letter topics {topics} not all found")
        end = await consumer.end_offsets(partitions)
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    headers = {
                        name: value.decode(errors="replace") for name, value in record.headers
                    }
                    found.append(
                        DeadLetter(
                            record.topic,
                            headers.get(ORIGIN_GROUP, "?"),
                            headers.get("ce_id", "?"),
                            headers.get(ERROR, "?"),
                        )
                    )
    finally:
        await consumer.stop()
    return found


async def applied_later(database_url: str, letters: list[DeadLetter]) -> list[DeadLetter]:
    """The dead letters whose event the consumer group that gave up on it applied after all."""
    conn = await asyncpg.connect(database_url)
    try:
        applied: set[tuple[str, str]] = set()
        for schema in SCHEMAS:
            rows = await conn.fetch(f'SELECT consumer, event_id FROM "{schema}".inbox')
            applied |= {(row["consumer"], row["event_id"]) for row in rows}
        return [letter for letter in letters if (letter.group, letter.event_id) in applied]
    finally:
        await conn.close()
