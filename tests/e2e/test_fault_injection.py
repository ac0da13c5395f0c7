"""Fault injection: a steady load on intake while each process of the system is killed with
SIGKILL and started again (as a supervisor would), then PostgreSQL crashes and Kafka restarts.

Afterwards, within bounded waits: every request the client got accepted is in workflow with
its `TicketCreated` history and applied by every consumer of `ticket-events`; intake created
each once; every acknowledgement reached the SMTP sink, none twice beyond the notifier's
documented crash window (a message sent but not yet marked sent when the notifier dies: at
most one per notifier kill, counted); no dead letter is left over (each `.dlt` record was
applied later, nothing parked). The notifier is killed while it holds claimed messages, so the
test measures how soon a restarted notifier takes them over.

The servers are the test's own (`deploy/local/infra.sh` with its own state folder): the
shared ones of the other tests are never restarted. The counts are printed and written to
`.state/faults/results.json`.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from e2e_support import isolated_system
from fault_support import (
    ROOT,
    PrivateInfra,
    SteadyLoad,
    acknowledgements,
    applied_by_consumers,
    applied_later,
    claimed_deliveries,
    created_in_intake,
    dead_letters,
    deliveries,
    not_in_workflow,
    parked_rows,
    private_infra,
)
from system import System

from desk_contracts.topics import TICKET_EVENTS

pytestmark = pytest.mark.e2e

STATE = ROOT / ".state" / "faults"
RESULTS = STATE / "results.json"
RATE = 5.0  # requests a second, open loop
DURATION = 45.0  # seconds of load; the faults start in its first 30 s
FIRST_FAULT_AT = 2.0
FAULT_EVERY = 4.5  # seconds between the starts of two faults
RECOVERY_TIMEOUT = 90.0  # a restarted process serves again (generous: 2 busy cores)
QUIESCE_TIMEOUT = 45.0  # after the load: everything applied and sent by then
SERVICES = ("intake", "workflow", "sla", "notifier", "intake-mail")


@pytest.fixture(scope="module")
def infra() -> Iterator[PrivateInfra]:
    with private_infra(STATE / "infra") as servers:
        yield servers


@pytest.fixture(scope="module")
def system(infra: PrivateInfra) -> Iterator[System]:
    shutil.rmtree(STATE / "system", ignore_errors=True)
    with isolated_system(
        infra.database_url, infra.kafka_bootstrap, STATE / "system", "faults"
    ) as running:
        yield running


async def healthy_again(system: System, since: float) -> float | None:
    """Seconds from `since` until intake's health check (it touches the database) passes;
    None if it did not within RECOVERY_TIMEOUT."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < since + RECOVERY_TIMEOUT:
            try:
                if (await client.get(system.url("intake") + "/health")).status_code == 200:
                    return time.monotonic() - since
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    return None


async def inject_faults(system: System, infra: PrivateInfra) -> list[dict[str, Any]]:
    """The faults in sequence, one every FAULT_EVERY s; a killed process is started again at
    once (as a supervisor would) and its recovery awaited in the background, so the next fault
    may come while it is still joining its consumer groups. What each took; a recovery that
    failed says why under "error" (checked by the test once everything else is counted)."""
    loop = asyncio.get_running_loop()
    threads = ThreadPoolExecutor(max_workers=len(SERVICES) + 2)  # one per waiting recovery
    done: list[dict[str, Any]] = []
    recoveries: list[tuple[dict[str, Any], asyncio.Future[float]]] = []
    started = time.monotonic()
    for n, fault in enumerate([*SERVICES, "postgres", "kafka"]):
        await asyncio.sleep(max(0.0, started + FIRST_FAULT_AT + n * FAULT_EVERY - time.monotonic()))
        entry: dict[str, Any] = {"at_s": round(time.monotonic() - started, 1)}
        done.append(entry)
        try:
            if fault in SERVICES:
                entry["fault"] = f"SIGKILL {fault}"
                if fault == "notifier":
                    entry |= await kill_notifier_mid_batch(system)
                else:
                    system.kill(fault)
                recovery = loop.run_in_executor(threads, system.restart, fault, RECOVERY_TIMEOUT)
                recoveries.append((entry, recovery))
            elif fault == "postgres":
                since = time.monotonic()
                entry["fault"] = "PostgreSQL crash + restart"
                entry["restart_s"] = round(
                    await loop.run_in_executor(threads, infra.restart_postgres), 1
                )
                healthy = await healthy_again(system, since)
                entry["intake_healthy_after_s"] = healthy and round(healthy, 1)
                if healthy is None:
                    entry["error"] = f"intake not healthy {RECOVERY_TIMEOUT:.0f}s after"
            else:
                entry["fault"] = "Kafka restart"
                entry["restart_s"] = round(
                    await loop.run_in_executor(threads, infra.restart_kafka), 1
                )
        except Exception as error:  # reported with the counts, then asserted
            entry["error"] = f"{type(error).__name__}: {error}"
    for entry, recovery in recoveries:
        try:
            entry["serving_again_after_s"] = round(await recovery, 1)
        except Exception as error:  # as above
            entry["error"] = f"{type(error).__name__}: {error}"
    threads.shutdown()
    return done


