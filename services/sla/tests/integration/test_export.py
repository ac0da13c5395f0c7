"""The analysts' export from a real Kafka topic: the log and the request summaries as Parquet
files pyarrow reads back, and one DuckDB file in which both tables are queried at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaProducer
from kafka_support import create_topic, delete_topic
from published import published_envelopes, published_states
from service_support import service_store
from typer.testing import CliRunner

from desk_contracts.base import Event
from desk_contracts.state import STATE_METADATA
from desk_contracts.tickets import Channel, TicketCreated, WorkStarted
from desk_contracts.topics import TICKET_EVENTS
from desk_policies.loader import load_policies
from sla.entrypoints.export import app

pytestmark = pytest.mark.integration

POLICIES = load_policies()
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Geneva


def request(number: int, desk: str, answered_after: timedelta) -> list[Event]:
    """A critical request opened on Monday at 10:00 in Geneva, taken in charge after
    `answered_after`."""
    ticket = str(uuid.uuid4())
    opened = MONDAY + timedelta(minutes=number)
    created = TicketCreated(
        ticket_id=ticket,
        occurred_at=opened,
        key=f"SPT-{number}",
        policy_id=desk,
        request_type="support",
        priority="critical",
        subject="Paie bloquée",
        description="SwissDec refuse la transmission",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )
    started = WorkStarted(
        ticket_id=ticket,
        occurred_at=opened + answered_after,
        actor_id="paul@desk.example",
        actor_role="service_desk",
        from_status=POLICIES[desk].initial_status,
        to_status="in_progress",
    )
    return [created, started]


def stories() -> list[list[Event]]:
    """Three erp-vendor requests (answered in 45, 20 and 90 minutes) and a cloud-partner one."""
    return [
        request(1, "erp-vendor", timedelta(minutes=45)),
        request(2, "erp-vendor", timedelta(minutes=20)),
        request(3, "erp-vendor", timedelta(minutes=90)),
        request(4, "cloud-partner", timedelta(minutes=45)),
    ]


async def publish(bootstrap: str, topic: str) -> None:
    """The stories as workflow's relay publishes them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for events in stories():
            for envelope in published_envelopes(events, POLICIES[events[0].policy_id]):  # type: ignore[attr-defined]
                key, value, headers = envelope.to_kafka()
                await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


@pytest.fixture
def log_prefix(kafka_bootstrap: str) -> Iterator[str]:
    """A topic prefix of this test's own, its `ticket-events` holding the stories; removed
    after the test."""
    prefix = f"t-export-{uuid.uuid4().hex[:8]}-"
    asyncio.run(create_topic(kafka_bootstrap, prefix + TICKET_EVENTS, partitions=6))
    asyncio.run(publish(kafka_bootstrap, prefix + TICKET_EVENTS))
    yield prefix
    asyncio.run(delete_topic(kafka_bootstrap, prefix + TICKET_EVENTS))


def test_the_log_and_the_requests_are_exported_to_parquet_and_duckdb(
    kafka_bootstrap: str, log_prefix: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["--out", str(tmp_path), "--quiet"],
        env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": log_prefix},
    )
    assert result.exit_code == 0, result.output
    check(tmp_path)


def test_the_export_from_workflows_store(database_url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with service_store(database_url, "workflow") as pool:
            schema = await pool.fetchval("SELECT current_schema()")
            rows = []
            for events in stories():
                policy = POLICIES[events[0].policy_id]  # type: ignore[attr-defined]
                for event, state in zip(events, published_states(events, policy), strict=True):
                    metadata = {STATE_METADATA: state.model_dump(mode="json")}
                    rows.append(
                        (
                            event.ticket_id,
                            state.version,
                            uuid.uuid4(),
                            event.event_type,
                            event.model_dump_json(),
                            json.dumps(metadata),
                        )
                    )
            await pool.executemany(
                "INSERT INTO events (stream_id, stream_version, event_id, event_type, payload,"
                " metadata) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
                rows,
            )
            arguments = ["--out", str(tmp_path), "--quiet", "--source", "store", "--schema", schema]
            result = await asyncio.to_thread(
                CliRunner().invoke, app, arguments, env={"DATABASE_URL": database_url}
            )
            assert result.exit_code == 0, result.output

    asyncio.run(scenario())
    check(tmp_path)


def check(tmp_path: Path) -> None:
    """The files of the export of the stories."""
    events = pq.read_table(tmp_path / "events.parquet").to_pylist()
    assert len(events) == 8  # four requests, two events each
    created = next(e for e in events if e["type"] == "TicketCreated" and e["desk"] == "erp-vendor")
    assert (created["version"], created["actor"]) == (1, "anne@acme.example")
    assert created["occurred_at"].tzinfo is not None
    assert '"subject":"Paie bloquée"' in created["data"].replace(": ", ":")
    started = next(e for e in events if e["type"] == "WorkStarted")
    assert (started["version"], started["actor"]) == (2, "paul@desk.example")

    requests = {r["key"]: r for r in pq.read_table(tmp_path / "requests.parquet").to_pylist()}
    assert set(requests) == {"SPT-1", "SPT-2", "SPT-3", "SPT-4"}
    first = requests["SPT-1"]
    assert (first["desk"], first["priority"]) == ("erp-vendor", "critical")
    assert first["status"] == "in_progress"
    assert (first["response_verdict"], first["response_elapsed"], first["response_target"]) == (
        "kept",
        45.0,
        60.0,
    )
    assert first["resolution_verdict"] == "open"

    with duckdb.connect(str(tmp_path / "desk.duckdb"), read_only=True) as con:
        rows = con.execute(
            """SELECT r.key, count(*) AS events, max(e.occurred_at) - min(e.occurred_at)
               FROM events e JOIN requests r USING (ticket_id)
               WHERE r.desk = 'erp-vendor' AND r.response_verdict = 'kept'
               GROUP BY r.key ORDER BY r.key"""
        ).fetchall()
    assert rows == [("SPT-1", 2, timedelta(minutes=45)), ("SPT-2", 2, timedelta(minutes=20))]
    breached = requests["SPT-3"]
    assert (breached["response_verdict"], breached["response_elapsed"]) == ("breached", 90.0)
