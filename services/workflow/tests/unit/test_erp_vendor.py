"""erp-vendor, as its seed pages say it (000, 001, 002): one test per rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from workflow_story import Desk, actor

from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    PriorityChanged,
    ReminderSent,
    RequesterAnswered,
    TicketClosed,
    TicketEscalated,
)
from workflow.domain import (
    Actor,
    AddComment,
    AddParticipant,
    Assign,
    AutoClose,
    ChangePriority,
    Close,
    ConfirmResolution,
    DisputeResolution,
    Escalate,
    EscalateByRequester,
    LinkRequest,
    MuteNotifications,
    Qualify,
    Reopen,
    RequestInformation,
    Resolve,
    ReturnFromEscalation,
    SendReminder,
    StartWork,
)

Make = Callable[[str], Desk]
FRONT, DAILY, AGENT = actor("front_desk"), actor("daily"), actor("service_desk")
EXPERT, RND, L2 = actor("product_expert"), actor("rnd"), actor("level2_consultant")
ALICE = actor("requester")


def in_progress(desk: Make) -> Desk:
    d = desk("erp-vendor").create()
    d.run(Qualify(actor=FRONT), Assign(actor=DAILY, assignee_id="bob"))
    return d.run(StartWork(actor=AGENT))


def waiting_for_customer(desk: Make) -> Desk:
    return in_progress(desk).run(RequestInformation(actor=AGENT, comment="Which version?"))


def test_a_new_request_is_open_and_waits_for_the_front_desk(desk: Make) -> None:
    d = desk("erp-vendor").create()
    assert d.status == "open"
    assert d.state.policy.status("open").expected_actor == "front_desk"


def test_front_desk_qualifies_then_the_daily_assigns_then_service_desk_works(desk: Make) -> None:
    d = in_progress(desk)
    kinds = [type(e).__name__ for e in d.history]
    assert kinds == ["TicketCreated", "TicketQualified", "TicketAssigned", "WorkStarted"]
    assert d.status == "in_progress" and d.state.assignee_id == "bob"


def test_a_requester_cannot_qualify_their_own_request(desk: Make) -> None:
    d = desk("erp-vendor").create()
    assert "requester may not qualify" in d.refused(Qualify(actor=ALICE))


def test_only_sales_administration_creates_licence_requests(desk: Make) -> None:
    d = desk("erp-vendor")
    assert d.state.policy.request_type("licence").creators == ("sales_admin",)  # type: ignore[union-attr]
    d.create("licence", role="sales_admin", key="LIC-7")
    assert d.state.key == "LIC-7"
    assert d.state.created_by_role == "sales_admin"


def test_patch_and_fix_deployment_requests_are_not_sla_bound(desk: Make) -> None:
    policy = desk("erp-vendor").state.policy
    bound = {t.prefix: t.sla_bound for t in policy.request_types}
    assert bound == {"SPT": True, "PSP": False, "PSP2": False, "LIC": False}


def test_escalation_to_product_experts_spc_then_rnd_rpc_and_back(desk: Make) -> None:
    d = in_progress(desk)
    d.do(Escalate(actor=AGENT, target="triage", comment="SPC"))
    assert d.status == "waiting_triage"
    d.do(Escalate(actor=EXPERT, target="rnd", comment="RPC: development task"))
    assert d.status == "waiting_rnd"
    assert isinstance(d.history[-1], TicketEscalated) and d.history[-1].target == "rnd"
    d.do(ReturnFromEscalation(actor=RND, comment="fixed in 12.4"))
    assert d.status == "in_progress"


def test_escalation_to_level_2_and_back(desk: Make) -> None:
    d = in_progress(desk).run(Escalate(actor=AGENT, target="level2"))
    assert d.status == "escalated_level2"
    assert d.state.policy.status(d.status or "").expected_actor == "level2_consultant"
    d.do(ReturnFromEscalation(actor=L2))
    assert d.status == "in_progress"


def test_escalating_where_it_already_is_is_refused(desk: Make) -> None:
    d = in_progress(desk).run(Escalate(actor=AGENT, target="triage"))
    assert "already" in d.refused(Escalate(actor=EXPERT, target="triage"))


def test_asking_for_information_needs_a_comment(desk: Make) -> None:
    d = in_progress(desk)
    assert "comment" in d.refused(RequestInformation(actor=AGENT, comment="  "))


def test_requester_comment_while_waiting_for_customer_moves_back_to_in_progress(
    desk: Make,
) -> None:
    d = waiting_for_customer(desk)
    (event,) = d.do(AddComment(actor=ALICE, body="Version 12.3, company 01"))
    assert isinstance(event, RequesterAnswered)
    assert (event.from_status, event.to_status) == ("waiting_customer", "in_progress")


def test_agent_comment_while_waiting_for_customer_keeps_waiting(desk: Make) -> None:
    d = waiting_for_customer(desk).run(AddComment(actor=AGENT, body="Any news?"))
    assert d.status == "waiting_customer"


def test_replies_by_email_are_refused_with_a_pointer_to_the_portal(desk: Make) -> None:
    d = waiting_for_customer(desk)
    reason = d.refused(AddComment(actor=ALICE, body="re: ...", channel=Channel.EMAIL))
    assert "portal" in reason and "https://" in reason


def test_resolution_is_confirmed_by_the_requester_then_closed_by_the_agent(desk: Make) -> None:
    d = in_progress(desk).run(Resolve(actor=AGENT, resolution_code="handled", comment="Done"))
    assert d.status == "resolved"
    assert "not confirmed" in d.refused(Close(actor=AGENT))
    d.run(ConfirmResolution(actor=ALICE), Close(actor=AGENT))
    assert d.status == "closed" and d.state.resolution_code == "handled"


def resolved(desk: Make) -> Desk:
    return in_progress(desk).run(Resolve(actor=AGENT, resolution_code="handled", comment="Done"))


def test_the_requester_confirms_by_commenting_and_the_agent_closes_citing_it(
    desk: Make,
) -> None:
    d = resolved(desk)
    (comment,) = d.do(AddComment(actor=ALICE, body="ça fonctionne"))
    assert isinstance(comment, CommentAdded) and d.status == "resolved"
    cited = d.state.version
    reason = d.refused(Close(actor=AGENT))
    assert "cite the requester's comment confirming the resolution" in reason
    assert "confirmation is not cited" in reason and f"confirmation_version: {cited})" in reason
    (closed,) = d.do(Close(actor=AGENT, confirmation_version=cited))
    assert isinstance(closed, TicketClosed) and closed.confirmation_version == cited
    assert d.status == "closed" and d.state.resolution_code == "handled"


def test_a_participant_s_comment_confirms_too(desk: Make) -> None:
    d = in_progress(desk).run(AddParticipant(actor=ALICE, participant_id="bob@acme.example"))
    d.do(Resolve(actor=AGENT, resolution_code="handled", comment="Done"))
    d.do(AddComment(actor=actor("participant", "bob@acme.example"), body="OK pour nous"))
    cited = d.state.version
    (closed,) = d.do(Close(actor=AGENT, confirmation_version=cited))
    assert isinstance(closed, TicketClosed) and closed.confirmation_version == cited


def _agent_comment(d: Desk) -> int:
    d.do(AddComment(actor=AGENT, body="Le correctif est installé"))
    return d.state.version


def _internal_note(d: Desk) -> int:
    d.do(AddComment(actor=AGENT, body="ça fonctionne", public=False))
    return d.state.version


def _colleague_not_following(d: Desk) -> int:
    d.do(AddComment(actor=actor("requester", "carl@acme.example"), body="ça fonctionne"))
    return d.state.version


def _resolution_itself(d: Desk) -> int:
    return d.state.resolved_version


@pytest.mark.parametrize(
    ("cite", "why"),
    [
        (_agent_comment, "is not a public comment by the requester or a participant"),
        (_internal_note, "is not a public comment by the requester or a participant"),
        (_colleague_not_following, "is not a public comment by the requester or a participant"),
        (_resolution_itself, "is not a public comment by the requester or a participant"),
        (lambda d: d.state.version + 1, "has no version"),
    ],
    ids=["agent comment", "internal note", "colleague", "resolution", "unknown version"],
)
def test_closing_citing_what_is_not_the_customer_s_confirmation_is_refused(
    desk: Make, cite: Callable[[Desk], int], why: str
) -> None:
    d = resolved(desk)
    reason = d.refused(Close(actor=AGENT, confirmation_version=cite(d)))
    assert why in reason
    assert "cite the requester's comment confirming the resolution" in reason


def test_a_comment_before_the_resolution_does_not_confirm_it(desk: Make) -> None:
    d = in_progress(desk).run(AddComment(actor=ALICE, body="ça fonctionne"))
    before = d.state.version
    d.do(Resolve(actor=AGENT, resolution_code="handled", comment="Done"))
    d.do(AddComment(actor=ALICE, body="Merci"))
    reason = d.refused(Close(actor=AGENT, confirmation_version=before))
    assert f"version {before} is not a public comment" in reason
    assert f"since the resolution (version {before + 1})" in reason
    assert f"confirmation_version: {before + 2})" in reason  # the one that may be cited


def test_a_comment_on_an_earlier_resolution_does_not_confirm_the_next(desk: Make) -> None:
    d = resolved(desk).run(AddComment(actor=ALICE, body="ça fonctionne"))
    earlier = d.state.version
    d.do(StartWork(actor=AGENT))
    d.do(Resolve(actor=AGENT, resolution_code="handled", comment="Done again"))
    reason = d.refused(Close(actor=AGENT, confirmation_version=earlier))
    assert "is not a public comment" in reason and "(confirmation_version)" in reason


def test_a_comment_rejecting_the_resolution_lets_the_agent_resume_work(desk: Make) -> None:
    d = resolved(desk).run(AddComment(actor=ALICE, body="Toujours en erreur pour la société 02"))
    assert d.status == "resolved"  # the agent reads it and decides
    d.do(StartWork(actor=AGENT))
    assert d.status == "in_progress" and d.state.resolution_replies == ()


def test_citing_a_comment_where_no_resolution_awaits_confirmation_is_refused(
    desk: Make,
) -> None:
    d = in_progress(desk).run(AddComment(actor=ALICE, body="ça fonctionne"))
    reason = d.refused(Close(actor=AGENT, confirmation_version=d.state.version))
    assert "has no resolution awaiting confirmation" in reason


def test_a_confirmed_resolution_closes_citing_a_comment_or_not(desk: Make) -> None:
    d = resolved(desk).run(ConfirmResolution(actor=ALICE))
    assert "is not a public comment" in d.refused(Close(actor=AGENT, confirmation_version=2))
    (closed,) = d.do(Close(actor=AGENT))
    assert isinstance(closed, TicketClosed) and closed.confirmation_version is None


def test_requester_disputes_the_resolution_and_work_resumes(desk: Make) -> None:
    d = in_progress(desk).run(Resolve(actor=AGENT, resolution_code="handled", comment="Done"))
    assert "comment" in d.refused(DisputeResolution(actor=ALICE, comment=""))
    d.do(DisputeResolution(actor=ALICE, comment="Still failing for company 02"))
    assert d.status == "in_progress" and not d.state.resolution_confirmed


def test_closed_when_handled_or_escalated(desk: Make) -> None:
    d = in_progress(desk).run(Close(actor=AGENT, resolution_code="escalated", comment="consulting"))
    assert d.status == "closed" and d.state.resolution_code == "escalated"


def test_closed_is_final_no_reopening(desk: Make) -> None:
    d = in_progress(desk).run(Close(actor=AGENT, resolution_code="handled"))
    reason = d.refused(Reopen(actor=ALICE))
    assert "open a new request" in reason and "SPT-1042" in reason


def test_closed_is_final_no_comments(desk: Make) -> None:
    d = in_progress(desk).run(Close(actor=AGENT, resolution_code="handled"))
    assert "new request" in d.refused(AddComment(actor=ALICE, body="One more thing"))
    assert "new request" in d.refused(AddComment(actor=AGENT, body="note", public=False))


def test_a_new_request_references_the_closed_one(desk: Make) -> None:
    d = desk("erp-vendor").create(key="SPT-2000")
    d.do(LinkRequest(actor=ALICE, linked_key="SPT-1042"))
    assert d.state.links == ("SPT-1042",)
    assert "already" in d.refused(LinkRequest(actor=ALICE, linked_key="SPT-1042"))


def test_reminders_after_10_and_15_days_without_answer(desk: Make) -> None:
    d = waiting_for_customer(desk)
    armed = d.state.version
    assert "not waited" in d.refused(SendReminder(armed_version=armed, days_waiting=10))
    d.later(days=10)
    (first,) = d.do(SendReminder(armed_version=armed, days_waiting=10))
    assert isinstance(first, ReminderSent)
    d.later(days=5)
    (second,) = d.do(SendReminder(armed_version=armed, days_waiting=15))
    assert isinstance(second, ReminderSent) and second.days_waiting == 15


def test_closed_automatically_after_20_days_without_answer(desk: Make) -> None:
    d = waiting_for_customer(desk)
    armed = d.state.version
    d.later(days=20)
    (event,) = d.do(AutoClose(armed_version=armed))
    assert isinstance(event, TicketClosed) and event.automatic
    assert d.status == "closed" and d.state.resolution_code == "no_answer"


def test_reminder_armed_before_the_requester_answered_does_nothing(desk: Make) -> None:
    d = waiting_for_customer(desk)
    armed = d.state.version
    d.later(days=3).do(AddComment(actor=ALICE, body="Here it is"))
    d.do(RequestInformation(actor=AGENT, comment="And the logs?"))
    d.later(days=20)
    assert d.do(SendReminder(armed_version=armed, days_waiting=10)) == []
    assert d.do(AutoClose(armed_version=armed)) == []
    assert d.status == "waiting_customer"


def test_the_same_reminder_is_sent_once(desk: Make) -> None:
    d = waiting_for_customer(desk)
    armed = d.state.version
    d.later(days=11).do(SendReminder(armed_version=armed, days_waiting=10))
    assert d.do(SendReminder(armed_version=armed, days_waiting=10)) == []


def test_an_unanswered_confirmation_request_is_closed_after_20_days(desk: Make) -> None:
    d = in_progress(desk).run(Resolve(actor=AGENT, resolution_code="handled", comment="Done"))
    d.later(days=20).do(AutoClose(armed_version=d.state.version))
    assert d.status == "closed" and d.state.resolution_code == "handled"


def test_customer_services_may_lower_the_priority_and_must_inform_the_client(
    desk: Make,
) -> None:
    d = in_progress(desk)
    assert "reason" in d.refused(ChangePriority(actor=AGENT, priority="low"))
    (event,) = d.do(ChangePriority(actor=AGENT, priority="low", reason="A workaround exists"))
    assert isinstance(event, PriorityChanged)
    assert event.requester_must_be_informed and event.reason == "A workaround exists"


def test_the_requester_cannot_change_the_priority_after_creation(desk: Make) -> None:
    d = in_progress(desk)
    assert "may not change the priority" in d.refused(ChangePriority(actor=ALICE, priority="high"))


def test_customers_use_the_escalation_matrix_not_a_button(desk: Make) -> None:
    d = in_progress(desk)
    assert "may not escalate" in d.refused(EscalateByRequester(actor=ALICE))


def test_requester_mutes_notifications_for_this_request(desk: Make) -> None:
    d = in_progress(desk).run(MuteNotifications(actor=ALICE, participant_id="alice@acme.example"))
    assert d.state.muted == {"alice@acme.example"}


def test_a_colleague_of_the_same_company_is_added_as_participant(desk: Make) -> None:
    d = in_progress(desk).run(AddParticipant(actor=ALICE, participant_id="bob@acme.example"))
    bob = actor("participant", "bob@acme.example")
    d.do(RequestInformation(actor=AGENT, comment="Logs?"))
    d.do(AddComment(actor=bob, body="Attached"))
    assert d.status == "in_progress"


def test_another_organisation_cannot_touch_the_request(desk: Make) -> None:
    d = waiting_for_customer(desk)
    stranger = Actor(id="eve@other.test", role="requester", organisation_id="other")
    assert "another organisation" in d.refused(AddComment(actor=stranger, body="hello"))


def test_reminders_restart_when_the_requester_answers(desk: Make) -> None:
    d = waiting_for_customer(desk)
    d.later(days=9).do(AddComment(actor=ALICE, body="Answer"))
    d.do(RequestInformation(actor=AGENT, comment="One more detail"))
    armed = d.state.version
    d.later(days=2)
    assert "not waited" in d.refused(SendReminder(armed_version=armed, days_waiting=10))
    d.later(days=8)
    assert len(d.do(SendReminder(armed_version=armed, days_waiting=10))) == 1
    assert d.state.waiting_since is not None
    assert d.now - d.state.waiting_since == timedelta(days=10)
