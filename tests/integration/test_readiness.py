"""`/ready` on the real servers: 503 naming the check and why when a relay does not advance, a
consumer makes no progress, the notifier keeps a message too long or PostgreSQL is out of reach;
200 when all is well (and again once the cause is gone); `/health` stays "alive" throughout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from e2e_support import _fresh_database, _fresh_topics
from system import ROOT, free_port
from tcp_proxy import TcpProxy

from desk_contracts.envelope import Envelope
from desk_contracts.tickets import TicketCreated
from desk_contracts.topics import dead_letter
from desk_eventstore.db import open_store
from desk_eventstore.records import NewEvent
from desk_eventstore.relay import RELAY_LOCK_CLASS, OutboxRelay
from desk_eventstore.store import append
from desk_platform.consumer import PoisonMessage
from desk_platform.metrics import Metrics
from desk_platform.readiness import Verdict, kafka_probe, outbox_probe
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings

pytestmark = pytest.mark.integration


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """The first truthy result of `probe()`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout}s")
        await asyncio.sleep(0.2)


async def ready_status(http: httpx.AsyncClient, status: int) -> dict[str, Any] | None:
    """The /ready body when it answers `status`, else None."""
    answer = await http.get("/ready")
    return answer.json() if answer.status_code == status else None


@pytest.fixture(scope="module")
async def prefix(kafka_bootstrap: str) -> str:
    """Fresh topics (the runtime waits for every main topic and its dead-letter twin)."""
    name = f"ready-{uuid.uuid4().hex[:8]}."
    await _fresh_topics(kafka_bootstrap, name)
    return name


@contextlib.asynccontextmanager
async def running(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    """The runtime running in this process; a client of its HTTP API (here: /ready & co)."""
    task = asyncio.create_task(runtime.run())
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.settings.http_port}", timeout=10)

    async def answers() -> bool:
        if task.done():
            task.result()  # the runtime died: say why
        try:
            return (await http.get("/health")).status_code == 200
        except httpx.TransportError:
            return False

    try:
        await eventually(answers)
        yield http
    finally:
        await http.aclose()
        runtime.stop.set()
        await task
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if runtime.pool is not None:
            conn = await asyncpg.connect(runtime.settings.database_url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{runtime.name}" CASCADE')
            finally:
                await conn.close()


def settings(database_url: str, kafka_bootstrap: str, prefix: str, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        http_port=free_port(),
        ready_relay_seconds=1,
        ready_consumer_seconds=1,
        **extra,
    )


def created(ticket: str) -> NewEvent:
    return NewEvent.from_event(
        TicketCreated(
            ticket_id=ticket,
            occurred_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
            key="SPT-1",
            policy_id="erp-vendor",
            request_type="SPT",
            priority="high",
            subject="Erreur SwissDec",
            description="La transmission échoue",
            organisation_id="acme",
            requester_id="anne@acme.example",
            created_by="anne@acme.example",
            channel="portal",
        )
    )


async def test_a_relay_that_cannot_publish_makes_ready_503_until_it_can(
    database_url: str, kafka_bootstrap: str, prefix: str
) -> None:
    missing = f"nowhere-{uuid.uuid4().hex[:8]}"  # the broker creates no topic by itself
    runtime = ServiceRuntime(
        f"t_ready_{uuid.uuid4().hex[:8]}",
        settings(database_url, kafka_bootstrap, prefix),
        topic_for=lambda event: missing,
    )
    async with running(runtime) as http:
        healthy = await eventually(lambda: ready_status(http, 200))
        assert healthy["status"] == "ready"
        assert set(healthy["checks"]) == {"postgres", "kafka", "relay"}
        published = {"ok": True, "detail": "leader: every event is published"}
        assert healthy["checks"]["relay"] == published

        assert runtime.pool is not None
        async with runtime.pool.acquire() as conn:
            await append(conn, "t-1", None, [created("t-1")])
        stuck = await eventually(lambda: ready_status(http, 503))
        assert stuck["status"] == "not ready"
        assert stuck["failing"] == ["relay"]
        detail = stuck["checks"]["relay"]["detail"]
        assert detail.startswith("leader: relay not advancing: 1 events wait, the oldest for")
        assert re.search(r"the checkpoint last moved \d+ s ago \(threshold 1 s\)$", detail)
        assert (await http.get("/health")).json() == {"status": "alive"}
        metrics = (await http.get("/metrics")).text
        assert 'desk_ready{check="relay"} 0.0' in metrics
        assert "desk_outbox_lag_events 1.0" in metrics

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(prefix + missing, 1, 1)])
        finally:
            await admin.close()
        again = await eventually(lambda: ready_status(http, 200))
        assert again["checks"]["relay"]["detail"] == "leader: every event is published"
        assert 'desk_ready{check="relay"} 1.0' in (await http.get("/metrics")).text


