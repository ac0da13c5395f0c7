"""Decisions on commands that move a ticket through its policy's statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desk_contracts.base import Event
from desk_contracts.tickets import (
    EscalationReturned,
    InformationRequested,
    OperationScheduled,
    ResolutionConfirmed,
    ResolutionDisputed,
    TicketAssigned,
    TicketClosed,
    TicketEscalated,
    TicketQualified,
    TicketReopened,
    TicketResolved,
    WaitingForThirdParty,
    WorkStarted,
)
from desk_policies.actions import Action
from desk_policies.model import Transition
from desk_policies.requests import Ticket
from workflow.domain.commands import (
    Assign,
    Close,
    Command,
    ConfirmResolution,
    DisputeResolution,
    Escalate,
    Qualify,
    Reopen,
    RequestInformation,
    Resolve,
    ReturnFromEscalation,
    ScheduleOperation,
    StartWork,
    WaitForThirdParty,
)
from workflow.domain.rules import (
    ACTION_WORDS,
    Rejection,
    blank,
    confirms,
    side,
    status_label,
    transition,
    unconfirmed,
)

Decision = list[Event] | Rejection


def acted(state: Ticket, command: Command, now: datetime) -> dict[str, Any]:
    """Fields every event of this ticket carries: which ticket, when, and who."""
    return {
        "ticket_id": state.ticket_id,
        "occurred_at": now,
        "actor_id": command.actor.id,
        "actor_role": command.actor.role,
    }


def _fields(state: Ticket, command: Command, now: datetime, rule: Transition) -> dict[str, Any]:
    assert state.status is not None
    return {
        **acted(state, command, now),
        "from_status": state.status,
        "to_status": rule.to or state.status,
    }


def qualify(state: Ticket, cmd: Qualify, now: datetime) -> Decision:
    rule = transition(state, cmd.actor, Action.QUALIFY)
    if isinstance(rule, Rejection):
        return rule
    return [TicketQualified(**_fields(state, cmd, now, rule))]


def assign(state: Ticket, cmd: Assign, now: datetime) -> Decision:
    if blank(cmd.assignee_id) and blank(cmd.group_id):
        return Rejection("an assignment names an agent or a group", "assignee_id")
    if cmd.assignee_id == state.assignee_id and cmd.group_id == state.group_id:
        return Rejection(f"{state.key} is already assigned that way")
    rule = transition(state, cmd.actor, Action.ASSIGN)
    if isinstance(rule, Rejection):
        return rule
    fields = _fields(state, cmd, now, rule)
    return [TicketAssigned(**fields, assignee_id=cmd.assignee_id, group_id=cmd.group_id)]


def start(state: Ticket, cmd: StartWork, now: datetime) -> Decision:
    rule = transition(state, cmd.actor, Action.START)
    if isinstance(rule, Rejection):
        return rule
    return [WorkStarted(**_fields(state, cmd, now, rule))]


def request_information(state: Ticket, cmd: RequestInformation, now: datetime) -> Decision:
    if blank(cmd.comment):
        return Rejection("asking for information needs a comment saying what", "comment")
    rule = transition(state, cmd.actor, Action.REQUEST_INFORMATION)
    if isinstance(rule, Rejection):
        return rule
    return [InformationRequested(**_fields(state, cmd, now, rule), comment=cmd.comment)]


def wait_for_third_party(state: Ticket, cmd: WaitForThirdParty, now: datetime) -> Decision:
    parties = state.policy.third_parties
    if blank(cmd.party) or (parties and cmd.party not in parties):
        return Rejection(
            f"name the third party waited for ({', '.join(parties) or 'any'})", "party"
        )
    rule = transition(state, cmd.actor, Action.WAIT_FOR_THIRD_PARTY)
    if isinstance(rule, Rejection):
        return rule
    fields = _fields(state, cmd, now, rule)
    return [WaitingForThirdParty(**fields, party=cmd.party, comment=cmd.comment)]


def schedule_operation(state: Ticket, cmd: ScheduleOperation, now: datetime) -> Decision:
    if blank(cmd.responsible):
        return Rejection("a scheduled operation says who is responsible for it", "responsible")
    if cmd.scheduled_for.tzinfo is None or cmd.scheduled_for < now:
        return Rejection(
            "a scheduled operation says when, in the future, with a time zone", "scheduled_for"
        )
    rule = transition(state, cmd.actor, Action.SCHEDULE_OPERATION)
    if isinstance(rule, Rejection):
        return rule
    return [
        OperationScheduled(
            **_fields(state, cmd, now, rule),
            scheduled_for=cmd.scheduled_for,
            responsible=cmd.responsible,
            comment=cmd.comment,
        )
    ]


def escalate(state: Ticket, cmd: Escalate, now: datetime) -> Decision:
    target_status = state.policy.escalations.get(cmd.target)
    if target_status is None:
        known = ", ".join(state.policy.escalations) or "none"
        return Rejection(
            f"no escalation {cmd.target!r} in this desk (escalations: {known})", "target"
        )
    rule = transition(state, cmd.actor, Action.ESCALATE)
    if isinstance(rule, Rejection):
        return rule
    to = rule.to or target_status
    if to == state.status:
        return Rejection(f"{state.key} is already {status_label(state)}")
    fields = {**_fields(state, cmd, now, rule), "to_status": to}
    return [TicketEscalated(**fields, target=cmd.target, comment=cmd.comment)]


def return_from_escalation(state: Ticket, cmd: ReturnFromEscalation, now: datetime) -> Decision:
    rule = transition(state, cmd.actor, Action.RETURN_FROM_ESCALATION)
    if isinstance(rule, Rejection):
        return rule
    return [EscalationReturned(**_fields(state, cmd, now, rule), comment=cmd.comment)]


def resolve(state: Ticket, cmd: Resolve, now: datetime) -> Decision:
    if not state.policy.has_resolution_code(cmd.resolution_code):
        return _unknown_code(state, cmd.resolution_code)
    if blank(cmd.comment):
        return Rejection("a resolution comes with a comment explaining it", "comment")
    rule = transition(state, cmd.actor, Action.RESOLVE)
    if isinstance(rule, Rejection):
        return rule
    fields = _fields(state, cmd, now, rule)
    return [TicketResolved(**fields, resolution_code=cmd.resolution_code, comment=cmd.comment)]


def confirm_resolution(state: Ticket, cmd: ConfirmResolution, now: datetime) -> Decision:
    if state.resolution_confirmed:
        return Rejection(f"the resolution of {state.key} is already confirmed")
    rule = transition(state, cmd.actor, Action.CONFIRM_RESOLUTION)
    if isinstance(rule, Rejection):
        return rule
    return [ResolutionConfirmed(**_fields(state, cmd, now, rule), comment=cmd.comment)]


def dispute_resolution(state: Ticket, cmd: DisputeResolution, now: datetime) -> Decision:
    if blank(cmd.comment):
        return Rejection("disputing a resolution needs a comment saying what is missing", "comment")
    rule = transition(state, cmd.actor, Action.DISPUTE_RESOLUTION)
    if isinstance(rule, Rejection):
        return rule
    return [ResolutionDisputed(**_fields(state, cmd, now, rule), comment=cmd.comment)]


def _unknown_code(state: Ticket, code: str) -> Rejection:
    known = ", ".join(c.id for c in state.policy.resolution_codes)
    return Rejection(f"unknown resolution code {code!r} (codes: {known})", "resolution_code")


def close(state: Ticket, cmd: Close, now: datetime) -> Decision:
    code = cmd.resolution_code
    if code is not None and not state.policy.has_resolution_code(code):
        return _unknown_code(state, code)
    cited = cmd.confirmation_version
    rule = transition(state, cmd.actor, Action.CLOSE, cited=cited)
    if isinstance(rule, Rejection):
        return rule
    if cited is not None and not confirms(state, cited):
        return Rejection(f"cannot {ACTION_WORDS[Action.CLOSE]}: {unconfirmed(state, cited)}")
    fields = _fields(state, cmd, now, rule)
    return [
        TicketClosed(
            **fields, resolution_code=code, comment=cmd.comment, confirmation_version=cited
        )
    ]


def reopen(state: Ticket, cmd: Reopen, now: datetime) -> Decision:
    found = side(state, cmd.actor)
    if isinstance(found, Rejection):
        return found
    policy = state.policy.reopen
    if not state.is_closed:
        return Rejection(f"{state.key} is not closed, it is {status_label(state)}")
    if not policy.allowed or policy.to_status is None:
        text = policy.refusal.en if policy.refusal else "closed requests cannot be reopened"
        return Rejection(f"{state.key} cannot be reopened: {text} (reference: {state.key})")
    if cmd.actor.role not in policy.roles:
        return Rejection(f"a {cmd.actor.role} may not reopen a request")
    days = policy.within_days
    if (
        days is not None
        and state.closed_at
        and now > state.policy.waited_until(state.closed_at, days)
    ):
        return Rejection(
            f"{state.key} was closed more than {days} days ago: open a new request referencing it"
        )
    assert state.status is not None
    return [
        TicketReopened(
            **acted(state, cmd, now),
            from_status=state.status,
            to_status=policy.to_status,
            comment=cmd.comment,
        )
    ]
