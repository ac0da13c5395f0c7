"""Automatic answers to inbound mail that did not become a request or a comment.

intake's e-mail gateway asks for them on `automatic-replies` (key = sender address); the
notifier words and sends them (`Auto-Submitted: auto-replied`). Loops are impossible: the
gateway never answers automatic mail, and never answers the same sender more than its limit.
"""

from __future__ import annotations

from enum import StrEnum

from desk_contracts.base import Event, register


class RefusalReason(StrEnum):
    UNKNOWN_SENDER = "unknown_sender"  # not the requester, a participant or their organisation
    REPLIES_BY_PORTAL_ONLY = "replies_by_portal_only"  # the desk refuses replies by mail
    REQUEST_CLOSED = "request_closed"  # a reply to a closed request that cannot reopen
    TOO_LARGE = "too_large"
    UNREADABLE = "unreadable"  # broken MIME, no text


@register
class AutomaticReplyRequested(Event):
    """Answer `to` why their message was not taken in (`ticket_id` is the sender's address
    when no request is concerned)."""

    event_type = "AutomaticReplyRequested"

    to: str
    policy_id: str
    reason: RefusalReason
    language: str = "en"
    original_subject: str = ""
    original_message_id: str | None = None
    ticket_key: str | None = None  # the request concerned, if any
    portal_url: str | None = None
