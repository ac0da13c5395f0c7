"""What the sla service publishes: clock warnings and breaches (`sla-events`), and the
automation commands it fires for workflow (`ticket-commands`): reminders and auto-close.

Each carries the ticket version its timer was armed at, so a repeated or stale one is harmless:
workflow ignores a command whose ticket moved since, and the ids are deterministic
(uuid5 of ticket, kind, armed version).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from desk_contracts.base import Event, register

Clock = Literal["response", "resolution"]


class TimerFired(Event):
    armed_version: int
    due_at: datetime  # the instant the timer was armed for


@register
class SlaWarningReached(TimerFired):
    """A clock has used its warning share of the target (default 75%)."""

    event_type = "SlaWarningReached"
    clock: Clock
    priority: str
    breach_at: datetime


@register
class SlaBreached(TimerFired):
    """A clock ran past its target."""

    event_type = "SlaBreached"
    clock: Clock
    priority: str


@register
class ReminderDue(TimerFired):
    """Command for workflow: remind the requester (the ticket has waited `days_waiting` days)."""

    event_type = "ReminderDue"
    days_waiting: int


@register
class AutoCloseDue(TimerFired):
    """Command for workflow: close the request left waiting for the customer."""

    event_type = "AutoCloseDue"
