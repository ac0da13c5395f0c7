"""What each audience may see of a request: the one place that decides it (pure).

Two audiences read requests: the customer side (requesters, participants: people of the
request's organisation) and the support side (the desk's staff). The support side sees every
fact as stored. A customer sees, of each history entry, what `CUSTOMERS_SEE` lists for its event
type, and nothing of a type the table does not know (deny by default, so a new event type or a
new field stays internal until someone decides otherwise here). Whoever is not on the customer
side (an agent, an expert, the automations) is shown to a customer as `SUPPORT_NAME`, the support
side's neutral name: names of internal roles and staff addresses never reach a customer.

Who reads as which audience is decided here too, from the caller's verified identity
(`desk_contracts.identity`): the roles it grants at a desk (`granted_roles`, the one chosen with
`acting_role`), the desks whose requests it reads (`reader_desks`: before any request is looked
up) and whether it reads one request (`request_reader`: its desk, and for a customer their own
organisation's only).

Why each event type is shown or hidden (DOMAIN §4, §7, §8b and the seeds):
- status changes are shown: customers follow the statuses (seed 001's status table, seed 003's
  workflow), with the comment that tells them what is needed, when an operation happens or how
  the request was solved; escalation comments are hidden: they hand the request over to experts,
  R&D or level 2, and are written for them (the status says where it went);
- the assignee and the group of an assignment are internal: a customer is told that an agent
  took the request in charge (seed 004), not who (internal fields, §8b);
- internal comments (`public` false) are hidden whole; public ones are shown;
- the customer's own acts (answers, escalation, confirmation, survey) and what the desk tells
  them (reminders, priority changes with their reason: seed 000) are shown;
- people taking part, links and muting are shown: the request's people are on its page (seed 001
  "Détail des personnes impliquées");
- delivery failures, timers' versions, mail threading ids and whether a notice was due are the
  desk's machinery; SLA warnings and breaches, and the commands other services send to workflow,
  are not facts of a request's history: all hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from desk_contracts import mail, sla
from desk_contracts import requests as forwarded
from desk_contracts import tickets as t
from desk_contracts.base import Event
from desk_contracts.identity import Identity
from desk_policies.model import DeskPolicy, Side


class Audience(StrEnum):
    """Who reads: the customer side or the support side of the desk."""

    CUSTOMER = "customer"
    SUPPORT = "support"


SUPPORT_NAME = Audience.SUPPORT.value  # what a customer reads instead of a support-side name

# the roles' sides that read requests, and as which audience (external parties and the
# automations read none)
READERS = {Side.CUSTOMER: Audience.CUSTOMER, Side.SUPPORT: Audience.SUPPORT}

# fields of every event a customer sees, and the (person, role) pairs shown as SUPPORT_NAME unless
# the role is on the customer side
COMMON = ("ticket_id", "occurred_at")
PEOPLE = (("actor_id", "actor_role"), ("created_by", "created_by_role"))


@dataclass(frozen=True)
class ForCustomers:
    """What a customer sees of one event type: the `shown` fields (with `COMMON` and `PEOPLE`),
    never the `internal` ones; with `only_if`, only entries whose field is true are shown."""

    shown: tuple[str, ...] = ()
    internal: tuple[str, ...] = ()
    only_if: str | None = None


_STATUS = ("from_status", "to_status")

# every registered event type, by class: None = never shown to a customer
CUSTOMERS_SEE: dict[type[Event], ForCustomers | None] = {
    t.TicketCreated: ForCustomers(
        shown=(
            "key", "policy_id", "request_type", "priority", "subject", "description",
            "organisation_id", "requester_id", "channel", "participants", "product_version",
            "company", "contact", "error_message", "attachments", "language", "references",
        ),
        internal=("source_message_id", "test_clock"),
    ),
    t.PriorityChanged: ForCustomers(
        shown=("from_priority", "to_priority", "reason"),
        internal=("requester_must_be_informed",),
    ),
    t.TicketQualified: ForCustomers(shown=_STATUS),
    t.TicketAssigned: ForCustomers(shown=_STATUS, internal=("assignee_id", "group_id")),
    t.WorkStarted: ForCustomers(shown=_STATUS),
    t.InformationRequested: ForCustomers(shown=(*_STATUS, "comment")),
    t.WaitingForThirdParty: ForCustomers(shown=(*_STATUS, "party", "comment")),
    t.OperationScheduled: ForCustomers(
        shown=(*_STATUS, "scheduled_for", "responsible", "comment")
    ),
    t.TicketEscalated: ForCustomers(shown=_STATUS, internal=("target", "comment")),
    t.EscalationReturned: ForCustomers(shown=_STATUS, internal=("comment",)),
    t.TicketResolved: ForCustomers(shown=(*_STATUS, "resolution_code", "comment")),
    t.ResolutionConfirmed: ForCustomers(shown=(*_STATUS, "comment")),
    t.ResolutionDisputed: ForCustomers(shown=(*_STATUS, "comment")),
    t.TicketClosed: ForCustomers(
        shown=(*_STATUS, "resolution_code", "comment", "automatic", "confirmation_version"),
        internal=("armed_version",),
    ),
    t.TicketReopened: ForCustomers(shown=(*_STATUS, "comment")),
    t.RequesterAnswered: ForCustomers(
        shown=(*_STATUS, "body", "channel", "attachments"), internal=("source_message_id",)
    ),
    t.CommentAdded: ForCustomers(
        shown=("body", "public", "channel", "attachments"),
        internal=("source_message_id",),
        only_if="public",
    ),
    t.RequesterEscalated: ForCustomers(shown=("reason",)),
    t.TicketLinked: ForCustomers(shown=("linked_key", "relation")),
    t.ParticipantAdded: ForCustomers(shown=("participant_id",)),
    t.NotificationsMuted: ForCustomers(shown=("participant_id",)),
    t.NotificationsUnmuted: ForCustomers(shown=("participant_id",)),
    t.ReminderSent: ForCustomers(shown=("days_waiting",), internal=("armed_version",)),
    t.SurveyAnswered: ForCustomers(shown=("rating", "comment")),
    t.NotificationFailed: None,
    sla.SlaWarningReached: None,
    sla.SlaBreached: None,
    sla.ReminderDue: None,
    sla.AutoCloseDue: None,
    forwarded.CommentReceived: None,
    forwarded.SurveySubmitted: None,
    forwarded.DeliveryFailed: None,
    mail.AutomaticReplyRequested: None,
}  # fmt: skip

_BY_TYPE = {cls.event_type: rule for cls, rule in CUSTOMERS_SEE.items()}

# fields of a request (a list row or the detail) a customer sees; `expected_actor` is a role
REQUEST_SHOWN = frozenset(
    {
        "ticket_id", "key", "policy_id", "organisation_id", "requester_id", "subject",
        "description", "request_type", "priority", "status", "category", "expected_actor",
        "participants", "links", "resolution_code", "version", "created_at", "updated_at",
        "muted", "product_version", "company", "contact", "error_message", "attachments",
    }
)  # fmt: skip
REQUEST_INTERNAL = frozenset({"assignee_id", "created_by", "involved", "priority_rank"})


def reader_audience(policy: DeskPolicy, role: str) -> Audience | None:
    """As whom a reader naming `role` reads `policy`'s requests; None when the desk has no such
    role or the role reads nothing (an external party, the automations)."""
    found = policy.role(role)
    return None if found is None else READERS.get(found.side)


class NotYourRole(Exception):
    """A caller asked to act in a role their verified identity does not hold (403)."""


def granted_roles(identity: Identity, policy: DeskPolicy) -> tuple[str, ...]:
    """The roles a verified caller may act in at `policy`'s desk: those the directory grants
    them there (staff, a service's `system`) and, for a person of an organisation, the desk's
    customer-side roles (requester, participant). Nothing else: deny by default."""
    granted = [r for r in identity.roles_at(policy.id) if policy.role(r) is not None]
    if identity.organisation and not identity.is_service:
        granted += [r.id for r in policy.roles if r.side is Side.CUSTOMER and r.id not in granted]
    return tuple(granted)


def acting_role(identity: Identity, policy: DeskPolicy, requested: str | None = None) -> str:
    """The role a verified caller acts in at `policy`'s desk: `requested` (the `X-Actor-Role`
    a caller may send to choose among their roles) when they hold it, else their first granted
    role. NotYourRole when they hold none, or not the one requested."""
    granted = granted_roles(identity, policy)
    if requested is not None:
        if requested in granted:
            return requested
        raise NotYourRole(f"you do not hold the role {requested!r} at desk {policy.id!r}")
    if not granted:
        raise NotYourRole(f"you hold no role at desk {policy.id!r}")
    return granted[0]


def leads(identity: Identity, policy: DeskPolicy, requested: str | None = None) -> bool:
    """Does `identity` (in `requested`, the role it chooses, if any) lead `policy`'s desk: a
    role there that the policy marks `administers` (its team leads, supervisors)?"""
    try:
        held = [acting_role(identity, policy, requested)] if requested else None
    except NotYourRole:
        return False
    roles = held if held is not None else granted_roles(identity, policy)
    return any((found := policy.role(r)) is not None and found.administers for r in roles)


def identity_reads(identity: Identity, policies: Iterable[DeskPolicy]) -> dict[str, Audience]:
    """The desks of `policies` whose requests a verified caller reads, and as whom: the support
    side where the directory grants them a support role, the customer side where they belong to
    an organisation (their own organisation's requests only: `may_read`)."""
    desks: dict[str, Audience] = {}
    for policy in policies:
        audiences = {reader_audience(policy, r) for r in granted_roles(identity, policy)}
        if Audience.SUPPORT in audiences:
            desks[policy.id] = Audience.SUPPORT
        elif Audience.CUSTOMER in audiences:
            desks[policy.id] = Audience.CUSTOMER
    return desks


def reader_desks(
    identity: Identity, policies: Iterable[DeskPolicy], requested: str | None = None
) -> dict[str, Audience]:
    """The desks of `policies` whose requests a verified caller reads, and as whom: as
    `identity_reads` says, or, when they choose a role (`requested`, the `X-Actor-Role`), as that
    role reads at the desks where they hold it. NotYourRole when they hold `requested` at none of
    the desks, or read no desk's requests: who reads is decided before any request is looked up,
    so a caller who reads nothing learns of no request."""
    if requested is None:
        desks = identity_reads(identity, policies)
        if not desks:
            raise NotYourRole("you hold no role that reads requests at any desk")
        return desks
    held = [p for p in policies if requested in granted_roles(identity, p)]
    if not held:
        raise NotYourRole(f"you do not hold the role {requested!r} at any desk")
    desks = {p.id: a for p in held if (a := reader_audience(p, requested)) is not None}
    if not desks:
        raise NotYourRole(f"the role {requested!r} reads no desk's requests")
    return desks


def request_reader(
    identity: Identity, desks: Mapping[str, Audience], policy_id: str, owner: str | None
) -> Audience | None:
    """As whom a verified caller reading `desks` (`reader_desks`) reads a request of `owner`'s
    organisation at desk `policy_id`; None when they may not read it (no reading role at its
    desk, or a customer of another organisation): answer as if it did not exist."""
    audience = desks.get(policy_id)
    if audience is None or not may_read(audience, identity.organisation, owner):
        return None
    return audience


def may_read(audience: Audience, organisation: str | None, owner: str | None) -> bool:
    """May a reader of `audience`, of `organisation`, read a request of `owner`'s? The support
    side reads every request of its desk, a customer their own organisation's only."""
    return audience is Audience.SUPPORT or (organisation is not None and organisation == owner)


def role_seen_by(audience: Audience, policy: DeskPolicy, role: str | None) -> str | None:
    """`role` as `audience` reads it: a customer reads the customer side's roles, and
    `SUPPORT_NAME` for any other (and for a role the desk does not know)."""
    if audience is Audience.SUPPORT or role is None:
        return role
    found = policy.role(role)
    return role if found is not None and found.side is Side.CUSTOMER else SUPPORT_NAME


def entry_seen_by(
    audience: Audience, policy: DeskPolicy, event_type: str, data: Mapping[str, Any]
) -> dict[str, Any] | None:
    """What `audience` may see of one history entry of `policy`'s desk (its event type and its
    data as stored), or None when the entry is not for them (see module)."""
    if audience is Audience.SUPPORT:
        return dict(data)
    rule = _BY_TYPE.get(event_type)
    if rule is None or (rule.only_if is not None and data.get(rule.only_if) is not True):
        return None
    seen = {k: data[k] for k in (*COMMON, *rule.shown) if k in data}
    for person, role in PEOPLE:
        if person in data:
            named = data.get(role)
            shown = SUPPORT_NAME if named is None else role_seen_by(audience, policy, str(named))
            seen[role] = shown
            seen[person] = SUPPORT_NAME if shown == SUPPORT_NAME else data[person]
    return seen


def request_seen_by(
    audience: Audience, policy: DeskPolicy, request: Mapping[str, Any]
) -> dict[str, Any]:
    """What `audience` may see of a request's own fields (a list row, the detail's summary):
    a customer sees `REQUEST_SHOWN` only, with the expected actor as `role_seen_by` says."""
    if audience is Audience.SUPPORT:
        return dict(request)
    seen = {k: v for k, v in request.items() if k in REQUEST_SHOWN}
    if "expected_actor" in seen:
        seen["expected_actor"] = role_seen_by(audience, policy, seen["expected_actor"])
    return seen
