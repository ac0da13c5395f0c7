"""The what-if command on the real servers: a log replayed from a real Kafka topic (its own
prefix) and from a real workflow store, under the shipped example scenario, with nothing
written anywhere (no consumer group, a read-only snapshot of the store)."""

from __future__ import annotations

import asyncio
import csv
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from kafka_support import create_topic, delete_topic
from published import published_envelopes, published_states
from service_support import service_store
from typer.testing import CliRunner

from desk_contracts.base import Event
from desk_contracts.state import STATE_HEADER, STATE_METADATA
from desk_contracts.tickets import Channel, TicketCreated, WorkStarted
from desk_contracts.topics import TICKET_EVENTS
from desk_policies.loader import load_policies
from sla.entrypoints.whatif import app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "docs" / "whatif" / "erp-vendor-critical-30min-saturday.yaml"
POLICIES = load_policies()
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Geneva


def request(number: int, desk: str, priority: str, answered_after: timedelta) -> list[Event]:
    """A request opened on Monday at 10:00 in Geneva and taken in charge `answered_after`."""
    ticket = str(uuid.uuid4())
    opened = MONDAY + timedelta(minutes=number)
    return [
        TicketCreated(
            ticket_id=ticket,
            occurred_at=opened,
            key=f"SPT-{number}",
            policy_id=desk,
            request_type="support",
            priority=priority,
            subject="Paie bloquée",
            description="SwissDec refuse la transmission",
            organisation_id="acme",
            requester_id="anne@acme.example",
            created_by="anne@acme.example",
            channel=Channel.PORTAL,
        ),
        WorkStarted(
            ticket_id=ticket,
            occurred_at=opened + answered_after,
            actor_id="paul@desk.example",
            actor_role="service_desk",
            from_status=POLICIES[desk].initial_status,
            to_status="in_progress",
        ),
    ]


def stories() -> Iterator[list[Event]]:
    yield request(1, "erp-vendor", "critical", timedelta(minutes=45))  # kept now, breached then
    yield request(2, "erp-vendor", "critical", timedelta(minutes=20))  # kept both ways
    yield request(3, "erp-vendor", "low", timedelta(minutes=45))  # kept both ways
    # terms unchanged; "in progress" does not stop its response clock, still open (45 of its 60
    # minutes) at the log's last event, where the clocks are read (the log ends before --to)
    yield request(4, "cloud-partner", "critical", timedelta(minutes=45))


def replayed(tmp_path: Path, *options: str, env: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Run the command on the example; the CSV files it wrote, as rows."""
    arguments = ["--policy", str(EXAMPLE), "--from", "2026-03-01", "--to", "2026-04-01"]
    for name in ("csv", "changes", "png"):
        suffix = "png" if name == "png" else "csv"
        file = "changes" if name == "changes" else "compliance"
        arguments += [f"--{name}", str(tmp_path / f"{file}.{suffix}")]
    result = CliRunner().invoke(app, [*arguments, "--quiet", *options], env=env)
    assert result.exit_code == 0, result.output
    assert "Requests whose verdict changes (1 clocks" in result.output
    if "--source" not in options:
        said = " ".join(result.output.split())  # as one line, however the terminal wraps it
        assert "0 duplicates, 1 unreadable states and 0 of requests on test clocks" in said
    files = {}
    for name in ("compliance", "changes"):
        with (tmp_path / f"{name}.csv").open(encoding="utf-8") as rows:
            files[name] = list(csv.DictReader(rows))
    assert (tmp_path / "compliance.png").stat().st_size > 10_000
    return files


def check(files: dict[str, list[dict[str, str]]]) -> None:
    (change,) = files["changes"]
    assert (change["key"], change["clock"]) == ("SPT-1", "response")
    assert (change["verdict_now"], change["verdict_alternative"]) == ("kept", "breached")
    critical = next(r for r in files["compliance"] if r["priority"] == "critical")
    assert critical["requests"] == "3"  # erp-vendor's two and cloud-partner's
    breached = (critical["response_breached_now"], critical["response_breached_alternative"])
    assert breached == ("0", "1")


async def groups(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {group[0] for group in await admin.list_consumer_groups()}
    finally:
        await admin.close()


async def publish(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for events in stories():
            for envelope in published_envelopes(events, POLICIES[events[0].policy_id]):  # type: ignore[attr-defined]
                key, value, headers = envelope.to_kafka()
                await producer.send_and_wait(topic, value, key=key, headers=headers)
        # a record whose state is not JSON: skipped and counted, the replay goes on
        broken = [(n, b"{not json" if n == STATE_HEADER else v) for n, v in headers]
        await producer.send_and_wait(topic, value, key=b"broken", headers=broken)
    finally:
        await producer.stop()


@pytest.fixture
def log_prefix(kafka_bootstrap: str) -> Iterator[str]:
    """A topic prefix of this test's own, its `ticket-events` holding the stories; removed
    after the test."""
    prefix = f"t-whatif-{uuid.uuid4().hex[:8]}-"
    asyncio.run(create_topic(kafka_bootstrap, prefix + TICKET_EVENTS, partitions=6))
    asyncio.run(publish(kafka_bootstrap, prefix + TICKET_EVENTS))
    yield prefix
    asyncio.run(delete_topic(kafka_bootstrap, prefix + TICKET_EVENTS))


def test_the_example_replayed_from_kafka(
    kafka_bootstrap: str, log_prefix: str, tmp_path: Path
) -> None:
    prefix = log_prefix
    before = asyncio.run(groups(kafka_bootstrap))
    files = replayed(
        tmp_path, env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TOPIC_PREFIX": prefix}
    )
    check(files)
    assert asyncio.run(groups(kafka_bootstrap)) == before  # nobody's offsets, no new group


def test_the_example_replayed_from_the_store(database_url: str, tmp_path: Path) -> None:
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
            files = await asyncio.to_thread(
                replayed,
                tmp_path,
                "--source",
                "store",
                "--schema",
                schema,
                env={"DATABASE_URL": database_url},
            )
            check(files)
            assert await pool.fetchval("SELECT count(*) FROM events") == len(rows)

    asyncio.run(scenario())
