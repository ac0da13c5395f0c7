"""Whether a process does its whole job (`GET /ready`), apart from whether it lives (`/health`).

A process is ready when PostgreSQL and Kafka answer, its outbox relay advances while events
wait, each of its consumers' committed offsets moves while records wait, and its service's own
checks pass (the notifier: no message pending too long). `/health` only says the process
answers: an orchestrator restarts a dead process, an alert points at a stuck one.

Three parts, kept apart:
- decisions, pure: observations and the time in, a `Verdict` out (unit-tested without servers);
- probes, the I/O: gather the observations from PostgreSQL and Kafka and set the metrics;
- `Readiness`, the checks of one process, and the routes serving `/health`, `/ready`, `/metrics`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response

from desk_eventstore.relay import RELAY_LOCK_CLASS, OutboxRelay
from desk_platform.metrics import CONTENT_TYPE, Metrics

# --- decisions (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One check's outcome and, in words, the facts it rests on."""

    ok: bool
    detail: str


def _seconds(now: datetime, then: datetime) -> float:
    return max((now - then).total_seconds(), 0.0)


LEADER, STANDBY, NO_LEADER = "leader", "standby", "no leader"


@dataclass(frozen=True)
class OutboxObservation:
    """A store's outbox as seen at `now` (the database's clock, like the other timestamps)."""

    role: str  # LEADER: this process publishes; STANDBY: another does; NO_LEADER: nobody does
    waiting: int  # events after the relay's checkpoint
    oldest_waiting_at: datetime | None  # when the first of them was recorded
    advanced_at: datetime | None  # when the checkpoint last moved (None: never)
    now: datetime


def outbox_verdict(seen: OutboxObservation, threshold: float) -> Verdict:
    """Stuck when events have waited `threshold` seconds and the checkpoint has not moved for
    as long (a relay catching up on a backlog moves it at every batch). A standby is fine: only
    the leader is judged, and nobody leading while events wait is judged like a stuck leader."""
    if seen.role == STANDBY:
        return Verdict(True, "standby: another replica's relay publishes this store")
    who = "leader" if seen.role == LEADER else "no replica holds the relay lock"
    if seen.waiting == 0 or seen.oldest_waiting_at is None:
        return Verdict(True, f"{who}: every event is published")
    waited = _seconds(seen.now, seen.oldest_waiting_at)
    if seen.advanced_at is None:
        still, moved = waited, "has never moved"
    else:
        unmoved = _seconds(seen.now, seen.advanced_at)
        still, moved = min(waited, unmoved), f"last moved {unmoved:.0f} s ago"
    facts = f"{seen.waiting} events wait, the oldest for {waited:.0f} s; the checkpoint {moved}"
    if still < threshold:
        return Verdict(True, f"{who}: {facts}")
    return Verdict(False, f"{who}: relay not advancing: {facts} (threshold {threshold:g} s)")


Partition = tuple[str, int]  # topic, partition number


@dataclass(frozen=True)
class PartitionProgress:
    """A partition's committed offset, its end, and since when records wait without the
    committed offset moving (reset whenever it moves or nothing waits)."""

    committed: int
    end: int
    since: datetime


def track(
    before: Mapping[Partition, PartitionProgress],
    offsets: Mapping[Partition, tuple[int, int]],
    now: datetime,
) -> dict[Partition, PartitionProgress]:
    """The progress after observing `offsets` (committed, end) of the assigned partitions at
    `now`: a partition waits since the first observation that found records waiting with the
    committed offset where it was; partitions no longer assigned are forgotten."""
    after: dict[Partition, PartitionProgress] = {}
    for partition, (committed, end) in offsets.items():
        last = before.get(partition)
        if last is None or committed != last.committed or last.committed >= last.end:
            since = now  # new, moved, or nothing waited last time: any wait starts now
        else:
            since = last.since
        after[partition] = PartitionProgress(committed, end, since)
    return after


def stalled_seconds(progress: Mapping[Partition, PartitionProgress], now: datetime) -> float:
    """How long the longest-waiting partition has had records without progress (0: none)."""
    return max(
        (_seconds(now, p.since) for p in progress.values() if p.end > p.committed), default=0.0
    )


def partition_lag(progress: Mapping[Partition, PartitionProgress]) -> dict[str, int]:
    """The records waiting on each partition, by partition number (the label of
    `desk_consumer_lag_records`: a consumer group reads one topic)."""
    return {str(number): max(p.end - p.committed, 0) for (_, number), p in progress.items()}


