"""One request through the four services, each a separate process, over the real servers.

POST to intake -> TicketCreated on Kafka -> workflow opens the stream -> sla arms the response
timers (durable rows) -> notifier sends the acknowledgement to the SMTP sink -> GET it back with
its status and history; then an agent assigns it and the requester is told, once, although two
notifier replicas share the work. Each process's /metrics counts what one request (and one mail)
gave it to do.
"""

from __future__ import annotations

import json
import smtplib
import time
import uuid
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from e2e_support import eventually, mails
from identity_support import bearer
from system import System

pytestmark = pytest.mark.e2e

REQUEST = {
    "policy_id": "saas-desk",
    "request_type": "problem_report",
    "priority": "high",
    "subject": "L'export mensuel échoue",
    "description": "Erreur 500 à chaque export depuis lundi",
    "organisation_id": "acme",
    "requester": "Anne.Martin@acme.example",
    "language": "fr",
}


@pytest.fixture(scope="module")
def system(one_system: System) -> System:
    """The system of tests/e2e/conftest.py (this module runs first on it: its counts start
    from nothing)."""
    return one_system


def signed(system: System, subject: str, service: str, **claims: Any) -> dict[str, str]:
    """The header of a token for `service` that this system's services believe."""
    return bearer(subject, audience=service, signer=system.signer(), **claims)


def requester(system: System) -> httpx.Client:
    anne = signed(system, "anne.martin@acme.example", "intake", organisation="acme")
    return httpx.Client(base_url=system.url("intake"), timeout=10, headers=anne)


AGENT = {"roles": {"saas-desk": ["agent"]}}


def test_a_request_travels_through_the_four_services(system: System) -> None:
    intake = requester(system)
    workflow = httpx.Client(
        base_url=system.url("workflow"),
        timeout=10,
        headers=signed(system, "paul@desk.example", "workflow", **AGENT),
    )
    sla = httpx.Client(
        base_url=system.url("sla"),
        timeout=10,
        headers=signed(system, "paul@desk.example", "sla", **AGENT),
    )
    plain = {"Authorization": "", "X-Actor": "paul@desk.example", "X-Actor-Role": "agent"}
    for client, path in ((intake, "/desks"), (workflow, "/desks"), (sla, "/board")):
        refused = client.get(path, params={"policy_id": "saas-desk"}, headers=plain)
        assert refused.status_code == 401, refused.text  # nobody believes a plain header

    created = intake.post("/requests", json=REQUEST, headers={"Idempotency-Key": "e2e-1"})
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["key"].startswith("PRB-")
    again = intake.post("/requests", json=REQUEST, headers={"Idempotency-Key": "e2e-1"})
    assert again.status_code == 200 and again.json()["ticket_id"] == ticket["ticket_id"]

    def opened() -> dict[str, Any] | None:
        response = workflow.get(f"/requests/{ticket['key']}")
        return response.json() if response.status_code == 200 else None

    view = eventually(opened)
    assert view["status"]["id"] == "open"
    assert view["requester_id"] == "anne.martin@acme.example"
    assert [h["type"] for h in view["history"]] == ["TicketCreated"]

    def armed() -> dict[str, Any] | None:
        response = sla.get(f"/tickets/{ticket['ticket_id']}/clocks")
        return response.json() if response.status_code == 200 else None

    clocks = eventually(armed)
    assert clocks["response"]["state"] == "running"
    assert {t["kind"] for t in clocks["pending_timers"]} == {"sla_warning", "sla_breach"}

    acknowledgement = eventually(
        lambda: [m for m in mails(system.mail_folder) if ticket["key"] in m["Subject"]]
    )
    assert len(acknowledgement) == 1
    ack = acknowledgement[0]
    assert ack["To"] == "anne.martin@acme.example"
    assert ack["Subject"].startswith(f"[{ticket['key']}] Demande reçue")
    assert ack["Auto-Submitted"] == "auto-generated"
    assert ack["Message-ID"]

    assigned = workflow.post(
        f"/requests/{ticket['key']}/assign",
        json={"assignee_id": "paul@desk.example"},
        headers={
            **signed(system, "lead@desk.example", "workflow", roles={"saas-desk": ["supervisor"]}),
            "If-Match": created_etag(view),
        },
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned"

    told = eventually(
        lambda: [
            m
            for m in mails(system.mail_folder)
            if ticket["key"] in m["Subject"]
            and m is not None
            and "Demande reçue" not in m["Subject"]
        ]
    )
    time.sleep(1.5)  # two notifier replicas: still exactly one message for this event
    told = [
        m
        for m in mails(system.mail_folder)
        if ticket["key"] in m["Subject"] and "Demande reçue" not in m["Subject"]
    ]
    assert len(told) == 1
    assert told[0]["In-Reply-To"] is None or told[0]["In-Reply-To"]

    detail = workflow.get(f"/requests/{ticket['ticket_id']}").json()
    assert [h["type"] for h in detail["history"]] == ["TicketAssigned", "TicketCreated"]
    assert detail["status"]["id"] == "assigned"

    listed = workflow.get("/requests", params={"organisation_id": "acme"}).json()
    assert ticket["ticket_id"] in {row["ticket_id"] for row in listed}

    logged = [
        json.loads(line)
        for line in (system.logs / "notifier.log").read_text().splitlines()
        + (system.logs / "notifier-2.log").read_text().splitlines()
        if line.startswith("{")
    ]
    sent = [entry for entry in logged if entry["event"] == "notification_sent"]
    assert {entry["ticket_id"] for entry in sent} == {ticket["ticket_id"]}
    assert all(entry.get("correlation_id") or entry.get("event_id") for entry in sent)


def test_an_analyst_replays_the_log_into_a_compliance_report(system: System) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "sla.entrypoints.compliance_report"],
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": system.kafka_bootstrap,
            "TOPIC_PREFIX": system.topic_prefix,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert rows[0] == ["month", "priority", "requests", "response_kept_%", "resolution_kept_%"]
    assert ["high", "1", "100.0", "100.0"] in [row[1:] for row in rows[1:]]


