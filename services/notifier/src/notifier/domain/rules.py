"""`notifications_for(event, ticket, policy, directory)`: who is told about an event (pure).

`ticket` is the request as workflow published it with the event (`RequestState`, its state
after the event): a participant added is told of what follows, one who muted is not.

The policy's `notifications` rules say which events tell whom (DOMAIN §7 and the reminders and
automatic closing of §5); this module interprets them:

- `requester`, `participants`, `creator`, `assignee` name people of the request; any other
  recipient is a role id of the desk, resolved through the directory (everyone holding it);
- people who muted the request get nothing from the customer-side recipients;
- the customer side is told nothing customers may not see (`desk_policies.audience`: e.g. an
  internal comment), whatever the rules say;
- `unassigned_only` rules tell only while the request has no assignee (the SLA warnings and
  breaches go to the assignee, else to the desk's leads);
- `skip_channels` on a creation rule spares the *creator* the acknowledgement when the request
  came through one of those channels (the portal already showed it); others are still told;
- nobody is told about what they did themselves;
- each person gets one message per event (the first rule naming them wins), in their language
  from the directory, else the language of the request.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from desk_contracts.base import Event
from desk_contracts.state import RequestState
from desk_contracts.tickets import ActedEvent, CommentAdded, StatusChanged, TicketCreated
from desk_policies.audience import Audience, entry_seen_by
from desk_policies.directory import Directory
from desk_policies.model import DeskPolicy, NotificationRule, Side

LANGUAGES = ("fr", "en")
CUSTOMER_RECIPIENTS = frozenset({"requester", "participants", "creator"})


@dataclass(frozen=True)
class Notification:
    recipient: str
    template: str  # the rule's template, or the event type
    language: str
    audience: Audience = Audience.CUSTOMER


def _matches(
    rule: NotificationRule, event: Event, ticket: RequestState, policy: DeskPolicy
) -> bool:
    if rule.event != event.event_type:
        return False
    if rule.unassigned_only and ticket.assignee_id:
        return False
    if rule.to_statuses and not (
        isinstance(event, StatusChanged) and event.to_status in rule.to_statuses
    ):
        return False
    if rule.public_only and isinstance(event, CommentAdded) and not event.public:
        return False
    if rule.actor_sides and isinstance(event, ActedEvent):
        role = policy.role(event.actor_role)
        side = role.side if role else Side.SYSTEM
        if side not in rule.actor_sides:
            return False
    return rule.only_if is None or bool(getattr(event, rule.only_if, False))


def _people(
    recipient: str, ticket: RequestState, policy: DeskPolicy, directory: Directory
) -> tuple[str, ...]:
    if recipient == "requester":
        return (ticket.requester_id,)
    if recipient == "creator":
        return (ticket.created_by,)
    if recipient == "participants":
        return ticket.participants
    if recipient == "assignee":
        return (ticket.assignee_id,) if ticket.assignee_id else ()
    return tuple(person.email for person in directory.in_role(policy.id, recipient))


def _recipients(
    rule: NotificationRule,
    event: Event,
    ticket: RequestState,
    policy: DeskPolicy,
    directory: Directory,
) -> Iterator[tuple[str, Audience]]:
    skip: str | None = None  # the creator, when the channel showed them the request already
    if isinstance(event, TicketCreated) and event.channel.value in rule.skip_channels:
        skip = event.created_by
    for recipient in rule.recipients:
        customer = recipient in CUSTOMER_RECIPIENTS
        for person in _people(recipient, ticket, policy, directory):
            if customer and person in ticket.muted:
                continue
            if person == skip:
                continue
            yield person, Audience.CUSTOMER if customer else Audience.SUPPORT


def language_for(person: str, ticket: RequestState, directory: Directory) -> str:
    """The recipient's language (directory), else the request's; one the templates speak."""
    language = directory.language_of(person, default=ticket.language)
    return language if language in LANGUAGES else "en"


def notifications_for(
    event: Event, ticket: RequestState, policy: DeskPolicy, directory: Directory
) -> list[Notification]:
    """The messages `event` causes, one per person, in the order the rules name them; none to
    the customer side of an event customers may not see, whatever the rules say."""
    actor = event.actor_id if isinstance(event, ActedEvent) else None
    data = event.model_dump(mode="json")
    for_customers = entry_seen_by(Audience.CUSTOMER, policy, event.event_type, data) is not None
    found: dict[str, Notification] = {}
    for rule in policy.notifications:
        if not _matches(rule, event, ticket, policy):
            continue
        for person, audience in _recipients(rule, event, ticket, policy, directory):
            if (person == actor and not rule.to_actor) or person in found:
                continue
            if audience is Audience.CUSTOMER and not for_customers:
                continue
            language = language_for(person, ticket, directory)
            found[person] = Notification(person, rule.template or rule.event, language, audience)
    return list(found.values())


def unstaffed_roles(policy: DeskPolicy, directory: Directory) -> list[str]:
    """Role recipients of the policy's rules that nobody holds in the directory (to warn)."""
    named = {r for rule in policy.notifications for r in rule.recipients}
    roles = sorted(named - CUSTOMER_RECIPIENTS - {"assignee"})
    return [role for role in roles if not directory.in_role(policy.id, role)]