def consumer_verdict(
    progress: Mapping[Partition, PartitionProgress], now: datetime, threshold: float
) -> Verdict:
    """Stuck when records have waited on an assigned partition for `threshold` seconds while
    its committed offset did not move: the same record retried again and again, or commits
    failing. A replica without partitions is fine (the group's other members hold them)."""
    if not progress:
        return Verdict(True, "no partition assigned to this replica (other members hold them)")
    waiting = sum(max(p.end - p.committed, 0) for p in progress.values())
    stuck = [
        f"{topic}/{number}: {p.end - p.committed} records wait at offset {p.committed}, "
        f"unmoved for {_seconds(now, p.since):.0f} s"
        for (topic, number), p in sorted(progress.items())
        if p.end > p.committed and _seconds(now, p.since) >= threshold
    ]
    if stuck:
        return Verdict(
            False, f"not making progress: {'; '.join(stuck)} (threshold {threshold:g} s)"
        )
    return Verdict(True, f"{len(progress)} partitions assigned, {waiting} records waiting")


def backlog_verdict(
    what: str, pending: int, oldest_at: datetime | None, now: datetime, threshold: float
) -> Verdict:
    """Stuck when the oldest of `pending` pieces of work (e.g. messages to send) has waited
    `threshold` seconds."""
    if pending == 0 or oldest_at is None:
        return Verdict(True, f"no {what} pending")
    age = _seconds(now, oldest_at)
    facts = f"{pending} {what} pending, the oldest for {age:.0f} s"
    if age < threshold:
        return Verdict(True, facts)
    return Verdict(False, f"{facts} (threshold {threshold:g} s)")


@dataclass(frozen=True)
class Report:
    """Every check of a process at one moment; ready when all pass."""

    checks: Mapping[str, Verdict]

    @property
    def ready(self) -> bool:
        return all(verdict.ok for verdict in self.checks.values())

    def body(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not ready",
            "failing": [name for name, verdict in self.checks.items() if not verdict.ok],
            "checks": {
                name: {"ok": verdict.ok, "detail": verdict.detail}
                for name, verdict in self.checks.items()
            },
        }


# --- probes (I/O) -----------------------------------------------------------------------------

Probe = Callable[[], Awaitable[Verdict]]


def postgres_probe(pool: asyncpg.Pool) -> Probe:
    """PostgreSQL answers a query on the service's pool."""

    async def probe() -> Verdict:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return Verdict(True, "answers")

    return probe


def kafka_probe(producer: AIOKafkaProducer) -> Probe:
    """A broker answers a metadata request of the process's producer."""

    async def probe() -> Verdict:
        cluster = await producer.client.fetch_all_metadata()
        return Verdict(True, f"{len(cluster.brokers())} brokers answer")

    return probe


_OUTBOX = """
    SELECT clock_timestamp() AS now, c.updated_at AS advanced_at,
           (SELECT count(*) FROM events
             WHERE global_position > coalesce(c.position, 0)) AS waiting,
           (SELECT recorded_at FROM events WHERE global_position > coalesce(c.position, 0)
             ORDER BY global_position LIMIT 1) AS oldest,
           EXISTS (SELECT 1 FROM pg_locks
                    WHERE locktype = 'advisory' AND granted AND objsubid = 2
                      AND database = (SELECT oid FROM pg_database
                                       WHERE datname = current_database())
                      AND classid = $2::oid AND objid = hashtext($3 || $1)::oid
                      AND pid <> $4) AS led
    FROM (SELECT 1) AS one LEFT JOIN relay_checkpoints AS c ON c.relay = $1"""


def outbox_probe(
    pool: asyncpg.Pool, relay: OutboxRelay, threshold: float, metrics: Metrics
) -> Probe:
    """The store's events after the checkpoint, who holds the relay lock (read from outside the
    relay: its checkpoint row and PostgreSQL's lock table)."""

    async def probe() -> Verdict:
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                _OUTBOX, relay.name, RELAY_LOCK_CLASS, relay.schema, relay.backend_pid or 0
            )
        role = LEADER if relay.is_leader else STANDBY if row["led"] else NO_LEADER
        seen = OutboxObservation(
            role, row["waiting"], row["oldest"], row["advanced_at"], row["now"]
        )
        metrics.relay_leader.set(1 if role == LEADER else 0)
        metrics.outbox_lag.set(seen.waiting)
        metrics.outbox_oldest.set(
            _seconds(seen.now, seen.oldest_waiting_at) if seen.oldest_waiting_at else 0
        )
        return outbox_verdict(seen, threshold)

    return probe