def created_etag(view: dict[str, Any]) -> str:
    return f'"{view["version"]}"'


def test_invalid_request_is_refused_with_field_and_reason(system: System) -> None:
    intake = requester(system)
    missing = intake.post("/requests", json={**REQUEST, "subject": ""})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "subject"]
    nul = intake.post("/requests", json={**REQUEST, "description": "a\u0000b"})
    assert nul.status_code == 422
    assert nul.json()["detail"][0]["loc"] == ["body", "description"]
    wrong_type = intake.post("/requests", json={**REQUEST, "request_type": "nope"})
    assert wrong_type.status_code == 422
    assert "not a request type of saas-desk" in wrong_type.json()["detail"][0]["msg"]


def test_every_process_answers_health_ready_and_metrics(system: System) -> None:
    expected = {
        "intake": {"postgres", "kafka", "relay", "directory"},
        "workflow": {"postgres", "kafka", "relay", "directory"},
        "sla": {"postgres", "kafka", "relay"},
        "notifier": {"postgres", "kafka", "relay", "deliveries", "directory"},
        "intake-mail": {"postgres", "kafka", "relay", "directory"},  # the e-mail gateway
    }
    relays: dict[str, str] = {}
    for process, checks in expected.items():
        http = httpx.Client(base_url=system.url(process), timeout=10)
        assert http.get("/health").json() == {"status": "alive"}, process
        ready = http.get("/ready")
        assert ready.status_code == 200, (process, ready.text)
        body = ready.json()
        assert body["status"] == "ready" and body["failing"] == []
        assert checks <= set(body["checks"]), (process, body)
        if "directory" in checks:  # the shipped directory, as the topic holds it
            detail = body["checks"]["directory"]["detail"]
            assert detail.startswith("caught up: 9 people, 3 organisations"), (process, detail)
        consumers = [name for name in body["checks"] if name.startswith("consumer:")]
        assert bool(consumers) == (process != "intake"), (process, body)  # intake consumes none
        metrics = http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert 'desk_ready{check="relay"} 1.0' in metrics.text, process
        relays[process] = body["checks"]["relay"]["detail"]
    # intake's store has two relays (HTTP process and gateway): one leads, one stands by
    roles = sorted(relays[p].split(":")[0] for p in ("intake", "intake-mail"))
    assert roles == ["leader", "standby"], relays


def scraped(system: System, process: str) -> dict[str, float]:
    """Every sample of a process's /metrics, by its name and labels."""
    return scraped_at(system.url(process))


def scraped_at(url: str) -> dict[str, float]:
    """Every sample of the /metrics at `url`, by its name and labels."""
    text = httpx.get(url + "/metrics", timeout=10).text
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    return {name: float(value) for name, value in samples}


