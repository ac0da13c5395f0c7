"""System reminders and auto-close of a request left waiting: stale-safe by version.

The sla service arms each timer with the ticket's version at that moment. A timer is stale
(it produces nothing, and is no error) once the ticket changed after `armed_version`;
automatic reminders themselves do not count as changes. Whether the request has waited long
enough is the policy's one rule (`Ticket.has_waited`, `DeskPolicy.waited_until`), the same the
sla service armed the timer with, so a timer is never refused as early.
"""

from __future__ import annotations

from datetime import datetime

from desk_contracts.tickets import ReminderSent, TicketClosed
from desk_policies.actions import Action
from desk_policies.model import Side
from desk_policies.requests import Ticket
from workflow.domain.commands import AutoClose, SendReminder
from workflow.domain.rules import Rejection, side, transition
from workflow.domain.steps import Decision, acted


def is_stale(state: Ticket, armed_version: int) -> bool:
    """Did the ticket change since the timer was armed (or was it armed for another ticket)?"""
    return not state.last_change_version <= armed_version <= state.version


def _system_only(state: Ticket, command: SendReminder | AutoClose) -> Rejection | None:
    found = side(state, command.actor)
    if isinstance(found, Rejection):
        return found
    if found is not Side.SYSTEM:
        return Rejection("only the system sends reminders and closes requests automatically")
    return None


def remind(state: Ticket, cmd: SendReminder, now: datetime) -> Decision:
    refused = _system_only(state, cmd)
    if refused is not None:
        return refused
    automations = state.policy.automations
    if cmd.days_waiting not in automations.reminder_days:
        return Rejection(f"desk {state.policy.id!r} sends no reminder at {cmd.days_waiting} days")
    if is_stale(state, cmd.armed_version) or state.status not in automations.statuses:
        return []
    if cmd.days_waiting in state.reminders_sent:
        return []
    if not state.has_waited(cmd.days_waiting, now):
        return Rejection(f"{state.key} has not waited {cmd.days_waiting} days yet")
    fields = acted(state, cmd, now)
    return [ReminderSent(**fields, days_waiting=cmd.days_waiting, armed_version=cmd.armed_version)]


def auto_close(state: Ticket, cmd: AutoClose, now: datetime) -> Decision:
    refused = _system_only(state, cmd)
    if refused is not None:
        return refused
    automations = state.policy.automations
    if automations.auto_close_days is None:
        return Rejection(f"desk {state.policy.id!r} never closes requests automatically")
    if is_stale(state, cmd.armed_version) or state.status not in automations.statuses:
        return []
    if not state.has_waited(automations.auto_close_days, now):
        return Rejection(f"{state.key} has not waited {automations.auto_close_days} days yet")
    rule = transition(state, cmd.actor, Action.AUTO_CLOSE)
    if isinstance(rule, Rejection):
        return rule
    assert state.status is not None
    return [
        TicketClosed(
            **acted(state, cmd, now),
            from_status=state.status,
            to_status=rule.to or state.status,
            resolution_code=state.resolution_code or automations.auto_close_resolution,
            automatic=True,
            armed_version=cmd.armed_version,
        )
    ]
