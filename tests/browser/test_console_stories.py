"""Every staff command of every seed desk, from the agents' console in a real browser on the
whole system, with the requester's side in a second browser context seeing each change.

One story per desk, driven by the desk's team lead (Léa: every staff command of each desk is
hers): erp-vendor's path of the issue (Open → Qualified → In progress → Waiting for triage →
In progress → Resolved → confirmed by the requester → Closed, with the other escalations, an
assignment, a question answered, a link, a participant, muting), an internal note the requester
never sees, a priority lowered with its reason (refused without one) and the requester's mail
about it; cloud-partner's third party and scheduled operation, closing and reopening; saas-desk's
start, answer, close and reopen. The statuses the requester reads are the policy's labels. Every
console page passes axe-core and breaks no rule of the Content-Security-Policy."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_support import assert_accessible, screenshot, sign_in, watched_page
from e2e_support import eventually, mails
from filing_support import ANNE, LEA, file_request, send_form
from playwright.sync_api import Browser, Page
from system import System

from desk_policies.loader import shipped_policy

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def create(system: System, desk: str, subject: str, request_type: str = "support") -> str:
    """A high-priority request of Anne's at `desk`, made through intake; its key once workflow
    has it."""
    return file_request(system, desk, subject, request_type=request_type, priority="high")


def label(desk: str, status: str) -> str:
    """The French label of `status` at `desk`, from its policy."""
    return shipped_policy(desk).status(status).labels.fr


@dataclass
class Sides:
    """The agent's console page and the requester's page of one request."""

    desk: str
    key: str
    agent: Page
    requester: Page

    def act(self, name: str, **fields: str) -> None:
        """Fill and send the console's form `name`; it must be accepted."""
        self.send(name, **fields)
        done = self.agent.locator("p.notice[role=status]")
        assert done.count() == 1, self.agent.locator("main").inner_text()[:2000]

    def send(self, name: str, **fields: str) -> None:
        """Fill and send the console's form `name`, whatever comes of it."""
        send_form(self.agent, name, **fields)

    def forms(self) -> list[str]:
        """The command forms the console offers now."""
        ids = self.agent.locator("form[id^=cmd-]").evaluate_all("fs => fs.map(f => f.id)")
        return [str(i)[4:] for i in ids]

    def status_is(self, status: str) -> None:
        """Both sides show `status` (the requester's page reloaded)."""
        expected = label(self.desk, status)
        assert self.agent.locator("#status").inner_text().strip().startswith(expected), (
            self.agent.locator("#status").inner_text()
        )
        self.requester.goto(f"/requests/{self.key}")
        assert self.requester.locator("#status-label").inner_text() == expected


@contextmanager
def both_sides(browser: Browser, system: System, desk: str, key: str) -> Iterator[Sides]:
    """Léa in the console on `key`, Anne on her page of it, each in a browser context."""
    with (
        watched_page(browser, system.url("portal"), "fr") as agent,
        watched_page(browser, system.url("portal"), "fr") as requester,
    ):
        sign_in(agent.page, LEA, system.demo_password)
        sign_in(requester.page, ANNE, system.demo_password)
        agent.page.goto(f"/console/requests/{key}?lang=fr")
        assert agent.page.locator("#request-key").inner_text() == key
        yield Sides(desk, key, agent.page, requester.page)


