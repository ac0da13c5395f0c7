"""Past capacity intake refuses new work instead of queuing it (`desk_platform.admission`):
intake's app served by uvicorn and the e-mail gateway over real SMTP, on the real PostgreSQL
server, the outbox drained by the real relay to the real Kafka broker. Over the backlog limit a
write gets 503 with `Retry-After` (the mail gateway 451, at RCPT and at DATA) while reads and
`/health`, `/ready`, `/metrics` answer; once the relay has drained the outbox, both take work
again. Over the in-flight limit (a submission held by a row lock), the next one gets 503."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from identity_support import bearer, verifier
from service_support import service_store
from structlog.testing import capture_logs

from desk_eventstore.records import NewEvent
from desk_eventstore.relay import OutboxRelay, idempotent_producer
from desk_eventstore.store import append
from desk_platform.admission import Admission, AdmissionLimits, outbox_backlog
from desk_platform.blobs import FolderBlobStore
from desk_platform.readiness import Readiness, readiness_router
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from intake.adapters.http import create_app
from intake.adapters.smtp import GatewayHandler, serve
from intake.application.mail_gateway import MailGateway
from intake.domain.mail import GatewayConfig

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RELAY = "intake-relay"  # the runtime's name of intake's relay: its checkpoint is the one read
ANNE = bearer("anne@acme.example", audience="intake", organisation="acme")
MX = "mx.test"
CONFIG = GatewayConfig.of(POLICIES, "support@desk.example", authserv_ids=frozenset({MX}))
SUPPORT = "support@saas-desk.example"


def request(**changes: Any) -> dict[str, Any]:
    return {
        "policy_id": "saas-desk",
        "request_type": "problem_report",
        "priority": "high",
        "subject": "The monthly export fails",
        "description": "Error 500 on every export since Monday",
        "organisation_id": "acme",
        "requester": "anne@acme.example",
        **changes,
    }


def now() -> datetime:
    return datetime.now(UTC)


def mail(subject: str = "L'export mensuel échoue") -> EmailMessage:
    message = EmailMessage()
    message["Authentication-Results"] = f"{MX}; spf=pass; dmarc=pass header.from=acme.example"
    message["From"], message["To"] = "Anne Martin <anne@acme.example>", SUPPORT
    message["Subject"], message["Message-ID"] = subject, f"<{uuid.uuid4().hex}@acme.example>"
    message.set_content("Erreur 500 à chaque export depuis lundi.")
    return message


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not within the time allowed")


async def count(pool: asyncpg.Pool, event_type: str | None = None) -> int:
    query = "SELECT count(*) FROM events WHERE $1::text IS NULL OR event_type = $1"
    return int(await pool.fetchval(query, event_type))


@contextlib.asynccontextmanager
async def watched(pool: asyncpg.Pool, limits: AdmissionLimits) -> AsyncIterator[Admission]:
    """An admission of intake's store whose backlog is read every `refresh_seconds`."""
    admission = Admission(outbox_backlog(pool, RELAY), limits)
    stop = asyncio.Event()
    task = asyncio.create_task(admission.watch(stop))
    try:
        yield admission
    finally:
        stop.set()
        await task


async def drain(pool: asyncpg.Pool, database_url: str, kafka: str, topic: str) -> None:
    """Run intake's relay until every event of the store is published, then stop it."""
    schema = await pool.fetchval("SELECT current_schema()")
    last = await pool.fetchval("SELECT coalesce(max(global_position), 0) FROM events")
    producer = idempotent_producer(kafka, "test-shedding")
    await producer.start()
    stop = asyncio.Event()
    relay = OutboxRelay(database_url, schema, producer, lambda _: topic, source="/t", name=RELAY)
    task = asyncio.create_task(relay.run(stop))
    try:
        for _ in range(1500):
            position = await pool.fetchval(
                "SELECT position FROM relay_checkpoints WHERE relay = $1", RELAY
            )
            if position is not None and position >= last:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the relay did not drain the outbox")
    finally:
        stop.set()
        await task
        await producer.stop()


class Quiet(uvicorn.Server):
    """uvicorn without its signal capture: the test runner keeps Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """`app` served by uvicorn on a free port of this machine, and a client of it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = Quiet(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: server.started)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=ANNE, timeout=30
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.asynccontextmanager
async def intake(pool: asyncpg.Pool, admission: Admission) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        pool, POLICIES, lambda: NOW, "http://workflow", verifier=verifier("intake"),
        admission=admission,
    )  # fmt: skip
    readiness = Readiness()
    readiness.metrics = admission.metrics  # one registry, as a runtime's process has
    app.include_router(readiness_router(readiness))
    async with served(app) as client:
        yield client


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "intake") as pool:
        yield pool


