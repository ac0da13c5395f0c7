"""`decide(state, command, now)`: the events a command causes, or why it is refused.

Pure: the policy comes with the state, time is an argument, nothing is read or written.
A stale system timer (reminder, auto-close) yields an empty list, not a rejection.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from desk_policies.requests import Ticket
from workflow.domain import automations, facts, steps
from workflow.domain.commands import (
    AddComment,
    AddParticipant,
    AnswerSurvey,
    Assign,
    AutoClose,
    ChangePriority,
    Close,
    Command,
    ConfirmResolution,
    DisputeResolution,
    Escalate,
    EscalateByRequester,
    LinkRequest,
    MuteNotifications,
    Qualify,
    RecordDeliveryFailure,
    Reopen,
    RequestInformation,
    Resolve,
    ReturnFromEscalation,
    ScheduleOperation,
    SendReminder,
    StartWork,
    UnmuteNotifications,
    WaitForThirdParty,
)
from workflow.domain.rules import Rejection
from workflow.domain.steps import Decision

Handler = Callable[[Ticket, Any, datetime], Decision]

HANDLERS: dict[type[Command], Handler] = {
    Qualify: steps.qualify,
    Assign: steps.assign,
    StartWork: steps.start,
    RequestInformation: steps.request_information,
    WaitForThirdParty: steps.wait_for_third_party,
    ScheduleOperation: steps.schedule_operation,
    Escalate: steps.escalate,
    ReturnFromEscalation: steps.return_from_escalation,
    Resolve: steps.resolve,
    ConfirmResolution: steps.confirm_resolution,
    DisputeResolution: steps.dispute_resolution,
    Close: steps.close,
    Reopen: steps.reopen,
    AddComment: facts.comment,
    ChangePriority: facts.change_priority,
    EscalateByRequester: facts.escalate_by_requester,
    LinkRequest: facts.link,
    AddParticipant: facts.add_participant,
    MuteNotifications: facts.mute,
    UnmuteNotifications: facts.unmute,
    AnswerSurvey: facts.answer_survey,
    SendReminder: automations.remind,
    AutoClose: automations.auto_close,
    RecordDeliveryFailure: facts.record_delivery_failure,
}


def decide(state: Ticket, command: Command, now: datetime) -> Decision:
    """The events `command` causes on `state` at `now`, or a `Rejection` (and no event)."""
    if now.tzinfo is None:
        return Rejection("time must carry a time zone")
    if not state.exists:
        return Rejection(f"no request {state.ticket_id} yet: create it first")
    handler = HANDLERS.get(type(command))
    if handler is None:
        return Rejection(f"unknown command {type(command).__name__}")
    return handler(state, command, now)