class ConsumerProbe:
    """A consumer group member's committed offsets against the ends of its assigned partitions,
    asked of Kafka through the member's own client; remembers since when each partition waits."""

    def __init__(self, subscriber: Any, group: str, threshold: float, metrics: Metrics) -> None:
        self.subscriber = subscriber  # faststream's subscriber: its `consumer` once started
        self.group = group
        self.threshold = threshold
        self.metrics = metrics
        self.progress: dict[Partition, PartitionProgress] = {}
        self.lagging: set[str] = set()  # the partitions whose lag this probe exposes

    async def __call__(self) -> Verdict:
        consumer = self.subscriber.consumer
        if consumer is None:
            self._forget_lag()
            return Verdict(False, "the consumer is not running")
        try:
            offsets = await _offsets(consumer)
        except Exception:  # what this member reported is no longer known: another may say it
            self._forget_lag()
            raise
        now = datetime.now(UTC)
        self.progress = track(self.progress, offsets, now)
        self._set_lag()
        self.metrics.consumer_stalled.labels(self.group).set(stalled_seconds(self.progress, now))
        return consumer_verdict(self.progress, now, self.threshold)

    def _forget_lag(self) -> None:
        for partition in self.lagging:
            self.metrics.consumer_lag.remove(self.group, partition)
        self.lagging = set()

    def _set_lag(self) -> None:
        """The records waiting on each assigned partition; the series of partitions no longer
        assigned (another member holds them now) removed, so they are counted once."""
        lag = partition_lag(self.progress)
        for gone in self.lagging - set(lag):
            self.metrics.consumer_lag.remove(self.group, gone)
        for partition, records in lag.items():
            self.metrics.consumer_lag.labels(self.group, partition).set(records)
        self.lagging = set(lag)


async def _offsets(consumer: Any) -> dict[Partition, tuple[int, int]]:
    """The committed (else first) and end offsets of each partition assigned to `consumer`."""
    assigned = sorted(consumer.assignment())
    offsets: dict[Partition, tuple[int, int]] = {}
    if assigned:
        ends = await consumer.end_offsets(assigned)
        starts = await consumer.beginning_offsets(assigned)
        committed = await asyncio.gather(*(consumer.committed(tp) for tp in assigned))
        for tp, offset in zip(assigned, committed, strict=True):
            offsets[(tp.topic, tp.partition)] = (starts[tp] if offset is None else offset, ends[tp])
    return offsets


# --- the checks of a process, and their routes ------------------------------------------------


class Readiness:
    """The named checks of one process, run together with a time limit each."""

    def __init__(self, timeout: float = 3.0) -> None:
        self.timeout = timeout
        self.probes: dict[str, Probe] = {}
        self.metrics = Metrics()
        self._lock = asyncio.Lock()

    def add(self, name: str, probe: Probe) -> None:
        """Register a check (a service's composition root adds its own, e.g. the notifier's)."""
        self.probes[name] = probe

    async def report(self) -> Report:
        """Run every check (one evaluation at a time: probes keep state between calls)."""
        async with self._lock:
            names = list(self.probes)
            verdicts = await asyncio.gather(*(self._run(self.probes[name]) for name in names))
        checks = dict(zip(names, verdicts, strict=True))
        for name, verdict in checks.items():
            self.metrics.ready.labels(name).set(1 if verdict.ok else 0)
        return Report(checks)

    async def _run(self, probe: Probe) -> Verdict:
        try:
            return await asyncio.wait_for(probe(), self.timeout)
        except TimeoutError:
            return Verdict(False, f"no answer within {self.timeout:g} s")
        except Exception as error:  # the observation failed: that is the finding
            return Verdict(False, f"cannot observe: {type(error).__name__}: {error}"[:300])


OPERATIONS = frozenset({"/health", "/ready", "/metrics"})  # the paths of `readiness_router`


def readiness_router(readiness: Readiness) -> APIRouter:
    """`/health` (the process answers), `/ready` (200 or 503, each check and why), `/metrics`."""
    router = APIRouter(tags=["operations"])

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    report = {"application/json": {"schema": {"type": "object"}}}  # Report.body()

    @router.get(
        "/ready",
        responses={503: {"description": "a check fails: the body says which", "content": report}},
    )
    async def ready() -> JSONResponse:
        report = await readiness.report()
        return JSONResponse(report.body(), status_code=200 if report.ready else 503)

    @router.get("/metrics")
    async def metrics() -> Response:
        await readiness.report()
        return Response(readiness.metrics.render(), media_type=CONTENT_TYPE)

    return router


def probe_app(name: str) -> FastAPI:
    """The HTTP API of a process that has no other (the notifier, the e-mail gateway)."""
    return FastAPI(title=f"Support desk: {name}", version="1", docs_url=None, redoc_url=None)