async def test_past_the_outbox_backlog_a_request_gets_503_until_the_relay_drains_it(
    pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, new_topic: Any
) -> None:
    limits = AdmissionLimits(max_backlog=1, retry_after_seconds=3, refresh_seconds=0.05)
    with capture_logs() as logs:
        async with watched(pool, limits) as admission, intake(pool, admission) as http:
            for subject in ("One", "Two"):  # a backlog of 0, then 1: admitted
                answer = await http.post("/requests", json=request(subject=subject))
                assert answer.status_code == 201, answer.text
            await until(lambda: admission.backlog == 2)

            refused = [
                await http.post("/requests", json=request(subject="Three")) for _ in range(3)
            ]
            assert [r.status_code for r in refused] == [503] * 3
            assert refused[0].headers["Retry-After"] == "3"
            assert refused[0].json() == {
                "detail": "past capacity: 2 events wait to be published, more than 1; "
                "retry after 3 s"
            }
            assert await count(pool) == 2, "nothing was recorded of the refused ones"
            for path in ("/health", "/ready", "/desks"):  # never shed: reads and operations
                assert (await http.get(path)).status_code == 200, path
            metrics = (await http.get("/metrics")).text
            assert 'desk_shed_total{door="http"} 3.0' in metrics
            assert "desk_shedding 1.0" in metrics
            assert "desk_admission_backlog_events 2.0" in metrics

            await drain(pool, database_url, kafka_bootstrap, await new_topic("shed"))
            await until(lambda: admission.backlog == 0)
            again = await http.post("/requests", json=request(subject="Three"))
            assert again.status_code == 201, again.text
            await until(lambda: not admission.shedding, seconds=5)
            assert "desk_shedding 0.0" in (await http.get("/metrics")).text
    events = [entry for entry in logs if entry["event"].startswith("shedding_")]
    assert [e["event"] for e in events] == ["shedding_started", "shedding_stopped"]
    started, stopped = events
    assert started["reason"] == "2 events wait to be published, more than 1"
    assert started["door"] == "http" and started["backlog"] == 2
    assert stopped["refused"] == 3


async def test_past_the_work_in_flight_the_next_request_gets_503(pool: asyncpg.Pool) -> None:
    limits = AdmissionLimits(max_in_flight=1, refresh_seconds=0.05)
    async with watched(pool, limits) as admission, intake(pool, admission) as http:
        first = await http.post("/requests", json=request(subject="One"))
        assert first.status_code == 201, first.text
        async with pool.acquire() as conn, conn.transaction():
            # the next submission waits for its key's number behind this lock
            await conn.execute("SELECT * FROM key_sequences FOR UPDATE")
            held = asyncio.create_task(http.post("/requests", json=request(subject="Two")))
            await until(lambda: admission.in_flight == 1)
            refused = await http.post("/requests", json=request(subject="Three"))
            assert refused.status_code == 503, refused.text
            assert refused.headers["Retry-After"] == "1"
            assert refused.json()["detail"] == (
                "past capacity: 1 being handled at once, at most 1; retry after 1 s"
            )
            assert (await http.get("/desks")).status_code == 200  # a read is not held back
        assert (await held).status_code == 201
        assert admission.in_flight == 0
        last = await http.post("/requests", json=request(subject="Three"))
        assert last.status_code == 201, last.text
    assert await count(pool, "TicketCreated") == 3


async def smtp(port: int, work: Callable[[smtplib.SMTP], Any]) -> Any:
    def go() -> Any:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo("mx.test")
            return work(client)

    return await asyncio.to_thread(go)


async def something_to_publish(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await append(conn, f"other-{uuid.uuid4()}", 0, [NewEvent(uuid.uuid4(), "Noted", {})])


async def test_past_the_outbox_backlog_the_mail_gateway_answers_451_until_drained(
    pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, new_topic: Any, tmp_path: Path
) -> None:
    limits = AdmissionLimits(max_backlog=0, refresh_seconds=0.05)
    async with watched(pool, limits) as admission:
        core = MailGateway(pool, POLICIES, load_directory(), CONFIG, FolderBlobStore(tmp_path), now)
        decisions: list[str] = []
        handler = GatewayHandler(
            core, {*CONFIG.addresses}, admission=admission, decided=decisions.append
        )
        server = await serve(handler, "127.0.0.1", 0, max_bytes=1 << 20, hostname=MX)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        try:

            def rcpt_then_data(client: smtplib.SMTP) -> tuple[int, bytes]:
                client.mail("anne@acme.example")
                code, _ = client.rcpt(SUPPORT)
                assert code == 250
                # the backlog goes over the limit between RCPT and the end of DATA
                for step in (something_to_publish(pool), until(lambda: admission.backlog == 1)):
                    asyncio.run_coroutine_threadsafe(step, loop).result()
                return client.data(mail().as_bytes())

            code, reply = await smtp(port, rcpt_then_data)
            assert code == 451, reply
            assert reply.startswith(b"4.3.2 Past capacity: 1 events wait to be published"), reply

            def rcpt(client: smtplib.SMTP) -> tuple[int, bytes]:
                client.mail("anne@acme.example")
                return client.rcpt(SUPPORT)

            code, reply = await smtp(port, rcpt)
            assert code == 451, reply
            assert reply == (
                b"4.3.2 Past capacity: 1 events wait to be published, more than 0; try again later"
            )
            assert await count(pool, "TicketCreated") == 0
            assert 'desk_shed_total{door="smtp"} 2.0' in admission.metrics.render().decode()
            assert decisions == ["shed", "shed"]  # each message once, at DATA or at RCPT

            await drain(pool, database_url, kafka_bootstrap, await new_topic("shed-mail"))
            await until(lambda: admission.backlog == 0)
            refused = await smtp(port, lambda client: client.send_message(mail()))
            assert refused == {}, "every recipient took it"
            assert await count(pool, "TicketCreated") == 1
            assert decisions == ["shed", "shed", "new_request"]
        finally:
            server.close()
            await server.wait_closed()
