"""`notifications_for(event, ticket, policy)`: the messages an event causes, from the policy's
notification rules (pure). Recipients a rule names by role need the directory of agents, which
is not wired yet: such recipients are reported as `unresolved`, never silently dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from desk_contracts.base import Event
from desk_contracts.tickets import ActedEvent, CommentAdded, StatusChanged, TicketCreated
from desk_policies.model import DeskPolicy, NotificationRule, Side


@dataclass(frozen=True)
class TicketView:
    ticket_id: str
    key: str
    policy_id: str
    subject: str
    requester_id: str
    created_by: str
    channel: str
    language: str
    participants: tuple[str, ...] = ()
    muted: tuple[str, ...] = ()
    assignee_id: str | None = None
    first_message_id: str | None = None


@dataclass(frozen=True)
class Notification:
    recipient: str
    template: str  # the rule's template, or the event type
    language: str


@dataclass(frozen=True)
class Outcome:
    notifications: tuple[Notification, ...]
    unresolved: tuple[str, ...] = field(default=())  # role recipients without a directory


def _matches(rule: NotificationRule, event: Event, ticket: TicketView, policy: DeskPolicy) -> bool:
    if rule.event != event.event_type:
        return False
    if rule.to_statuses and not (
        isinstance(event, StatusChanged) and event.to_status in rule.to_statuses
    ):
        return False
    if isinstance(event, TicketCreated) and event.channel.value in rule.skip_channels:
        return False
    if rule.public_only and isinstance(event, CommentAdded) and not event.public:
        return False
    if rule.actor_sides and isinstance(event, ActedEvent):
        role = policy.role(event.actor_role)
        side = role.side if role else Side.SYSTEM
        if side not in rule.actor_sides:
            return False
    return rule.only_if is None or bool(getattr(event, rule.only_if, False))


def notifications_for(event: Event, ticket: TicketView, policy: DeskPolicy) -> Outcome:
    found: dict[str, Notification] = {}
    unresolved: list[str] = []
    actor = event.actor_id if isinstance(event, ActedEvent) else None
    for rule in policy.notifications:
        if not _matches(rule, event, ticket, policy):
            continue
        for recipient in rule.recipients:
            people: tuple[str, ...]
            if recipient == "requester":
                people = (ticket.requester_id,)
            elif recipient == "creator":
                people = (ticket.created_by,)
            elif recipient == "participants":
                people = tuple(p for p in ticket.participants if p not in ticket.muted)
            elif recipient == "assignee":
                people = (ticket.assignee_id,) if ticket.assignee_id else ()
            else:
                unresolved.append(recipient)
                continue
            for person in people:
                if person != actor or isinstance(event, TicketCreated):
                    found.setdefault(
                        person, Notification(person, rule.template or rule.event, ticket.language)
                    )
    return Outcome(tuple(found.values()), tuple(unresolved))


def message_id(event_id: str, recipient: str, domain: str) -> str:
    """Deterministic Message-ID of (event, recipient): a re-send after a crash is recognisable."""
    digest = hashlib.sha256(f"{event_id}/{recipient}".encode()).hexdigest()[:24]
    return f"<{digest}@{domain}>"
