"""cloud-partner, as its seed page says it (003): one test per rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError
from workflow_story import Desk, actor

from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    OperationScheduled,
    RequesterAnswered,
    RequesterEscalated,
    TicketClosed,
    WaitingForThirdParty,
)
from workflow.domain import (
    AddComment,
    AutoClose,
    Close,
    ConfirmResolution,
    DisputeResolution,
    Escalate,
    EscalateByRequester,
    Qualify,
    Reopen,
    RequestInformation,
    Resolve,
    ScheduleOperation,
    SendReminder,
    StartWork,
    WaitForThirdParty,
)
from workflow.domain.commands import AttachedFile, Attachments

Make = Callable[[str], Desk]
AGENT, ALICE = actor("agent"), actor("requester")


def in_progress(desk: Make) -> Desk:
    return desk("cloud-partner").create().run(StartWork(actor=AGENT))


def waiting_for_customer(desk: Make) -> Desk:
    return in_progress(desk).run(RequestInformation(actor=AGENT, comment="Send the logs"))


def test_a_new_ticket_is_submitted(desk: Make) -> None:
    assert desk("cloud-partner").create().status == "submitted"


def test_when_the_team_starts_working_it_is_in_progress(desk: Make) -> None:
    assert in_progress(desk).status == "in_progress"


def test_there_is_no_qualification_step(desk: Make) -> None:
    d = desk("cloud-partner").create()
    assert "cannot qualify" in d.refused(Qualify(actor=AGENT))


def test_waiting_for_customer_comes_with_a_comment_detailing_what_is_needed(desk: Make) -> None:
    d = in_progress(desk)
    assert "comment" in d.refused(RequestInformation(actor=AGENT, comment=""))
    assert waiting_for_customer(desk).status == "waiting_customer"


def test_waiting_for_a_third_party_names_it(desk: Make) -> None:
    d = in_progress(desk)
    assert "third party" in d.refused(WaitForThirdParty(actor=AGENT, party="my cousin"))
    (event,) = d.do(WaitForThirdParty(actor=AGENT, party="addon_vendor"))
    assert isinstance(event, WaitingForThirdParty) and event.party == "addon_vendor"
    assert d.status == "waiting_third_party"


def test_a_scheduled_operation_says_when_and_who(desk: Make) -> None:
    d = in_progress(desk)
    when = d.now + timedelta(days=2)
    assert "responsible" in d.refused(
        ScheduleOperation(actor=AGENT, scheduled_for=when, responsible="")
    )
    (event,) = d.do(
        ScheduleOperation(actor=AGENT, scheduled_for=when, responsible="ops@partner", comment="Up")
    )
    assert isinstance(event, OperationScheduled)
    assert (event.scheduled_for, event.responsible) == (when, "ops@partner")
    assert d.status == "scheduled_operation"


def test_a_relevant_answer_closes_the_ticket(desk: Make) -> None:
    d = in_progress(desk).run(Close(actor=AGENT, resolution_code="done", comment="Answer"))
    assert d.status == "closed"


def test_a_consulting_need_is_closed_with_resolution_consulting(desk: Make) -> None:
    d = desk("cloud-partner").create().run(Close(actor=AGENT, resolution_code="consulting"))
    assert d.status == "closed" and d.state.resolution_code == "consulting"


def test_resolved_then_confirmed_by_the_requester_closes(desk: Make) -> None:
    d = in_progress(desk).run(Resolve(actor=AGENT, resolution_code="done", comment="Fixed"))
    assert d.status == "resolved"
    d.do(ConfirmResolution(actor=ALICE))
    assert d.status == "closed"


def test_resolved_then_disputed_goes_back_in_progress(desk: Make) -> None:
    d = in_progress(desk).run(Resolve(actor=AGENT, resolution_code="done", comment="Fixed"))
    d.do(DisputeResolution(actor=ALICE, comment="Not quite"))
    assert d.status == "in_progress"


def test_the_requester_reopens_a_closed_ticket_back_to_in_progress(desk: Make) -> None:
    d = in_progress(desk).run(Close(actor=AGENT, resolution_code="done"))
    d.later(days=400).do(Reopen(actor=ALICE, comment="It is back"))
    assert d.status == "in_progress" and d.state.closed_at is None


def test_reopening_an_open_ticket_is_refused(desk: Make) -> None:
    assert "not closed" in in_progress(desk).refused(Reopen(actor=ALICE))


def test_requester_comment_while_waiting_for_customer_moves_back_to_in_progress(
    desk: Make,
) -> None:
    d = waiting_for_customer(desk).run(AddComment(actor=ALICE, body="Logs attached"))
    assert d.status == "in_progress"


def test_the_files_of_a_comment_or_a_reply_are_carried_with_it(desk: Make) -> None:
    file = AttachedFile(filename="log.txt", content_type="text/plain", size=3, sha256="a" * 64)
    d = waiting_for_customer(desk)
    (reply,) = d.do(AddComment(actor=ALICE, body="Logs", attachments=(file,)))
    (comment,) = d.do(AddComment(actor=AGENT, body="Thanks", attachments=(file, file)))
    assert isinstance(reply, RequesterAnswered) and reply.attachments == (file.attachment(),)
    assert isinstance(comment, CommentAdded) and len(comment.attachments) == 2
    assert d.state.version > 0


def test_at_most_ten_files_on_a_comment_with_bounded_fields() -> None:
    file = {"filename": "a", "content_type": "text/plain", "size": 1, "sha256": "b" * 64}
    assert AttachedFile(**file).filename == "a"
    for bad in ({"sha256": "../x"}, {"content_type": "a b"}, {"size": -1}, {"filename": ""}):
        with pytest.raises(ValidationError):
            AttachedFile(**{**file, **bad})
    adapter = TypeAdapter(Attachments)
    with pytest.raises(ValidationError):
        adapter.validate_python([file] * 11)


def test_the_creator_may_reply_by_email_at_any_time(desk: Make) -> None:
    d = waiting_for_customer(desk)
    d.do(AddComment(actor=ALICE, body="Logs", channel=Channel.EMAIL, source_message_id="<m1@x>"))
    assert d.status == "in_progress"
    (event,) = d.do(AddComment(actor=ALICE, body="And more", channel=Channel.EMAIL))
    assert isinstance(event, CommentAdded) and event.public


def test_automatic_comments_after_3_and_6_days_without_change(desk: Make) -> None:
    d = waiting_for_customer(desk)
    armed = d.state.version
    assert len(d.later(days=3).do(SendReminder(armed_version=armed, days_waiting=3))) == 1
    assert len(d.later(days=3).do(SendReminder(armed_version=armed, days_waiting=6))) == 1
    assert "no reminder at 10 days" in d.refused(SendReminder(armed_version=armed, days_waiting=10))


def test_closed_automatically_after_12_days_and_can_still_be_reopened(desk: Make) -> None:
    d = waiting_for_customer(desk)
    armed = d.state.version
    d.later(days=12)
    (event,) = d.do(AutoClose(armed_version=armed))
    assert isinstance(event, TicketClosed) and event.automatic and event.armed_version == armed
    d.do(Reopen(actor=ALICE))
    assert d.status == "in_progress"


def test_the_requester_may_escalate_at_any_time(desk: Make) -> None:
    d = waiting_for_customer(desk)
    (event,) = d.do(EscalateByRequester(actor=ALICE, reason="No answer fast enough"))
    assert isinstance(event, RequesterEscalated)
    assert d.status == "waiting_customer"
    assert d.state.requester_escalations == 1


def test_internal_escalation_levels_do_not_exist_here(desk: Make) -> None:
    assert "no escalation" in in_progress(desk).refused(Escalate(actor=AGENT, target="rnd"))


def test_the_creation_email_is_not_sent_for_portal_requests(desk: Make) -> None:
    rules = desk("cloud-partner").state.policy.notifications
    created = [r for r in rules if r.event == "TicketCreated"]
    assert created and all("portal" in r.skip_channels for r in created)


def test_team_lead_and_offer_manager_are_notified_of_a_requester_escalation(desk: Make) -> None:
    rules = desk("cloud-partner").state.policy.notifications
    (rule,) = [r for r in rules if r.event == "RequesterEscalated"]
    assert set(rule.recipients) == {"team_lead", "offer_manager"}