async def test_a_consumer_retrying_the_same_record_makes_ready_503(
    database_url: str, kafka_bootstrap: str, prefix: str
) -> None:
    topic = f"stuck-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(prefix + topic, 1, 1)])
    finally:
        await admin.close()

    async def handle(*_: Any) -> None:
        raise OSError("database went away")  # transient: the record is consumed again

    runtime = ServiceRuntime(
        f"t_ready_{uuid.uuid4().hex[:8]}", settings(database_url, kafka_bootstrap, prefix)
    )
    runtime.subscribe(topic, handle)
    group = f"{runtime.name}.{prefix}{topic}"
    async with running(runtime) as http:
        first = await eventually(lambda: ready_status(http, 200))
        assert first["checks"][f"consumer:{group}"]["ok"]

        key, value, headers = Envelope(
            id=str(uuid.uuid4()),
            type="TicketCreated",
            source="/test",
            subject="t-1",
            time=datetime.now(UTC),
            data=created("t-1").payload,
        ).to_kafka()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(prefix + topic, value, key=key, headers=headers)
        finally:
            await producer.stop()

        stuck = await eventually(lambda: ready_status(http, 503))
        assert stuck["failing"] == [f"consumer:{group}"]
        detail = stuck["checks"][f"consumer:{group}"]["detail"]
        where = f"{prefix}{topic}/0"
        assert detail.startswith(f"not making progress: {where}: 1 records wait at offset 0")
        assert detail.endswith("(threshold 1 s)")
        assert (await http.get("/health")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert f'desk_consumer_lag_records{{group="{group}",partition="0"}} 1.0' in metrics


async def test_metrics_count_what_each_consumer_group_did(
    database_url: str, kafka_bootstrap: str, prefix: str
) -> None:
    """A record applied, the same again, a poison one, and its ticket's next one held behind it:
    the group's counters say so (and the process's HTTP answers are counted)."""
    topic = f"counted-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(prefix + topic, 1, 1), NewTopic(dead_letter(prefix + topic), 1, 1)]
        )
    finally:
        await admin.close()

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        if envelope.subject == "t-poison":
            raise PoisonMessage("this one can never be applied")

    runtime = ServiceRuntime(
        f"t_counts_{uuid.uuid4().hex[:8]}", settings(database_url, kafka_bootstrap, prefix)
    )
    runtime.subscribe(topic, handle)
    group = f"{runtime.name}.{prefix}{topic}"

    def record(ticket: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        return Envelope(
            id=str(uuid.uuid4()),
            type="TicketCreated",
            source="/test",
            subject=ticket,
            time=datetime.now(UTC),
            data=created(ticket).payload,
        ).to_kafka()

    applied = record("t-1")
    async with running(runtime) as http:
        await eventually(lambda: ready_status(http, 200))
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for key, value, headers in [applied, applied, record("t-poison"), record("t-poison")]:
                await producer.send_and_wait(prefix + topic, value, key=key, headers=headers)
        finally:
            await producer.stop()
        expected = [
            f'desk_consumer_records_applied_total{{group="{group}"}} 1.0',
            f'desk_consumer_duplicates_skipped_total{{group="{group}"}} 1.0',
            f'desk_consumer_dead_lettered_total{{group="{group}"}} 2.0',
            f'desk_consumer_parked_total{{group="{group}"}} 1.0',
        ]

        async def counted() -> bool:
            metrics = (await http.get("/metrics")).text
            return all(line in metrics.splitlines() for line in expected)

        await eventually(counted)
        answered = (await http.get("/metrics")).text  # the runtime counts its HTTP answers too
        assert 'desk_http_requests_total{method="GET",route="/ready",status="200"}' in answered


async def test_postgres_out_of_reach_makes_ready_503_and_health_stays_alive(
    database_url: str, kafka_bootstrap: str, prefix: str
) -> None:
    proxy = await TcpProxy.to(database_url)
    runtime = ServiceRuntime(
        f"t_ready_{uuid.uuid4().hex[:8]}",
        settings(proxy.url(database_url), kafka_bootstrap, prefix),
        topic_for=lambda event: "ticket-events",
    )
    try:
        async with running(runtime) as http:
            await eventually(lambda: ready_status(http, 200))
            await proxy.cut()
            down = await eventually(lambda: ready_status(http, 503))
            assert "postgres" in down["failing"]
            assert not down["checks"]["postgres"]["ok"]
            assert down["checks"]["kafka"]["ok"]
            assert (await http.get("/health")).json() == {"status": "alive"}
            await proxy.restore()
            back = await eventually(lambda: ready_status(http, 200))
            assert back["checks"]["postgres"] == {"ok": True, "detail": "answers"}
    finally:
        await proxy.close()


async def test_the_relay_check_tells_a_standby_from_a_store_nobody_relays(
    database_url: str,
) -> None:
    schema = f"t_ready_{uuid.uuid4().hex[:8]}"
    pool = await open_store(database_url, schema)
    relay = OutboxRelay(database_url, schema, None, lambda event: "x", source="/t")  # type: ignore[arg-type]
    probe = outbox_probe(pool, relay, 30, Metrics())
    other = await asyncpg.connect(database_url)
    try:
        async with pool.acquire() as conn:
            await append(conn, "t-1", None, [created("t-1")])
            await conn.execute("UPDATE events SET recorded_at = now() - interval '1 minute'")
        nobody = await probe()
        assert not nobody.ok
        assert re.match(
            r"no replica holds the relay lock: relay not advancing: 1 events wait, "
            r"the oldest for 6\d s; the checkpoint has never moved \(threshold 30 s\)$",
            nobody.detail,
        ), nobody.detail
        # another replica takes the relay lock, as its relay does
        assert await other.fetchval(
            "SELECT pg_try_advisory_lock($1, hashtext($2 || $3))",
            RELAY_LOCK_CLASS,
            schema,
            relay.name,
        )
        assert await probe() == Verdict(
            True, "standby: another replica's relay publishes this store"
        )
    finally:
        await other.close()
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def test_kafka_out_of_reach_fails_its_check(kafka_bootstrap: str) -> None:
    reachable = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await reachable.start()
    try:
        verdict = await kafka_probe(reachable)()
    finally:
        await reachable.stop()
    assert verdict.ok and verdict.detail == "1 brokers answer"
    nowhere = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(Exception, match="Unable to get cluster metadata"):
        await kafka_probe(nowhere)()


def test_the_notifier_process_with_an_old_pending_message_is_not_ready(
    database_url: str, kafka_bootstrap: str
) -> None:
    name = f"ready_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(_fresh_database(database_url, name))
    asyncio.run(_fresh_topics(kafka_bootstrap, name + "."))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier"],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TOPIC_PREFIX": name + ".",
            "HTTP_PORT": str(port),
            "SMTP_PORT": str(free_port()),  # no relay there: the message stays pending
            "LOG_FORMAT": "json",
        },
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def status(code: int) -> dict[str, Any] | None:
        assert process.poll() is None, "the notifier exited"
        try:
            answer = http.get("/ready")
        except httpx.TransportError:
            return None
        return answer.json() if answer.status_code == code else None

    try:
        ready = wait(lambda: status(200))
        assert ready["checks"]["deliveries"] == {"ok": True, "detail": "no messages pending"}
        asyncio.run(insert_old_delivery(url))
        stuck = wait(lambda: status(503))
        assert stuck["failing"] == ["deliveries"]
        detail = stuck["checks"]["deliveries"]["detail"]
        assert detail.startswith("1 messages pending, the oldest for 36")
        assert detail.endswith("s (threshold 300 s)")  # the default threshold
        assert http.get("/health").json() == {"status": "alive"}
        assert "desk_notifier_pending_messages 1.0" in http.get("/metrics").text
    finally:
        http.close()
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def wait(probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout}s")
        time.sleep(0.2)
    return result


async def insert_old_delivery(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO notifier.deliveries
                   (delivery_key, event_id, ticket_id, recipient, message_id, subject, body,
                    created_at)
               VALUES ('e-1/anne@acme.example', 'e-1', 't-1', 'anne@acme.example',
                       '<e-1@desk.example>', '[SPT-1] Reçu', 'Bonjour',
                       now() - interval '1 hour')"""
        )
    finally:
        await conn.close()