def notifiers(system: System) -> list[str]:
    """The HTTP addresses of every notifier replica (the first, and those started after it)."""
    replicas = [
        f"http://127.0.0.1:{env['HTTP_PORT']}"
        for name, (_, env) in system.commands.items()
        if name.startswith("notifier-")
    ]
    return [system.url("notifier"), *replicas]


def summed(urls: list[str]) -> dict[str, float]:
    """The samples of several replicas' /metrics, added up by name and labels."""
    total: dict[str, float] = {}
    for url in urls:
        for name, value in scraped_at(url).items():
            total[name] = total.get(name, 0.0) + value
    return total


def applied(samples: dict[str, float], topic: str) -> float:
    """The records the process's consumer group of `topic` has applied."""
    return sum(
        value
        for name, value in samples.items()
        if name.startswith("desk_consumer_records_applied_total{") and name.endswith(f'{topic}"}}')
    )


def test_every_process_counts_what_one_request_did(system: System) -> None:
    consumers = {
        "workflow": "ticket-commands",
        "sla": "ticket-events",
        "intake-mail": "ticket-events",
    }
    created = 'desk_http_requests_total{method="POST",route="/requests",status="201"}'
    before = {process: scraped(system, process) for process in ("intake", *consumers)}
    answer = requester(system).post(
        "/requests", json={**REQUEST, "subject": "Compté"}, headers={"Idempotency-Key": "e2e-m"}
    )
    assert answer.status_code == 201, answer.text
    key = answer.json()["key"]
    eventually(lambda: [m for m in mails(system.mail_folder) if key in m["Subject"]])
    assert scraped(system, "intake").get(created, 0) == before["intake"].get(created, 0) + 1

    def moved() -> list[str]:
        later = {process: scraped(system, process) for process in consumers}
        return [
            process
            for process, topic in consumers.items()
            if applied(later[process], topic) <= applied(before[process], topic)
        ]

    eventually(lambda: not moved())
    for process in ("intake", *consumers):  # nothing refused or lost on the way
        samples = scraped(system, process)
        dead = [n for n, v in samples.items() if n.startswith("desk_consumer_dead_lettered") and v]
        assert dead == [], (process, dead)


def test_each_process_counts_the_work_one_request_and_one_mail_gave_it(system: System) -> None:
    """sla arms the request's response timers; the notifier (either replica) renders and sends
    its acknowledgement, counted for its desk; the gateway counts what it decided of a mail,
    delivered twice; consumer lag is exposed by partition."""
    replicas = notifiers(system)
    assert len(replicas) == 2
    timers = [f'desk_sla_timers_armed_total{{kind="{k}"}}' for k in ("sla_warning", "sla_breach")]
    rendered = 'desk_notifications_rendered_total{desk="saas-desk"}'
    sent = 'desk_notifications_sent_total{desk="saas-desk"}'
    sla, told = scraped(system, "sla"), summed(replicas)
    answer = requester(system).post(
        "/requests", json={**REQUEST, "subject": "Minuté"}, headers={"Idempotency-Key": "e2e-t"}
    )
    assert answer.status_code == 201, answer.text
    key = answer.json()["key"]

    def armed() -> bool:
        later = scraped(system, "sla")
        return all(later[name] >= sla[name] + 1 for name in timers)

    eventually(armed)
    eventually(lambda: [m for m in mails(system.mail_folder) if key in m["Subject"]])
    eventually(lambda: summed(replicas)[sent] >= told.get(sent, 0) + 1)  # marked after the 250
    assert summed(replicas)[rendered] >= told.get(rendered, 0) + 1
    lag = [name for name in scraped(system, "sla") if name.startswith("desk_consumer_lag_records")]
    assert lag and all(',partition="' in name for name in lag), lag

    gateway = scraped(system, "intake-mail")
    mail = EmailMessage()
    mail["From"], mail["To"] = "Anne Martin <anne@acme.example>", "support@saas-desk.example"
    mail["Subject"], mail["Message-ID"] = "Compteur de mails", f"<{uuid.uuid4().hex}@acme.example>"
    mail.set_content("Bonjour,\n\nle compteur ne bouge plus.\n\nAnne")
    for _ in range(2):  # a retrying MTA delivers it twice
        with smtplib.SMTP("127.0.0.1", system.mail_port, timeout=10) as client:
            client.send_message(mail)
    decided = scraped(system, "intake-mail")
    for decision in ("new_request", "duplicate"):
        name = f'desk_mail_gateway_decisions_total{{decision="{decision}"}}'
        assert decided[name] == gateway[name] + 1, decision
