"""Fault injection: a steady load on intake while each process of the system is killed with
SIGKILL and started again (as a supervisor would), then PostgreSQL crashes and Kafka restarts.

Afterwards, within bounded waits: every request the client got accepted is in workflow with
its `TicketCreated` history, applied by workflow from its input (`ticket-commands`) and by
every consumer of `ticket-events`; intake created
each once; every acknowledgement reached the SMTP sink, none twice beyond the notifier's
documented crash window (a message sent but not yet marked sent when the notifier dies: at
most one per notifier kill, counted); no dead letter is left over (each `.dlt` record was
applied later, nothing parked); every process says it is ready; intake never answered a 5xx
other than 503 (come back later). The notifier is killed while it holds claimed messages, so the
run measures how soon a restarted notifier takes them over. One run (the module fixture
`outcome`) serves every test below, each asserting one of these properties.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from e2e_support import isolated_system
from fault_support import (
    ROOT,
    DeadLetter,
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

from desk_contracts.topics import TICKET_COMMANDS, TICKET_EVENTS

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
# four requesters at one desk, five requests a second: over the default hourly flood limits
UNLIMITED = {
    "REQUESTS_SUBMITTER_HOURLY_LIMIT": "100000",
    "REQUESTS_DOMAIN_HOURLY_LIMIT": "100000",
    "REQUESTS_DESK_HOURLY_LIMIT": "100000",
}


@pytest.fixture(scope="module")
def infra() -> Iterator[PrivateInfra]:
    with private_infra(STATE / "infra") as servers:
        yield servers


@pytest.fixture(scope="module")
def system(infra: PrivateInfra) -> Iterator[System]:
    shutil.rmtree(STATE / "system", ignore_errors=True)
    with isolated_system(
        infra.database_url, infra.kafka_bootstrap, STATE / "system", "faults",
        environment=UNLIMITED,
    ) as running:  # fmt: skip
        yield running


async def not_ready(system: System) -> dict[str, str]:
    """The processes whose `/ready` does not answer 200, with what they answer."""
    answers: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=5.0) as client:
        for name in SERVICES:
            try:
                response = await client.get(system.url(name) + "/ready")
            except httpx.TransportError as error:
                answers[name] = type(error).__name__
                continue
            if response.status_code != 200:
                answers[name] = f"{response.status_code} {response.text[:300]}"
    return answers


async def ready_again(system: System, name: str, since: float) -> float | None:
    """Seconds from `since` until `name`'s `/ready` answers 200; None if it did not within
    RECOVERY_TIMEOUT."""
    while time.monotonic() < since + RECOVERY_TIMEOUT:
        if name not in await not_ready(system):
            return time.monotonic() - since
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
                ready = await ready_again(system, "intake", since)
                entry["intake_ready_after_s"] = ready and round(ready, 1)
                if ready is None:
                    entry["error"] = f"intake not ready {RECOVERY_TIMEOUT:.0f}s after"
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
    group, every message is sent and in the sink, and every process says it is ready; returns
    the seconds waited."""
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
            and not await not_ready(system)
        ):
            break
        await asyncio.sleep(1.0)
    return time.monotonic() - started


@dataclass
class Outcome:
    """What the run measured: the counts (`results`, also in RESULTS) and what they rest on."""

    results: dict[str, Any]
    logs: str  # where to look
    load: SteadyLoad
    faults: list[dict[str, Any]]
    missing: dict[str, str]  # request key -> what workflow shows instead
    applied: dict[str, int]  # consumer group -> requests applied
    created: int
    pending: list[dict[str, Any]]  # deliveries not sent
    unacknowledged: list[str]
    stray: list[str]
    misaddressed: dict[str, list[str]]
    two_messages: list[str]
    twice_sent: dict[str, int]
    notifier_kills: int
    claimed: set[str]
    killed_at: datetime | None
    leftover: list[DeadLetter]
    parked: list[dict[str, Any]]
    unready: dict[str, str]
    server_errors: list[str]  # what intake logged for its 5xx answers