async def kill_notifier_mid_batch(system: System) -> dict[str, Any]:
    """SIGKILL the notifier while it holds claimed, unsent messages (waiting up to 8 s for
    such a moment, else killing it anyway)."""
    conn = await asyncpg.connect(system.database_url)
    try:
        deadline = time.monotonic() + 8.0
        while not await claimed_deliveries(conn) and time.monotonic() < deadline:
            await asyncio.sleep(0.003)
        system.kill("notifier")
        killed_at = datetime.now(UTC)
        claimed = await claimed_deliveries(conn)
    finally:
        await conn.close()
    return {"claimed_at_kill": claimed, "killed_at": killed_at}


async def quiesce(system: System, load: SteadyLoad, groups: dict[str, str]) -> float:
    """Wait (at most QUIESCE_TIMEOUT) until every accepted request is applied by every consumer
    group and every message is sent and in the sink; returns the seconds waited."""
    started = time.monotonic()
    tickets = {offer.ticket_id for offer in load.accepted() if offer.ticket_id}
    keys = {offer.key for offer in load.accepted()}
    while time.monotonic() - started < QUIESCE_TIMEOUT:
        applied = await applied_by_consumers(system.database_url, groups, tickets)
        recorded = await deliveries(system.database_url)
        received = acknowledgements(system.mail_folder)
        if (
            all(count == len(tickets) for count in applied.values())
            and len(recorded) >= len(tickets)
            and all(row["status"] == "sent" for row in recorded)
            and keys <= received.keys()
        ):
            break
        await asyncio.sleep(1.0)
    return time.monotonic() - started


