"""Decisions on commands that never move the status by themselves: comments, priority,
requester escalation, links, participants, notifications, survey.

A customer's public comment is the one exception: while the request waits for them
(a `requester_reply` transition leaves the status) it sends the request back to the team.
"""

from __future__ import annotations

from datetime import datetime

from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    NotificationFailed,
    NotificationsMuted,
    NotificationsUnmuted,
    ParticipantAdded,
    PriorityChanged,
    RequesterAnswered,
    RequesterEscalated,
    SurveyAnswered,
    TicketLinked,
)
from desk_policies.actions import Action, Permission
from desk_policies.model import Side
from desk_policies.requests import Ticket
from workflow.domain.commands import (
    AddComment,
    AddParticipant,
    AnswerSurvey,
    ChangePriority,
    EscalateByRequester,
    LinkRequest,
    MuteNotifications,
    RecordDeliveryFailure,
    UnmuteNotifications,
)
from workflow.domain.rules import Rejection, blank, final_refusal, permitted, transition
from workflow.domain.steps import Decision, acted


def comment(state: Ticket, cmd: AddComment, now: datetime) -> Decision:
    if blank(cmd.body):
        return Rejection("a comment cannot be empty", "body")
    replies = state.policy.email_replies
    if cmd.channel is Channel.EMAIL and not replies.accepted:
        text = replies.refusal.en if replies.refusal else "replies by e-mail are not accepted"
        return Rejection(f"{text} Portal: {replies.portal_url}")
    if state.is_closed and not state.policy.comments_on_closed:
        return final_refusal(state)
    permission = Permission.COMMENT_PUBLIC if cmd.public else Permission.COMMENT_INTERNAL
    words = "comment publicly" if cmd.public else "write an internal note"
    refused = permitted(state, cmd.actor, permission, words)
    if refused is not None:
        return refused
    base = acted(state, cmd, now)
    mail = {
        "channel": cmd.channel,
        "source_message_id": cmd.source_message_id,
        "attachments": tuple(a.attachment() for a in cmd.attachments),
    }
    if cmd.public and _answers(state, cmd):
        rule = transition(state, cmd.actor, Action.REQUESTER_REPLY)
        if not isinstance(rule, Rejection) and state.status is not None:
            to = rule.to or state.status
            moved = {**base, "from_status": state.status, "to_status": to}
            return [RequesterAnswered(**moved, body=cmd.body, **mail)]
    return [CommentAdded(**base, body=cmd.body, public=cmd.public, **mail)]


def _answers(state: Ticket, cmd: AddComment) -> bool:
    role = state.policy.role(cmd.actor.role)
    return role is not None and role.side is Side.CUSTOMER


def change_priority(state: Ticket, cmd: ChangePriority, now: datetime) -> Decision:
    if state.is_closed:
        return final_refusal(state)
    refused = permitted(state, cmd.actor, Permission.CHANGE_PRIORITY, "change the priority")
    if refused is not None:
        return refused
    new = state.policy.priority_rank(cmd.priority)
    old = state.policy.priority_rank(state.priority)
    if new is None or old is None:
        known = ", ".join(p.id for p in state.policy.priorities)
        return Rejection(f"unknown priority {cmd.priority!r} (priorities: {known})", "priority")
    if new == old:
        return Rejection(f"{state.key} already has priority {cmd.priority!r}")
    lowering = new < old
    if lowering and blank(cmd.reason):
        return Rejection("lowering a priority needs a reason, which the requester reads", "reason")
    return [
        PriorityChanged(
            **acted(state, cmd, now),
            from_priority=state.priority,
            to_priority=cmd.priority,
            reason=cmd.reason,
            requester_must_be_informed=lowering,
        )
    ]


def escalate_by_requester(state: Ticket, cmd: EscalateByRequester, now: datetime) -> Decision:
    if state.is_closed:
        return final_refusal(state)
    refused = permitted(state, cmd.actor, Permission.REQUESTER_ESCALATION, "escalate a request")
    if refused is not None:
        return refused
    return [RequesterEscalated(**acted(state, cmd, now), reason=cmd.reason)]


