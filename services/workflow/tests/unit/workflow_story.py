"""A small script runner for the seed pages: a desk, a ticket, a clock and people in roles.

A story's request is created as in production: intake turns a submission into the
`TicketCreated` workflow folds (`intake.domain.submission.ticket_created`).
Imported by the tests as `workflow_story` (conftest puts this folder on the path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from desk_contracts.base import Event
from desk_contracts.tickets import Channel
from desk_policies import shipped_policy
from intake.domain.submission import Submission, Submitter, ticket_created
from workflow.domain import Actor, Command, Rejection, Ticket, decide, evolve

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday morning
ORG = "acme"


def actor(role: str, who: str | None = None) -> Actor:
    """Someone in `role`; customers belong to the ticket's organisation."""
    customer = role in ("requester", "participant")
    default = "alice@acme.example" if role == "requester" else f"{role}@desk.example"
    return Actor(id=who or default, role=role, organisation_id=ORG if customer else None)


@dataclass
class Desk:
    """One ticket of one desk, driven command by command like a story."""

    policy_id: str
    now: datetime = T0
    state: Ticket = field(init=False)
    history: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = Ticket.blank(shipped_policy(self.policy_id), "t-1")

    @property
    def status(self) -> str | None:
        return self.state.status

    def later(self, **delta: float) -> Desk:
        self.now += timedelta(**delta)
        return self

    def do(self, command: Command) -> list[Event]:
        result = decide(self.state, command, self.now)
        assert not isinstance(result, Rejection), result.reason
        for event in result:
            self.state = evolve(self.state, event)
            self.history.append(event)
        return result

    def refused(self, command: Command) -> str:
        before = self.state
        result = decide(self.state, command, self.now)
        assert isinstance(result, Rejection), f"accepted: {result}"
        assert self.state == before
        return result.reason

    def create(self, request_type: str | None = None, role: str = "requester", **kw: Any) -> Desk:
        """Open the story's request as intake does (`kw` changes the submission's fields)."""
        policy = self.state.policy
        kind = policy.request_type(request_type) if request_type else policy.request_types[0]
        assert kind is not None
        fields: dict[str, Any] = {
            "policy_id": policy.id,
            "request_type": kind.id,
            "priority": "medium",
            "subject": "Erreur lors de la transmission SwissDec pour M. Dupont",
            "description": "Steps, version, company, full error message",
            "organisation_id": ORG,
            "requester": "alice@acme.example",
        }
        sequence = int(str(kw.pop("key", "-1042")).rpartition("-")[2])
        channel = kw.pop("channel", Channel.PORTAL)
        fields.update(kw)
        creator = actor(role)
        created = ticket_created(
            Submission(**fields),
            policy,
            Submitter(creator.id, creator.role),
            ticket_id=self.state.ticket_id,
            sequence=sequence,
            channel=channel,
            now=self.now,
        )
        self.state = evolve(self.state, created)
        self.history.append(created)
        return self

    def run(self, *commands: Command) -> Desk:
        for command in commands:
            self.do(command)
        return self