@pytest.fixture(scope="module")
async def outcome(infra: PrivateInfra, system: System) -> Outcome:
    """The run: the load and the faults, the wait for quiescence, then every read-out."""
    began = time.monotonic()
    topic = system.topic_prefix + TICKET_EVENTS
    groups = {
        f"workflow.{system.topic_prefix + TICKET_COMMANDS}": "workflow",
        f"sla.{topic}": "sla",
        f"notifier.{topic}": "notifier",
        f"intake-mail.{topic}": "intake",
    }
    run = f"faults-{uuid.uuid4().hex[:8]}"
    load = SteadyLoad(system.url("intake"), run, system.signer(), RATE, DURATION)
    offering = asyncio.create_task(load.run())
    faults = await inject_faults(system, infra)
    await offering
    load_s = time.monotonic() - began
    quiesce_s = await quiesce(system, load, groups)

    accepted = load.accepted()
    tickets = {offer.ticket_id for offer in accepted if offer.ticket_id}
    missing = await not_in_workflow(system.url("workflow"), accepted, system.signer())
    applied = await applied_by_consumers(system.database_url, groups, tickets)
    created = await created_in_intake(system.database_url)
    recorded = await deliveries(system.database_url)
    received = acknowledgements(system.mail_folder)
    by_key = {offer.key: offer for offer in accepted}
    unacknowledged = [str(offer.key) for offer in accepted if offer.key not in received]
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
    letters = await dead_letters(system.kafka_bootstrap, system.topic_prefix)
    reconciled = await applied_later(system.database_url, letters)
    leftover = [letter for letter in letters if letter not in reconciled]
    parked = await parked_rows(system.database_url)
    unready = await not_ready(system)
    server_errors = _server_errors(system.logs / "intake.log")

    kill = next(f for f in faults if f["fault"] == "SIGKILL notifier")
    claimed = set(kill.get("claimed_at_kill", ()))
    killed_at = kill.get("killed_at")
    sent_late = [r["sent_at"] for r in recorded if r["message_id"] in claimed and r["sent_at"]]
    takeover_s = (
        round((max(sent_late) - killed_at).total_seconds(), 1) if sent_late and killed_at else None
    )
    answers = load.answers()
    results: dict[str, Any] = {
        "requests_offered": len(load.offers),
        "requests_accepted": len(accepted),
        "requests_created_201": sum(1 for offer in accepted if offer.created),
        "requests_refused": {o.idempotency_key: o.refused for o in load.offers if o.refused},
        "requests_given_up": sum(1 for o in load.offers if o.ticket_id is None and not o.refused),
        "attempts": sum(offer.attempts for offer in load.offers),
        "answers": answers,
        "server_errors_other_than_503": sum(
            n for answer, n in answers.items() if answer.startswith("5") and answer != "503"
        ),
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
        "not_ready_after": unready,
        "faults": [
            {k: v for k, v in f.items() if k not in ("claimed_at_kill", "killed_at")}
            for f in faults
        ],
        "load_s": round(load_s, 1),
        "quiesce_s": round(quiesce_s, 1),
        "run_s": round(time.monotonic() - began, 1),
        "with_servers_and_system_start_s": round(time.monotonic() - infra.started_at, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print("\nfault injection:", json.dumps(results, indent=2, default=str))
    return Outcome(
        results,
        f"(logs: {system.logs}, servers: {infra.state}, counts: {RESULTS})",
        load,
        faults,
        missing,
        applied,
        created,
        [row for row in recorded if row["status"] != "sent"],
        unacknowledged,
        stray,
        misaddressed,
        two_messages,
        twice_sent,
        sum(1 for f in faults if f["fault"] == "SIGKILL notifier"),
        claimed,
        killed_at,
        leftover,
        parked,
        unready,
        server_errors,
    )


def test_every_process_recovers_from_its_crash(outcome: Outcome) -> None:
    failed = [f for f in outcome.results["faults"] if "error" in f]
    assert not failed, f"not recovered from: {failed} {outcome.logs}"


def test_every_accepted_request_is_in_workflow_with_its_history_once(outcome: Outcome) -> None:
    results = outcome.results
    assert not results["requests_refused"], f"requests refused: {results['requests_refused']}"
    assert results["requests_given_up"] == 0, (
        f"{results['requests_given_up']} requests never accepted within the client's patience; "
        f"answers {results['answers']} {outcome.logs}"
    )
    accepted = results["requests_accepted"]
    assert outcome.created == accepted, (
        f"intake holds {outcome.created} TicketCreated for {accepted} accepted requests "
        f"{outcome.logs}"
    )
    assert not outcome.missing, (
        f"{len(outcome.missing)} requests wrong in workflow: "
        f"{dict(list(outcome.missing.items())[:10])} {outcome.logs}"
    )
    assert all(count == accepted for count in outcome.applied.values()), (
        f"requests applied per consumer group {outcome.applied}, expected {accepted} each "
        f"{outcome.logs}"
    )


def test_every_acknowledgement_is_sent_and_none_twice_beyond_the_crash_window(
    outcome: Outcome,
) -> None:
    killed = f"{outcome.killed_at:%H:%M:%S.%f}" if outcome.killed_at else "?"
    assert not outcome.unacknowledged and not outcome.pending, (
        f"{len(outcome.unacknowledged)} acknowledgements not received "
        f"({outcome.unacknowledged[:10]}), {len(outcome.pending)} not sent "
        f"{QUIESCE_TIMEOUT:.0f}s after the load; the notifier killed at {killed} held "
        f"{len(outcome.claimed)} claimed: {[_state(row) for row in outcome.pending][:10]} "
        f"{outcome.logs}"
    )
    assert not outcome.stray and not outcome.misaddressed and not outcome.two_messages, (
        f"unexpected mail: stray {outcome.stray[:10]}, misaddressed {outcome.misaddressed}, "
        f"two acknowledgements {outcome.two_messages[:10]}"
    )
    twice = sum(outcome.twice_sent.values())
    assert twice <= outcome.notifier_kills, (
        f"{twice} acknowledgements received twice ({outcome.twice_sent}), more than the one "
        f"crash window per notifier kill ({outcome.notifier_kills}) {outcome.logs}"
    )


def test_no_dead_letter_is_left_over(outcome: Outcome) -> None:
    assert not outcome.leftover, (
        f"{len(outcome.leftover)} dead letters never applied: {outcome.leftover[:10]} "
        f"{outcome.logs}"
    )
    assert not outcome.parked, (
        f"{len(outcome.parked)} events parked: {outcome.parked[:10]} {outcome.logs}"
    )


def test_every_process_is_ready_once_all_is_applied_and_sent(outcome: Outcome) -> None:
    assert not outcome.unready, f"/ready still says: {outcome.unready} {outcome.logs}"


def test_intake_answers_503_not_500_while_postgres_restarts(outcome: Outcome) -> None:
    """A client must be told to come back (503, Retry-After), not that intake failed (500)."""
    errors = outcome.results["server_errors_other_than_503"]
    assert errors == 0, (
        f"intake answered {errors} times with a 5xx other than 503 "
        f"(answers {outcome.results['answers']}); it logged: {outcome.server_errors[:5]} "
        f"{outcome.logs}"
    )


def _state(row: dict[str, Any]) -> str:
    due = (row["next_attempt_at"] - row["checked_at"]).total_seconds()
    return (
        f"{row['message_id']} {row['status']} after {row['attempts']} attempt(s), next attempt "
        f"in {due:.0f}s, last error {row['last_error']!r}"
    )


def _server_errors(log: Path) -> list[str]:
    """The exceptions the HTTP server of a process logged as unhandled (its 500s), in order."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and "Exception in ASGI application" in line:
            entry = json.loads(line)
            found.append(f"{entry.get('timestamp', '?')} {(entry.get('exc_info') or ['?'])[:2]}")
    return found
