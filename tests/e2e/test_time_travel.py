"""The time rules of the desks, seen happening end to end on test clocks (no waiting, no sleep).

Every process runs separately (tests/e2e/conftest.py's system, where `TEST_CLOCKS` is on). A
test creates a clock on sla frozen at an instant, files a request under it through intake, and
advances the clock: sla fires every timer due on the way, in order, and every service reads the
request's "now" from the clock.

- erp-vendor: waiting for the customer, reminded at 10 and 15 days, closed at 20 (each with its
  mail to the requester), closed for good.
- cloud-partner: automatic comments at 3 and 6 days, closed at 12, and reopened afterwards by
  the requester.
- saas-desk: the satisfaction survey's link, mailed on closing, expires 30 days later on the
  request's clock.
- a clock attached to a whole desk dates every new request of it, one sent by mail too.
- erp-vendor's Geneva calendar: a high request filed on a Thursday at 16:30 before Easter
  (Good Friday and Easter Monday are public holidays in Geneva; summer time begins that Sunday)
  has its 120 business minutes of response run out on Tuesday at 09:00 local time, 07:00 UTC:
  warned at 75 % (08:30, 06:30 UTC), then breached, and not before; the desk's team lead is
  mailed each time.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from e2e_support import eventually, mails
from identity_support import bearer
from system import System

from desk_platform.replay import Replayed, replay

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def system(one_system: System) -> System:
    """The system of tests/e2e/conftest.py."""
    return one_system


LEAD = "lea@desk.example"  # team lead (supervisor at saas-desk): administers the three desks
AGENT = "paul@desk.example"  # service desk at erp-vendor, agent at cloud-partner
REQUESTER = "anne@acme.example"


def client(system: System, service: str, subject: str, **claims: Any) -> httpx.Client:
    token = bearer(subject, audience=service, signer=system.signer(), **claims)
    return httpx.Client(base_url=system.url(service), timeout=10, headers=token)


def lead(system: System, service: str) -> httpx.Client:
    roles = {
        "erp-vendor": ["team_lead"],
        "cloud-partner": ["team_lead"],
        "saas-desk": ["supervisor"],
    }
    return client(system, service, LEAD, roles=roles)


def requester(system: System, service: str) -> httpx.Client:
    return client(system, service, REQUESTER, organisation="acme")


def new_clock(system: System, desk: str, at: str) -> dict[str, Any]:
    created = lead(system, "sla").post(
        "/test-clocks", json={"id": f"tc-{uuid.uuid4().hex[:10]}", "desk": desk, "at": at}
    )
    assert created.status_code == 201, created.text
    clock: dict[str, Any] = created.json()
    assert clock["status"] == "ready" and clock["now"] == at.replace("+00:00", "Z")
    return clock


def advance(
    system: System, clock: dict[str, Any], to: datetime, *, key: str | None = None
) -> dict[str, Any]:
    """Move the clock to `to` and wait until it is ready there (and, given the `key` of a
    request on it, until workflow reads the clock there too: it learns it from the topic)."""
    sla = lead(system, "sla")
    moved = sla.post(f"/test-clocks/{clock['id']}/advance", json={"to": to.isoformat()})
    assert moved.status_code == 202, moved.text
    assert moved.json()["status"] == "advancing"

    def ready() -> dict[str, Any] | None:
        now: dict[str, Any] = sla.get(f"/test-clocks/{clock['id']}").json()
        return now if now["status"] == "ready" else None

    there: dict[str, Any] = eventually(ready, timeout=60)
    assert datetime.fromisoformat(there["now"]) == to
    if key is not None:
        eventually(lambda: workflow_now(system, key) == to)
    return there


def workflow_now(system: System, key: str) -> datetime | None:
    """What time workflow says it is for the request: an `as_of` in the far future is read as
    the request's now (its clock's)."""
    far = lead(system, "workflow").get(f"/requests/{key}", params={"as_of": "2999-01-01T00:00Z"})
    return datetime.fromisoformat(far.json()["as_of"]) if far.status_code == 200 else None


def clocks_known(system: System, process: str) -> int:
    """How many test clocks `process` has read (its readiness check says)."""
    ready = httpx.get(system.url(process) + "/ready", timeout=10).json()
    detail: str = ready["checks"]["test-clocks"]["detail"]
    return int(detail.removeprefix("caught up: ").split()[0])


def file_request(system: System, clock: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {
        "request_type": "support",
        "priority": "medium",
        "subject": "Écran de clôture bloqué",
        "description": "La clôture mensuelle ne se termine pas",
        "organisation_id": "acme",
        "requester": REQUESTER,
        "language": "fr",
        "test_clock": clock["id"],
        **fields,
    }
    created = requester(system, "intake").post("/requests", json=body)
    assert created.status_code == 201, created.text
    ticket: dict[str, Any] = created.json()
    return ticket


def request_view(system: System, key: str, *, version: int = 1) -> dict[str, Any]:
    """The request as workflow shows its support side, once it has reached `version`."""
    workflow = lead(system, "workflow")

    def reached() -> dict[str, Any] | None:
        response = workflow.get(f"/requests/{key}")
        if response.status_code != 200 or response.json()["version"] < version:
            return None
        view: dict[str, Any] = response.json()
        return view

    found: dict[str, Any] = eventually(reached)
    return found


def mails_about(system: System, key: str) -> list[tuple[str, str]]:
    return [(m["To"], m["Subject"]) for m in mails(system.mail_folder) if key in m["Subject"]]


def sla_events(system: System, ticket_id: str) -> list[tuple[str, str, datetime]]:
    """What sla published of the request on `sla-events`: type, clock and when it occurred."""

    async def read() -> list[tuple[str, str, datetime]]:
        topic = system.topic_prefix + "sla-events"
        found = []
        async for item in replay(system.kafka_bootstrap, [topic]):
            if isinstance(item, Replayed) and item.envelope.data.get("ticket_id") == ticket_id:
                data = item.envelope.data
                found.append((item.envelope.type, data["clock"], data["occurred_at"]))
        return [(kind, clock, datetime.fromisoformat(when)) for kind, clock, when in found]

    return asyncio.run(read())


def types(view: dict[str, Any]) -> list[str]:
    return [h["type"] for h in reversed(view["history"])]


def at(view: dict[str, Any], event_type: str) -> list[datetime]:
    return [
        datetime.fromisoformat(h["occurred_at"])
        for h in reversed(view["history"])
        if h["type"] == event_type
    ]


def test_test_clocks_are_for_the_desk_administrators_and_only_move_forward(
    system: System,
) -> None:
    clock = new_clock(system, "erp-vendor", "2027-01-04T08:00:00+00:00")
    agent = client(system, "sla", AGENT, roles={"erp-vendor": ["service_desk"]})
    refused = agent.post("/test-clocks", json={"desk": "erp-vendor", "at": clock["now"]})
    assert refused.status_code == 403, refused.text
    assert agent.get(f"/test-clocks/{clock['id']}").status_code == 200  # its support side reads
    assert requester(system, "sla").get(f"/test-clocks/{clock['id']}").status_code in (403, 404)
    backwards = lead(system, "sla").post(
        f"/test-clocks/{clock['id']}/advance", json={"to": "2027-01-03T08:00:00+00:00"}
    )
    assert backwards.status_code == 422, backwards.text
    naive = lead(system, "sla").post(
        f"/test-clocks/{clock['id']}/advance", json={"to": "2027-01-05T08:00:00"}
    )
    assert naive.status_code == 422, naive.text
    other_desk = requester(system, "intake").post(
        "/requests",
        json={
            "policy_id": "cloud-partner",
            "request_type": "support",
            "priority": "medium",
            "subject": "Hors de ce bureau",
            "description": "Une horloge d'un autre bureau",
            "organisation_id": "acme",
            "requester": REQUESTER,
            "test_clock": clock["id"],
        },
    )
    assert other_desk.status_code == 422, other_desk.text
    assert "erp-vendor" in other_desk.text


def test_erp_vendor_reminds_at_10_and_15_days_and_closes_at_20(system: System) -> None:
    # a Monday, 10:00 in Geneva, in the past: the real time would have fired every timer at once
    start = datetime.fromisoformat("2026-02-02T09:00:00+00:00")
    clock = new_clock(system, "erp-vendor", start.isoformat())
    ticket = file_request(system, clock, policy_id="erp-vendor")
    key = ticket["key"]
    view = request_view(system, key)
    assert datetime.fromisoformat(view["created_at"]) == start  # created at the clock's time
    eventually(lambda: workflow_now(system, key) == start)

    agent = client(system, "workflow", AGENT, roles={"erp-vendor": ["service_desk"]})
    asked = agent.post(
        f"/requests/{key}/request-information", json={"comment": "Quelle version de l'ERP ?"}
    )
    assert asked.status_code == 200, asked.text
    view = request_view(system, key, version=2)
    assert view["status"]["id"] == "waiting_customer"
    assert at(view, "InformationRequested") == [start]  # the clock has not moved

    advance(system, clock, start + timedelta(days=9, hours=23))
    assert types(request_view(system, key, version=2))[-1] == "InformationRequested"

    advance(system, clock, start + timedelta(days=16))
    view = request_view(system, key, version=4)
    assert at(view, "ReminderSent") == [start + timedelta(days=10), start + timedelta(days=15)]
    assert view["status"]["id"] == "waiting_customer"

    advance(system, clock, start + timedelta(days=21))
    view = request_view(system, key, version=5)
    assert view["status"]["id"] == "closed"
    [closed] = at(view, "TicketClosed")
    assert closed == start + timedelta(days=20)

    # filed in the portal (no acknowledgement): information asked, two reminders, closed
    sent = eventually(lambda: len(mails_about(system, key)) >= 4 and mails_about(system, key))
    assert [to for to, _ in sent] == [REQUESTER] * 4, sent
    reopened = requester(system, "workflow").post(f"/requests/{key}/reopen", json={})
    assert reopened.status_code in (403, 409, 422), reopened.text  # closed is final here


def test_cloud_partner_comments_at_3_and_6_days_closes_at_12_and_can_be_reopened(
    system: System,
) -> None:
    start = datetime.fromisoformat("2027-05-03T07:00:00+00:00")  # a Monday, 09:00 in Paris
    clock = new_clock(system, "cloud-partner", start.isoformat())
    ticket = file_request(system, clock, policy_id="cloud-partner")
    key = ticket["key"]
    request_view(system, key)
    eventually(lambda: workflow_now(system, key) == start)
    agent = client(system, "workflow", AGENT, roles={"cloud-partner": ["agent"]})
    asked = agent.post(f"/requests/{key}/request-information", json={"comment": "Quel add-on ?"})
    assert asked.status_code == 200, asked.text

    advance(system, clock, start + timedelta(days=13), key=key)
    view = request_view(system, key, version=5)
    assert at(view, "ReminderSent") == [start + timedelta(days=3), start + timedelta(days=6)]
    assert at(view, "TicketClosed") == [start + timedelta(days=12)]
    assert view["status"]["id"] == "closed"

    reopened = requester(system, "workflow").post(
        f"/requests/{key}/reopen", json={"comment": "Toujours bloqué"}
    )
    assert reopened.status_code == 200, reopened.text
    view = request_view(system, key, version=6)
    assert view["status"]["id"] == "in_progress"
    assert at(view, "TicketReopened") == [start + timedelta(days=13)]  # on the clock's time

    # as it was a week in, on the clock's time (a year after the real today)
    week = (start + timedelta(days=7)).isoformat()
    then = lead(system, "workflow").get(f"/requests/{key}", params={"as_of": week})
    assert then.status_code == 200, then.text
    assert then.json()["status"]["id"] == "waiting_customer"
    assert types(then.json())[-2:] == ["ReminderSent", "ReminderSent"]


def test_a_response_warning_then_a_breach_across_easter_on_the_geneva_calendar(
    system: System,
) -> None:
    start = datetime.fromisoformat("2027-03-25T15:30:00+00:00")  # Thursday 16:30 in Geneva
    clock = new_clock(system, "erp-vendor", start.isoformat())
    ticket = file_request(system, clock, policy_id="erp-vendor", priority="high")
    sla = lead(system, "sla")

    def clocks() -> dict[str, Any] | None:
        response = sla.get(f"/requests/{ticket['key']}/clocks")
        return response.json() if response.status_code == 200 else None

    response = eventually(clocks)["response"]
    assert response["state"] == "running"
    assert datetime.fromisoformat(response["due_at"]) == datetime.fromisoformat(
        "2027-03-30T07:00:00+00:00"
    )

    advance(system, clock, datetime.fromisoformat("2027-03-30T06:29:00+00:00"))
    assert eventually(clocks)["response"]["state"] == "running"
    pending = {t["kind"] for t in eventually(clocks)["pending_timers"]}
    assert pending == {"sla_warning", "sla_breach"}  # nothing fired over Easter
    assert sla_events(system, ticket["ticket_id"]) == []

    advance(system, clock, datetime.fromisoformat("2027-03-30T06:45:00+00:00"))
    warned = datetime.fromisoformat("2027-03-30T06:30:00+00:00")  # 08:30 in Geneva
    published = eventually(lambda: sla_events(system, ticket["ticket_id"]))
    assert published == [("SlaWarningReached", "response", warned)]

    advance(system, clock, datetime.fromisoformat("2027-03-30T07:05:00+00:00"))
    breached = datetime.fromisoformat("2027-03-30T07:00:00+00:00")  # 09:00 in Geneva
    published = eventually(lambda: len(sla_events(system, ticket["ticket_id"])) > 1 or None)
    assert sla_events(system, ticket["ticket_id"]) == [
        ("SlaWarningReached", "response", warned),
        ("SlaBreached", "response", breached),
    ]
    assert eventually(clocks)["response"]["breached"] is True

    # unassigned: the desk's team lead is told of each, the requester of neither
    told = eventually(lambda: len(mails_about(system, ticket["key"])) >= 2 or None)
    told = mails_about(system, ticket["key"])
    assert [to for to, _ in told] == [LEAD, LEAD], told
    assert "SLA" in told[0][1] and "SLA" in told[1][1], told


def test_a_survey_link_expires_after_30_days_of_its_request_s_clock(system: System) -> None:
    start = datetime.fromisoformat("2026-03-02T14:00:00+00:00")  # in the past: real time would
    clock = new_clock(system, "saas-desk", start.isoformat())  # have expired it long ago
    ticket = file_request(
        system, clock, policy_id="saas-desk", request_type="problem_report", priority="low"
    )
    key = ticket["key"]
    request_view(system, key)
    eventually(lambda: workflow_now(system, key) == start)
    agent = client(system, "workflow", AGENT, roles={"saas-desk": ["agent"]})
    closed = agent.post(f"/requests/{key}/close", json={"resolution_code": "fixed"})
    assert closed.status_code == 200, closed.text
    survey = re.compile(r"/survey/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")

    def token() -> str | None:
        for mail in mails(system.mail_folder):
            if key in mail["Subject"] and mail["To"] == REQUESTER:
                found = survey.search(mail.get_body(("plain",)).get_content())
                if found:
                    return found.group(1)
        return None

    link = f"/surveys/{eventually(token)}"
    intake = httpx.Client(base_url=system.url("intake"), timeout=10)
    shown = intake.get(link)
    assert shown.status_code == 200, shown.text
    assert datetime.fromisoformat(shown.json()["expires_at"]) == start + timedelta(days=30)

    advance(system, clock, start + timedelta(days=29, hours=23))
    assert intake.get(link).status_code == 200
    advance(system, clock, start + timedelta(days=30))
    expired = eventually(lambda: (shown := intake.get(link)).status_code == 410 and shown)
    assert expired.json()["expired_at"], expired.text  # once intake reads the clock there
    answered = intake.post(link, json={"rating": 5})
    assert answered.status_code == 410, answered.text


def test_a_clock_attached_to_a_desk_dates_every_new_request_of_it_even_by_mail(
    system: System,
) -> None:
    """Last of the tests on this system: from here on every new cloud-partner request lives on
    the clock (one a desk, and a clock is never removed)."""
    start = datetime.fromisoformat("2027-06-01T08:00:00+00:00")
    known = clocks_known(system, "intake-mail")
    created = lead(system, "sla").post(
        "/test-clocks",
        json={"desk": "cloud-partner", "at": start.isoformat(), "attached_to": "desk"},
    )
    assert created.status_code == 201, created.text
    second = lead(system, "sla").post(
        "/test-clocks",
        json={"desk": "cloud-partner", "at": start.isoformat(), "attached_to": "desk"},
    )
    assert second.status_code == 409, second.text  # one clock a desk

    subject = f"Sauvegarde manquante {uuid.uuid4().hex[:6]}"
    message = EmailMessage()
    message["From"], message["To"] = REQUESTER, "support@cloud-partner.example"
    message["Subject"], message["Message-ID"] = subject, f"<{uuid.uuid4().hex}@acme.example>"
    message.set_content("La sauvegarde de cette nuit n'a pas tourné.")

    def mailed() -> dict[str, Any] | None:
        found = lead(system, "workflow").get("/requests", params={"policy_id": "cloud-partner"})
        rows = [r for r in found.json() if r["subject"] == subject]
        return rows[0] if rows else None

    eventually(lambda: clocks_known(system, "intake-mail") > known)  # the gateway has read it
    with smtplib.SMTP("127.0.0.1", system.mail_port, timeout=10) as gateway:
        gateway.send_message(message)
    row = eventually(mailed)
    view = request_view(system, row["key"])
    assert datetime.fromisoformat(view["created_at"]) == start
