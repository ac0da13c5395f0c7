"""One request gives one trace across every process it crosses, each a separate process.

Every process exports its spans with the OpenTelemetry SDK's OTLP exporter to a local receiver
(`otlp_receiver`). A request filed in the portal: the portal's span is the root, and intake's
append, its relay's send to Kafka, workflow's, sla's and the notifier's handling of the
events, and the notifier's SMTP send of the acknowledgement all hang from it, in one tree. A
mail to the gateway: the same from the gateway's SMTP span. Log lines carry the trace id. A
trace a caller of the portal names is not believed.
"""

from __future__ import annotations

import json
import smtplib
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage

import httpx
import pytest
from e2e_support import eventually, mails
from otlp_receiver import Receiver, Span
from portal_support import CSRF_FIELD
from system import System

pytestmark = pytest.mark.e2e

ANNE = "anne@acme.example"  # a customer of acme in the demo directory
REQUEST = {
    "policy_id": "saas-desk",
    "request_type": "problem_report",
    "priority": "high",
    "subject": "Le tableau de bord ne charge plus",
    "description": "Page blanche depuis ce matin",
    "organisation_id": "acme",
    "requester": ANNE,
    "language": "fr",
}
SERVER, PRODUCER, CONSUMER = 2, 4, 5  # OTLP's span kinds
CROSSED = {"portal", "intake", "workflow", "sla", "notifier"}
FORGED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"  # a caller's, sampled


@pytest.fixture(scope="module")
def system(one_system: System) -> System:
    """The system of tests/e2e/conftest.py, its processes exporting to `receiver`."""
    return one_system


def one_tree(spans: list[Span]) -> Span:
    """The root of `spans`, checked to be one tree: one root, every other span's parent in
    it."""
    ids = {span.span_id for span in spans}
    roots = [span for span in spans if not span.parent_span_id]
    orphans = [span for span in spans if span.parent_span_id and span.parent_span_id not in ids]
    assert len(roots) == 1, roots
    assert not orphans, orphans
    return roots[0]


def whole_enough(spans: list[Span], services: set[str]) -> bool:
    """The trace reached the notifier's SMTP send and each of `services`, and every span's
    parent is in (each process exports at its own pace)."""
    sent = any(s.service == "notifier" and s.name == "smtp send" for s in spans)
    ids = {span.span_id for span in spans}
    parents = {span.parent_span_id for span in spans} - {""}
    return sent and {s.service for s in spans} >= services and parents <= ids


def whole(receiver: Receiver, trace_id: str, services: set[str], timeout: float) -> list[Span]:
    """The spans of the trace once `whole_enough`; what came by `timeout` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [span for span in receiver.spans() if span.trace_id == trace_id]
        if whole_enough(spans, services) or time.monotonic() > deadline:
            return spans
        time.sleep(0.2)


def answered(
    receiver: Receiver, roots: Callable[[], list[Span]], services: set[str], timeout: float
) -> tuple[Span, list[Span]]:
    """The first of the `roots()` whose trace came whole (see `whole`), with its spans; the
    last one's spans as they are when none did by `timeout` (for the asserts to show)."""
    deadline = time.monotonic() + timeout
    while True:
        found = roots()
        for root in found:
            spans = whole(receiver, root.trace_id, services, 0)
            if whole_enough(spans, services):
                return root, spans
        if time.monotonic() > deadline:
            return found[-1], whole(receiver, found[-1].trace_id, services, 0)
        time.sleep(0.2)


def file_in_portal(system: System) -> str:
    """File `REQUEST` as Anne, signed in to the portal; the request's id."""
    with httpx.Client(base_url=system.url("portal"), timeout=30) as browser:
        form = CSRF_FIELD.search(browser.get("/sign-in").text)
        assert form, "no sign-in form"
        csrf = form.group(1)
        signed_in = browser.post(
            "/sign-in", data={"email": ANNE, "password": system.demo_password, "csrf": csrf}
        )
        assert signed_in.status_code == 303, signed_in.text
        token = browser.get("/me").json()["csrf_token"]
        created = browser.post(
            "/api/intake/requests",
            json=REQUEST,
            # a caller's own trace is not believed: the portal starts one of ours
            headers={"X-CSRF-Token": token, "Idempotency-Key": "trace-1", "traceparent": FORGED},
        )
        assert created.status_code == 201, created.text
        return str(created.json()["ticket_id"])


def test_a_request_filed_in_the_portal_is_one_trace_to_its_acknowledgement(
    system: System, receiver: Receiver
) -> None:
    before = set(receiver.spans())  # the system is shared: what other tests did is in
    file_in_portal(system)
    eventually(lambda: [m for m in mails(system.mail_folder) if m["To"] == ANNE], 45)

    def filed() -> list[Span]:
        return [
            s
            for s in set(receiver.spans()) - before
            if s.service == "portal" and s.kind == SERVER and s.name.startswith("POST /api/")
        ]

    eventually(filed, 30)
    root, spans = answered(receiver, filed, CROSSED, 30)
    assert one_tree(spans) == root
    assert root.trace_id != FORGED.split("-")[1]
    assert {s.service for s in spans} >= CROSSED, sorted({s.service for s in spans})
    handled = {s.service for s in spans if s.kind == CONSUMER and s.name.endswith(" process")}
    assert handled >= {"workflow", "sla", "notifier"}, spans
    assert any(s.service == "intake" and s.kind == SERVER for s in spans)
    for service in ("intake", "workflow", "sla", "notifier"):  # each one's queries are in it
        assert any(s.service == service and s.name == "INSERT" for s in spans), service
    assert any(s.name.endswith(" send") and s.kind == PRODUCER for s in spans)  # a relay's
    workflow_lines = (system.logs / "workflow.log").read_text().splitlines()
    traced = [json.loads(line) for line in workflow_lines if root.trace_id in line]
    assert traced and all(line["trace_id"] == root.trace_id for line in traced), workflow_lines[-5:]


def test_a_mail_to_the_gateway_is_one_trace_to_its_acknowledgement(
    system: System, receiver: Receiver
) -> None:
    mail = EmailMessage()
    mail["From"], mail["To"] = f"Anne Martin <{ANNE}>", "support@saas-desk.example"
    mail["Subject"], mail["Message-ID"] = "Export vide", f"<{uuid.uuid4().hex}@acme.example>"
    mail.set_content("Bonjour,\n\nL'export sort vide.\n\nAnne")
    before = set(receiver.spans())
    with smtplib.SMTP("127.0.0.1", system.mail_port, timeout=10) as client:
        client.send_message(mail)

    def received() -> list[Span]:
        new = set(receiver.spans()) - before
        return [s for s in new if s.name == "smtp DATA" and s.kind == SERVER]

    eventually(received, 30)
    # ours is the one answered by mail (a mail of an earlier test, if its span came late, is not)
    gateway = {"intake-mail", "workflow", "sla", "notifier"}  # and intake if its relay leads
    root, spans = answered(receiver, received, gateway, 45)
    assert one_tree(spans) == root
    assert root.service == "intake-mail"
    assert {s.service for s in spans} >= gateway
