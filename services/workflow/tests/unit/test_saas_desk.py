"""saas-desk, as its seed page says it (004): one test per rule."""

from __future__ import annotations

from collections.abc import Callable

from workflow_story import Desk, actor

from desk_contracts.tickets import Channel, SurveyAnswered, TicketAssigned
from workflow.domain import (
    AddComment,
    AnswerSurvey,
    Assign,
    Close,
    ConfirmResolution,
    RequestInformation,
    Resolve,
)

Make = Callable[[str], Desk]
AGENT, ALICE = actor("agent"), actor("requester")


def assigned(desk: Make) -> Desk:
    return desk("saas-desk").create().run(Assign(actor=AGENT, assignee_id="agent@desk.example"))


def answered(desk: Make) -> Desk:
    return assigned(desk).run(Resolve(actor=AGENT, resolution_code="answered", comment="Do X"))


def test_ticket_kinds_are_information_request_problem_report_system_error(desk: Make) -> None:
    kinds = [t.id for t in desk("saas-desk").state.policy.request_types]
    assert kinds == ["information_request", "problem_report", "system_error"]


def test_a_ticket_submitted_by_email_becomes_an_open_ticket(desk: Make) -> None:
    d = desk("saas-desk").create("problem_report", channel=Channel.EMAIL, key="PRB-1")
    assert d.status == "open"


def test_assigning_to_an_agent_confirms_taking_it_in_charge(desk: Make) -> None:
    d = assigned(desk)
    (event,) = d.history[-1:]
    assert isinstance(event, TicketAssigned) and event.to_status == "assigned"
    status = d.state.policy.status("assigned")
    assert status.stops_response and status.starts_resolution


def test_the_agent_answers_with_a_solution(desk: Make) -> None:
    d = answered(desk)
    assert d.status == "answered" and d.state.policy.status("answered").stops_resolution


def test_requester_comment_on_an_answered_ticket_sends_it_back_to_the_agent(desk: Make) -> None:
    d = answered(desk).run(AddComment(actor=ALICE, body="It did not work"))
    assert d.status == "assigned"


def test_there_is_no_separate_waiting_for_customer_step(desk: Make) -> None:
    assert "cannot ask" in assigned(desk).refused(RequestInformation(actor=AGENT, comment="?"))


def test_open_assigned_answered_closed(desk: Make) -> None:
    d = answered(desk).run(Close(actor=AGENT))
    assert [getattr(e, "to_status", "open") for e in d.history] == [
        "open",
        "assigned",
        "answered",
        "closed",
    ]


def test_requester_confirms_the_answer_and_the_ticket_closes(desk: Make) -> None:
    assert answered(desk).run(ConfirmResolution(actor=ALICE)).status == "closed"


def test_satisfaction_survey_on_closing_rating_and_comment(desk: Make) -> None:
    d = answered(desk)
    assert "once" in d.refused(AnswerSurvey(actor=ALICE, rating=5))
    d.do(Close(actor=AGENT))
    assert "1 to 5" in d.refused(AnswerSurvey(actor=ALICE, rating=6))
    (event,) = d.do(AnswerSurvey(actor=ALICE, rating=4, comment="Quick and clear"))
    assert isinstance(event, SurveyAnswered) and event.rating == 4
    assert "already" in d.refused(AnswerSurvey(actor=ALICE, rating=5))


def test_agents_do_not_answer_the_survey(desk: Make) -> None:
    d = answered(desk).run(Close(actor=AGENT))
    assert "may not answer the survey" in d.refused(AnswerSurvey(actor=AGENT, rating=5))


def test_notifications_on_receipt_assignment_reply_and_closing(desk: Make) -> None:
    events = {r.event for r in desk("saas-desk").state.policy.notifications}
    assert {"TicketCreated", "TicketAssigned", "CommentAdded", "TicketClosed"} <= events
