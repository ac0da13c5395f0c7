"""Names of what actors can do, as a policy refers to them (transitions and permissions)."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """Workflow steps that may move a ticket's status; a policy lists them in `transitions`."""

    QUALIFY = "qualify"
    ASSIGN = "assign"
    START = "start"  # work starts, or resumes after waiting
    REQUEST_INFORMATION = "request_information"
    WAIT_FOR_THIRD_PARTY = "wait_for_third_party"
    SCHEDULE_OPERATION = "schedule_operation"
    ESCALATE = "escalate"  # to triage, R&D, level 2... (targets in `escalations`)
    RETURN_FROM_ESCALATION = "return_from_escalation"
    RESOLVE = "resolve"
    CONFIRM_RESOLUTION = "confirm_resolution"
    DISPUTE_RESOLUTION = "dispute_resolution"
    CLOSE = "close"
    REQUESTER_REPLY = "requester_reply"  # a customer's public comment while waiting for them
    AUTO_CLOSE = "auto_close"


class Permission(StrEnum):
    """Actions that never move the status; a policy lists the roles allowed in `permissions`."""

    COMMENT_PUBLIC = "comment_public"
    COMMENT_INTERNAL = "comment_internal"
    CHANGE_PRIORITY = "change_priority"
    REQUESTER_ESCALATION = "requester_escalation"
    LINK_REQUEST = "link_request"
    ADD_PARTICIPANT = "add_participant"
    MUTE_NOTIFICATIONS = "mute_notifications"
    ANSWER_SURVEY = "answer_survey"
