"""Requests filed and handled through the services' own APIs, for the browser tests: Anne's
requests through intake (as the customer she is), the desks' lead Léa's calls to workflow and
sla, and the console's command forms filled and sent in a page."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from e2e_support import eventually
from identity_support import bearer
from playwright.sync_api import Page
from system import System

ANNE = "anne@acme.example"  # a customer of ACME, at every desk
LEA = "lea@desk.example"  # the lead of every desk
LEADS = {"erp-vendor": ["team_lead"], "cloud-partner": ["team_lead"], "saas-desk": ["supervisor"]}


def file_request(
    system: System,
    desk: str,
    subject: str,
    *,
    wait: bool = True,
    **fields: Any,
) -> str:
    """A request of Anne's at `desk` made through intake (a support request at medium priority
    unless `fields` say otherwise); its key, once workflow shows it to Léa when `wait`."""
    anne = bearer(ANNE, audience="intake", organisation="acme", signer=system.signer())
    body = {
        "policy_id": desk, "request_type": "support", "priority": "medium", "subject": subject,
        "description": "Le rapport mensuel échoue depuis la mise à jour.",
        "organisation_id": "acme", "requester": ANNE, "language": "fr", **fields,
    }  # fmt: skip
    answer = httpx.post(
        f"{system.url('intake')}/requests", json=body, timeout=10,
        headers={**anne, "Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    key = str(answer.json()["key"])
    if wait:
        eventually(lambda: as_lead(system, "GET", f"/requests/{key}").status_code == 200)
    return key


def as_lead(
    system: System, method: str, path: str, body: Any = None, service: str = "workflow"
) -> httpx.Response:
    """`method path` on `service` as Léa, lead of every desk."""
    lea = bearer(LEA, audience=service, roles=LEADS, signer=system.signer())
    return httpx.request(method, f"{system.url(service)}{path}", json=body, headers=lea, timeout=10)


def send_form(page: Page, name: str, **fields: str) -> None:
    """Fill the console's form `cmd-<name>` (a select by value) and send it; ends on the page
    it leads to."""
    form = page.locator(f"form#cmd-{name}")
    assert form.count() == 1, f"no form {name} on {page.url}"
    for field, value in fields.items():
        control = form.locator(f"[name={field}]")
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