def link(state: Ticket, cmd: LinkRequest, now: datetime) -> Decision:
    if state.is_closed:
        return final_refusal(state)
    refused = permitted(state, cmd.actor, Permission.LINK_REQUEST, "link requests")
    if refused is not None:
        return refused
    if blank(cmd.linked_key) or cmd.linked_key == state.key:
        return Rejection("a request links to another request's key", "linked_key")
    if cmd.linked_key in state.links:
        return Rejection(f"{state.key} already references {cmd.linked_key}")
    fields = acted(state, cmd, now)
    return [TicketLinked(**fields, linked_key=cmd.linked_key, relation=cmd.relation)]


def add_participant(state: Ticket, cmd: AddParticipant, now: datetime) -> Decision:
    if state.is_closed:
        return final_refusal(state)
    refused = permitted(state, cmd.actor, Permission.ADD_PARTICIPANT, "add participants")
    if refused is not None:
        return refused
    if blank(cmd.participant_id) or state.involves(cmd.participant_id):
        return Rejection(f"{cmd.participant_id} already follows {state.key}")
    return [ParticipantAdded(**acted(state, cmd, now), participant_id=cmd.participant_id)]


def _mute_check(state: Ticket, cmd: MuteNotifications | UnmuteNotifications) -> Rejection | None:
    refused = permitted(state, cmd.actor, Permission.MUTE_NOTIFICATIONS, "change notifications")
    if refused is not None:
        return refused
    if not state.involves(cmd.participant_id):
        return Rejection(f"{cmd.participant_id} does not follow {state.key}")
    role = state.policy.role(cmd.actor.role)
    if role is not None and role.side is Side.CUSTOMER and cmd.actor.id != cmd.participant_id:
        return Rejection("customers change their own notifications only")
    return None


def mute(state: Ticket, cmd: MuteNotifications, now: datetime) -> Decision:
    refused = _mute_check(state, cmd)
    if refused is not None:
        return refused
    if cmd.participant_id in state.muted:
        return Rejection(f"notifications of {state.key} are already off for {cmd.participant_id}")
    return [NotificationsMuted(**acted(state, cmd, now), participant_id=cmd.participant_id)]


def unmute(state: Ticket, cmd: UnmuteNotifications, now: datetime) -> Decision:
    refused = _mute_check(state, cmd)
    if refused is not None:
        return refused
    if cmd.participant_id not in state.muted:
        return Rejection(f"notifications of {state.key} are already on for {cmd.participant_id}")
    return [NotificationsUnmuted(**acted(state, cmd, now), participant_id=cmd.participant_id)]


def answer_survey(state: Ticket, cmd: AnswerSurvey, now: datetime) -> Decision:
    survey = state.policy.survey
    if not survey.enabled:
        return Rejection(f"desk {state.policy.id!r} sends no satisfaction survey")
    if not state.is_closed:
        return Rejection(f"the survey opens once {state.key} is closed")
    refused = permitted(state, cmd.actor, Permission.ANSWER_SURVEY, "answer the survey")
    if refused is not None:
        return refused
    if not state.involves(cmd.actor.id):
        return Rejection("only the requester or a participant answers the survey")
    if state.survey_rating is not None:
        return Rejection(f"the survey of {state.key} was already answered")
    if not 1 <= cmd.rating <= survey.scale:
        return Rejection(f"a rating goes from 1 to {survey.scale}", "rating")
    return [SurveyAnswered(**acted(state, cmd, now), rating=cmd.rating, comment=cmd.comment)]


def record_delivery_failure(state: Ticket, cmd: RecordDeliveryFailure, now: datetime) -> Decision:
    if cmd.actor.role != "system":
        return Rejection("only the notifier reports a failed delivery")
    return [
        NotificationFailed(
            **acted(state, cmd, now),
            recipient=cmd.recipient,
            message_id=cmd.message_id,
            notified_event_id=cmd.notified_event_id,
            error=cmd.error,
        )
    ]