def test_erp_vendor_from_open_to_closed(browser: Browser, system: System, tmp_path: Path) -> None:
    desk = "erp-vendor"
    other = create(system, desk, "Demande précédente")
    key = create(system, desk, f"Rapport mensuel {uuid.uuid4().hex[:6]}")
    with both_sides(browser, system, desk, key) as sides:
        agent = sides.agent
        sides.status_is("open")
        assert_accessible(agent)
        sides.act("qualify")
        sides.status_is("qualified")
        sides.act("assign", assignee_id="paul@desk.example")
        assert "paul@desk.example" in agent.locator("#assignee").inner_text()
        sides.act("start")
        sides.status_is("in_progress")
        secret = f"Licence interne {uuid.uuid4().hex[:8]}"
        sides.act("note", body=secret)
        assert agent.locator("ol#history > li.internal", has_text=secret).count() == 1
        sides.act("comment", body="Nous analysons le rapport.")
        sides.requester.goto(f"/requests/{key}")
        assert "Nous analysons le rapport." in sides.requester.locator("main").inner_text()
        assert secret not in sides.requester.content()

        sides.send("change_priority", priority="low")  # lowering needs its reason
        assert agent.locator("#form-error").count() == 1
        assert_accessible(agent)
        reason = f"Contournement trouvé {uuid.uuid4().hex[:6]}"
        sides.act("change_priority", priority="low", reason=reason)

        def told() -> bool:
            return any(
                m["To"] == ANNE and f"Motif : {reason}" in m.get_body(("plain",)).get_content()
                for m in mails(system.mail_folder)
            )

        eventually(told)

        for target, status in (("triage", "waiting_triage"), ("rnd", "waiting_rnd"),
                               ("level2", "escalated_level2")):  # fmt: skip
            sides.act("escalate", target=target, comment=f"Analyse {target}")
            sides.status_is(status)
            sides.act("return_from_escalation", comment="Analysé")
            sides.status_is("in_progress")
        sides.act("request_information", comment="Quelle version utilisez-vous ?")
        sides.status_is("waiting_customer")
        requester = sides.requester
        requester.fill("#comment-body", "La version 4.2.")
        with requester.expect_navigation():
            requester.locator("#send-comment").click()
        agent.goto(f"/console/requests/{key}")
        sides.status_is("in_progress")
        sides.act("link_request", linked_key=other)
        sides.act("add_participant", participant_id="bruno@acme.example")
        sides.act("mute", participant_id="bruno@acme.example")
        sides.act("unmute", participant_id="bruno@acme.example")
        sides.act("resolve", resolution_code="handled", comment="Certificat renouvelé.")
        sides.status_is("resolved")
        screenshot(agent, "console-request-resolved", tmp_path)
        with requester.expect_navigation():
            requester.locator("#action-confirm button[type=submit]").click()
        agent.goto(f"/console/requests/{key}")
        assert agent.locator("ol#history > li").count() > 10
        sides.act("close", resolution_code="handled")
        sides.status_is("closed")
        assert "reopen" not in sides.forms()  # a closed erp-vendor request is final
        assert_accessible(agent)


def test_cloud_partner_third_party_operation_and_reopening(
    browser: Browser, system: System
) -> None:
    desk = "cloud-partner"
    key = create(system, desk, f"Quota dépassé {uuid.uuid4().hex[:6]}")
    with both_sides(browser, system, desk, key) as sides:
        sides.act("assign", assignee_id="paul@desk.example")
        sides.act("start")
        sides.status_is("in_progress")
        sides.act("wait_for_third_party", party="atlassian", comment="Signalé à Atlassian")
        sides.status_is("waiting_third_party")
        sides.act(
            "schedule_operation", scheduled_for="2027-01-15T20:00",
            responsible="paul@desk.example", comment="Mise à jour en fenêtre de maintenance",
        )  # fmt: skip
        sides.status_is("scheduled_operation")
        assert re.search(r"15\.01\.2027|2027-01-15|15/01/2027", sides.requester.content())
        sides.act("request_information", comment="Quel abonnement ?")
        sides.status_is("waiting_customer")
        sides.act("start")
        sides.act("resolve", resolution_code="done", comment="Le quota est relevé.")
        sides.status_is("resolved")
        sides.act("close", resolution_code="done")
        sides.status_is("closed")
        sides.act("reopen", comment="Le quota est de nouveau atteint.")
        sides.status_is("in_progress")
        sides.act("close", resolution_code="done")
        assert_accessible(sides.agent)


def test_saas_desk_start_answer_close_and_reopen(browser: Browser, system: System) -> None:
    desk = "saas-desk"
    key = create(system, desk, f"Export en échec {uuid.uuid4().hex[:6]}", "problem_report")
    with both_sides(browser, system, desk, key) as sides:
        sides.act("start")
        sides.status_is("assigned")
        sides.act("assign", assignee_id="paul@desk.example")
        sides.act("change_priority", priority="critical", reason="Toute l'équipe est bloquée")
        sides.act("resolve", resolution_code="answered", comment="Essayez le nouvel export.")
        sides.status_is("answered")
        sides.act("close", resolution_code="fixed")
        sides.status_is("closed")
        sides.act("reopen", comment="L'export échoue encore.")
        sides.status_is("assigned")
        assert_accessible(sides.agent)