async def test_no_request_or_acknowledgement_is_lost_through_crashes_and_restarts(
    infra: PrivateInfra, system: System
) -> None:
    began = time.monotonic()
    prefix = system.topic_prefix
    topic = prefix + TICKET_EVENTS
    groups = {
        f"workflow.{topic}": "workflow",
        f"sla.{topic}": "sla",
        f"notifier.{topic}": "notifier",
        f"intake-mail.{topic}": "intake",
    }
    load = SteadyLoad(system.url("intake"), f"faults-{uuid.uuid4().hex[:8]}", RATE, DURATION)
    offering = asyncio.create_task(load.run())
    faults = await inject_faults(system, infra)
    await offering
    load_s = time.monotonic() - began
    quiesce_s = await quiesce(system, load, groups)

    accepted = load.accepted()
    tickets = {offer.ticket_id for offer in accepted if offer.ticket_id}
    missing = await not_in_workflow(system.url("workflow"), accepted)
    applied = await applied_by_consumers(system.database_url, groups, tickets)
    created = await created_in_intake(system.database_url)
    recorded = await deliveries(system.database_url)
    received = acknowledgements(system.mail_folder)
    by_key = {offer.key: offer for offer in accepted}
    unacknowledged = [offer for offer in accepted if offer.key not in received]
    misaddressed = {
        key: sorted({to for _, to in messages} - {by_key[key].requester})
        for key, messages in received.items()
        if key in by_key and {to for _, to in messages} != {by_key[key].requester}
    }
    stray = sorted(key for key in received if key not in by_key)
    twice_sent = {  # the same message (Message-ID) received more than once
        key: len(messages) - len({mid for mid, _ in messages})
        for key, messages in received.items()
        if len(messages) > len({mid for mid, _ in messages})
    }
    two_messages = sorted(  # two different acknowledgements for one request
        key for key, messages in received.items() if len({mid for mid, _ in messages}) > 1
    )
    letters = await dead_letters(system.kafka_bootstrap, prefix)
    reconciled = await applied_later(system.database_url, letters)
    leftover = [letter for letter in letters if letter not in reconciled]
    parked = await parked_rows(system.database_url)

    notifier_kill = next(f for f in faults if f["fault"] == "SIGKILL notifier")
    claimed = set(notifier_kill["claimed_at_kill"])
    sent_late = [
        row["sent_at"] for row in recorded if row["message_id"] in claimed and row["sent_at"]
    ]
    takeover_s = (
        round((max(sent_late) - notifier_kill["killed_at"]).total_seconds(), 1)
        if sent_late
        else None
    )
    notifier_kills = sum(1 for f in faults if f["fault"] == "SIGKILL notifier")
    results: dict[str, Any] = {
        "requests_offered": len(load.offers),
        "requests_accepted": len(accepted),
        "requests_created_201": sum(1 for offer in accepted if offer.created),
        "requests_refused": {o.idempotency_key: o.refused for o in load.offers if o.refused},
        "requests_given_up": sum(1 for o in load.offers if o.ticket_id is None and not o.refused),
        "attempts": sum(offer.attempts for offer in load.offers),
        "answers": load.answers(),
        "created_in_intake": created,
        "present_in_workflow": len(accepted) - len(missing),
        "applied_by_group": applied,
        "acknowledgements_expected": len(accepted),
        "acknowledgements_recorded": len(recorded),
        "acknowledgements_received": len(accepted) - len(unacknowledged),
        "acknowledgements_duplicated": sum(twice_sent.values()),
        "notifier_claimed_at_kill": len(claimed),
        "notifier_takeover_s": takeover_s,
        "dead_letters": len(letters),
        "dead_letters_applied_later": len(reconciled),
        "dead_letters_left_over": len(leftover),
        "parked": len(parked),
        "faults": [
            {k: v for k, v in f.items() if k not in ("claimed_at_kill", "killed_at")}
            for f in faults
        ],
        "load_s": round(load_s, 1),
        "quiesce_s": round(quiesce_s, 1),
        "test_s": round(time.monotonic() - began, 1),
        "with_servers_and_system_start_s": round(time.monotonic() - infra.started_at, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print("\nfault injection:", json.dumps(results, indent=2, default=str))

    logs = f"(logs: {system.logs}, servers: {infra.state})"
    failed = [f for f in results["faults"] if "error" in f]
    assert not failed, f"not recovered from: {failed} {logs}"
    assert not results["requests_refused"], f"requests refused: {results['requests_refused']}"
    assert results["requests_given_up"] == 0, (
        f"{results['requests_given_up']} requests never accepted within the client's patience; "
        f"answers {results['answers']} {logs}"
    )
    assert created == len(accepted), (
        f"intake holds {created} TicketCreated for {len(accepted)} accepted requests {logs}"
    )
    assert not missing, (
        f"{len(missing)} requests wrong in workflow: {dict(list(missing.items())[:10])} {logs}"
    )
    assert all(count == len(tickets) for count in applied.values()), (
        f"requests applied per consumer group {applied}, expected {len(tickets)} each {logs}"
    )
    pending = [row for row in recorded if row["status"] != "sent"]
    assert not unacknowledged and not pending, (
        f"{len(unacknowledged)} acknowledgements not received "
        f"({[o.key for o in unacknowledged][:10]}), {len(pending)} not sent {QUIESCE_TIMEOUT:.0f}s "
        f"after the load; the notifier killed at {notifier_kill['killed_at']:%H:%M:%S.%f} held "
        f"{len(claimed)} claimed: {[_state(row) for row in pending][:10]} {logs}"
    )
    assert not stray and not misaddressed and not two_messages, (
        f"unexpected mail: stray {stray[:10]}, misaddressed {misaddressed}, "
        f"two acknowledgements {two_messages[:10]}"
    )
    assert sum(twice_sent.values()) <= notifier_kills, (
        f"{sum(twice_sent.values())} acknowledgements received twice ({twice_sent}), more than "
        f"the one crash window per notifier kill ({notifier_kills}) {logs}"
    )
    assert not leftover, f"{len(leftover)} dead letters never applied: {leftover[:10]} {logs}"
    assert not parked, f"{len(parked)} events parked: {parked[:10]} {logs}"


def _state(row: dict[str, Any]) -> str:
    due = (row["next_attempt_at"] - row["checked_at"]).total_seconds()
    return (
        f"{row['message_id']} {row['status']} after {row['attempts']} attempt(s), next attempt "
        f"in {due:.0f}s, last error {row['last_error']!r}"
    )
