"""What a desk offers, told to a client: `describe(policy)` is the body of `GET /desks` of
intake and workflow, what a portal or a script needs to build its screens without guessing.

The roles (and their side), the statuses (with who is expected to act), the transitions (which
roles may do what from where), the permissions, reopening, the request types (with who may
create them), the priorities (with their meaning), the resolution codes, the escalation
targets, the third parties, and the guide customers read before opening a request
(announcements, when to open one, help on its fields, escalation contacts: told to everyone).
`priorities` stays the list of ids it has always been (lowest first); `priority_levels` tells
each one.

Who asks decides what is told (`desk_for`, by the rules of `desk_policies.audience`): the desk's
support side (a verified caller holding a support role there: `identity_reads`) reads it whole;
anyone else (a customer, staff of other desks) reads the customer side's roles only, every other
role shown as the support side's neutral name, the transitions, permissions and creators of
customer-side roles only, and no escalation targets or third parties (the desk's internal
routing).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from desk_policies.actions import Action, Permission
from desk_policies.audience import Audience, role_seen_by
from desk_policies.model import DeskPolicy, Guard, Guide, Labels, Side, StatusCategory


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class DeskRole(_Entry):
    """A role of the desk (one a caller may choose in `X-Actor-Role` among those their identity
    grants), and which side of the desk it is on."""

    id: str
    labels: Labels
    side: Side


class DeskStatus(_Entry):
    """A status: its labels, its category, and the role expected to act (None once closed)."""

    id: str
    labels: Labels
    category: StatusCategory
    expected_actor: str | None


class DeskTransition(_Entry):
    """The roles that may perform `action` from the `from` statuses; `to` None keeps the status
    (for `escalate`: the escalation target's status); `guard` a condition it needs beyond."""

    action: Action
    from_: tuple[str, ...] = Field(alias="from")
    to: str | None
    roles: tuple[str, ...]
    guard: Guard | None


class DeskReopen(_Entry):
    """Whether a closed request may be reopened, by whom, to which status, for how many days."""

    allowed: bool
    roles: tuple[str, ...]
    to_status: str | None
    within_days: int | None


class DeskRequestType(_Entry):
    """A kind of request: its key prefix, label (English) and labels, and who may create it."""

    id: str
    prefix: str
    label: str
    labels: Labels
    category: str
    sla_bound: bool
    creators: tuple[str, ...]


class DeskPriority(_Entry):
    """A priority and, where the desk defines one, what it means."""

    id: str
    labels: Labels
    meaning: Labels | None


class DeskResolutionCode(_Entry):
    """A resolution code a request is resolved or closed with."""

    id: str
    labels: Labels


class DeskDescription(_Entry):
    """One desk as `GET /desks` tells it (see the module)."""

    id: str
    name: str
    roles: tuple[DeskRole, ...]
    statuses: tuple[DeskStatus, ...]
    initial_status: str
    transitions: tuple[DeskTransition, ...]
    permissions: dict[Permission, tuple[str, ...]]
    reopen: DeskReopen
    comments_on_closed: bool = Field(description="whether a closed request still takes comments")
    request_types: tuple[DeskRequestType, ...]
    priorities: tuple[str, ...] = Field(description="priority ids, lowest first")
    priority_levels: tuple[DeskPriority, ...] = Field(description="the priorities, lowest first")
    resolution_codes: tuple[DeskResolutionCode, ...]
    escalations: dict[str, str] = Field(description="escalation target -> status it leads to")
    third_parties: tuple[str, ...] = Field(description="who a request may wait for (empty: any)")
    guide: Guide = Field(
        default=Guide(), description="what the portal tells customers before they open a request"
    )


def describe(policy: DeskPolicy) -> DeskDescription:
    """`policy` told to a client (see the module)."""
    return DeskDescription(
        id=policy.id,
        name=policy.name,
        roles=tuple(DeskRole(id=r.id, labels=r.labels, side=r.side) for r in policy.roles),
        statuses=tuple(
            DeskStatus(
                id=s.id, labels=s.labels, category=s.category, expected_actor=s.expected_actor
            )
            for s in policy.statuses
        ),
        initial_status=policy.initial_status,
        transitions=tuple(
            DeskTransition(action=t.action, from_=t.from_, to=t.to, roles=t.roles, guard=t.guard)
            for t in policy.transitions
        ),
        permissions=dict(policy.permissions),
        reopen=DeskReopen(
            allowed=policy.reopen.allowed,
            roles=policy.reopen.roles,
            to_status=policy.reopen.to_status,
            within_days=policy.reopen.within_days,
        ),
        comments_on_closed=policy.comments_on_closed,
        request_types=tuple(
            DeskRequestType(
                id=t.id,
                prefix=t.prefix,
                label=t.labels.en,
                labels=t.labels,
                category=t.category,
                sla_bound=t.sla_bound,
                creators=t.creators,
            )
            for t in policy.request_types
        ),
        priorities=tuple(p.id for p in policy.priorities),
        priority_levels=tuple(
            DeskPriority(id=p.id, labels=p.labels, meaning=p.meaning) for p in policy.priorities
        ),
        resolution_codes=tuple(
            DeskResolutionCode(id=c.id, labels=c.labels) for c in policy.resolution_codes
        ),
        escalations=dict(policy.escalations),
        third_parties=policy.third_parties,
        guide=policy.guide,
    )


def desk_for(policy: DeskPolicy, audience: Audience | None) -> DeskDescription:
    """`policy` as a reader of `audience` at that desk (None: one who reads none of its
    requests) may read it (see the module)."""
    whole = describe(policy)
    if audience is Audience.SUPPORT:
        return whole
    customers = {r.id for r in policy.roles if r.side is Side.CUSTOMER}

    def theirs(roles: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(r for r in roles if r in customers)

    return whole.model_copy(
        update={
            "roles": tuple(r for r in whole.roles if r.id in customers),
            "statuses": tuple(
                s.model_copy(
                    update={
                        "expected_actor": role_seen_by(Audience.CUSTOMER, policy, s.expected_actor)
                    }
                )
                for s in whole.statuses
            ),
            "transitions": tuple(
                t.model_copy(update={"roles": theirs(t.roles)})
                for t in whole.transitions
                if theirs(t.roles)
            ),
            "permissions": {k: theirs(v) for k, v in whole.permissions.items() if theirs(v)},
            "reopen": whole.reopen.model_copy(update={"roles": theirs(whole.reopen.roles)}),
            "request_types": tuple(
                t.model_copy(update={"creators": theirs(t.creators)}) for t in whole.request_types
            ),
            "escalations": {},
            "third_parties": (),
        }
    )
