"""Random command sequences against each desk (Hypothesis stateful tests).

Invariants: a rejected command produces no event and changes nothing; each event raises the
version by exactly one, survives a JSON round trip, and is a `StatusChanged` when the status
moves; every status change follows the policy (from the current status, to a status the
policy allows); closed stays closed where the policy says closing is final; stale system
timers produce nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import event as observe
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from workflow_story import T0, Desk

from desk_contracts.base import Event, event_from_data
from desk_contracts.tickets import Channel, StatusChanged, TicketCreated
from desk_policies import SHIPPED, DeskPolicy, shipped_policy
from workflow.domain import (
    Actor,
    AddComment,
    AddParticipant,
    AnswerSurvey,
    Assign,
    AutoClose,
    ChangePriority,
    Close,
    Command,
    ConfirmResolution,
    DisputeResolution,
    Escalate,
    EscalateByRequester,
    LinkRequest,
    MuteNotifications,
    Qualify,
    Rejection,
    Reopen,
    RequestInformation,
    Resolve,
    ReturnFromEscalation,
    ScheduleOperation,
    SendReminder,
    StartWork,
    Ticket,
    UnmuteNotifications,
    WaitForThirdParty,
    decide,
    evolve,
)

PEOPLE = ("alice@acme.example", "bob@acme.example", "eve@other.test")


def actors(policy: DeskPolicy) -> st.SearchStrategy[Actor]:
    def build(role: str, person: str) -> Actor:
        side = policy.role(role)
        if side is not None and side.side.value == "customer":
            return Actor(id=person, role=role, organisation_id=person.split("@")[1].split(".")[0])
        return Actor(id=f"{role}@desk.example", role=role)

    roles = [r.id for r in policy.roles] + ["janitor"]
    return st.builds(build, st.sampled_from(roles), st.sampled_from(PEOPLE))


def commands(policy: DeskPolicy) -> st.SearchStrategy[Command]:
    """Commands of every kind, valid or not. Times are offsets from T0 and armed versions are
    offsets from the current version: `situate` makes them concrete."""
    a = actors(policy)
    text = st.sampled_from(["", "details", "logs attached"])
    code = st.sampled_from([c.id for c in policy.resolution_codes] + ["bogus"])
    priority = st.sampled_from([p.id for p in policy.priorities])
    person = st.sampled_from(PEOPLE)
    version = st.integers(min_value=-3, max_value=1)
    reminder_days = st.sampled_from([*policy.automations.reminder_days, 1])
    return st.one_of(
        st.builds(Qualify, actor=a),
        st.builds(Assign, actor=a, assignee_id=st.sampled_from([None, "bob", "carol"])),
        st.builds(StartWork, actor=a),
        st.builds(RequestInformation, actor=a, comment=text),
        st.builds(WaitForThirdParty, actor=a, party=st.sampled_from(["atlassian", "x", "hosting"])),
        st.builds(
            ScheduleOperation,
            actor=a,
            scheduled_for=st.sampled_from([T0 - timedelta(hours=1), T0 + timedelta(days=2)]),
            responsible=st.sampled_from(["", "ops"]),
        ),
        st.builds(Escalate, actor=a, target=st.sampled_from(["triage", "rnd", "level2", "moon"])),
        st.builds(ReturnFromEscalation, actor=a),
        st.builds(Resolve, actor=a, resolution_code=code, comment=text),
        st.builds(ConfirmResolution, actor=a),
        st.builds(DisputeResolution, actor=a, comment=text),
        st.builds(Close, actor=a, resolution_code=st.none() | code),
        st.builds(Reopen, actor=a),
        st.builds(
            AddComment,
            actor=a,
            body=text,
            public=st.booleans(),
            channel=st.sampled_from(list(Channel)),
        ),
        st.builds(ChangePriority, actor=a, priority=priority, reason=st.none() | text),
        st.builds(EscalateByRequester, actor=a),
        st.builds(LinkRequest, actor=a, linked_key=st.sampled_from(["SPT-1", "SUP-9", ""])),
        st.builds(AddParticipant, actor=a, participant_id=person),
        st.builds(MuteNotifications, actor=a, participant_id=person),
        st.builds(UnmuteNotifications, actor=a, participant_id=person),
        st.builds(SendReminder, armed_version=version, days_waiting=reminder_days),
        st.builds(AutoClose, armed_version=version),
        st.builds(AnswerSurvey, actor=a, rating=st.integers(0, 6)),
    )


def situate(command: Command, state: Ticket, now: datetime) -> Command:
    if isinstance(command, (SendReminder, AutoClose)):
        return replace(command, armed_version=max(0, state.version + command.armed_version))
    if isinstance(command, ScheduleOperation):
        return replace(command, scheduled_for=now + (command.scheduled_for - T0))
    return command


def allowed_moves(policy: DeskPolicy) -> set[tuple[str, str]]:
    moves: set[tuple[str, str]] = set()
    for t in policy.transitions:
        targets = [t.to] if t.to else [*policy.escalations.values(), *t.from_]
        moves |= {(f, to) for f in t.from_ for to in targets}
    if policy.reopen.to_status:
        moves |= {(c, policy.reopen.to_status) for c in policy.closed_statuses}
    return moves


class DeskMachine(RuleBasedStateMachine):
    policy_id = ""

    def __init__(self) -> None:
        super().__init__()
        self.policy = shipped_policy(self.policy_id)
        self.moves = allowed_moves(self.policy)
        self.commands = commands(self.policy)
        self.state = Ticket.blank(self.policy, "t-1")
        self.now = T0
        self.accepted = 0
        self.was_closed_for_good = False

    @initialize()
    def create(self) -> None:
        self.state = Desk(self.policy_id).create().state

    @rule(data=st.data(), wait=st.sampled_from([0, 1, 3, 7, 13, 24]))
    def command(self, data: st.DataObject, wait: int) -> None:
        self.now += timedelta(days=wait, minutes=1)
        command = situate(data.draw(self.commands), self.state, self.now)
        roles = self.roles_acting_now()
        guided: bool = data.draw(st.booleans())
        timer = isinstance(command, (SendReminder, AutoClose))
        if roles and guided and not timer:
            role = data.draw(st.sampled_from(roles))
            customer = self.policy.role(role).side.value == "customer"  # type: ignore[union-attr]
            who = Actor("alice@acme.example", role, "acme") if customer else Actor(role, role)
            command = replace(command, actor=who)
        before = self.state
        result = decide(before, command, self.now)
        if isinstance(result, Rejection):
            assert result.reason.strip()
            assert self.state == before
            return
        assert len(result) <= 1
        if isinstance(command, (SendReminder, AutoClose)) and not (
            before.last_change_version <= command.armed_version <= before.version
        ):
            assert result == []
        for event in result:
            self.check(before, event)
            after = evolve(before, event)
            assert after.version == before.version + 1
            assert after.status == before.status or isinstance(event, StatusChanged)
            stored = event.model_dump(mode="json")
            assert event_from_data(event.event_type, event.schema_version, stored) == event
            before = after
        self.state = before
        if self.state.status is not None:
            observe(f"reached {self.state.status}")

    def roles_acting_now(self) -> list[str]:
        """Roles some transition allows from the current status (to steer the walk deeper)."""
        status = self.state.status
        roles = {r for t in self.policy.transitions if status in t.from_ for r in t.roles}
        if self.state.is_closed:
            roles |= set(self.policy.reopen.roles)
        return sorted(roles - {"system"})

    def check(self, before: Ticket, event: Event) -> None:
        assert event.ticket_id == before.ticket_id and event.occurred_at == self.now
        assert not isinstance(event, TicketCreated)
        if isinstance(event, StatusChanged):
            assert event.from_status == before.status
            pair = (event.from_status, event.to_status)
            assert event.to_status == event.from_status or pair in self.moves, pair

    @invariant()
    def closed_stays_final_where_the_policy_says_so(self) -> None:
        if self.was_closed_for_good:
            assert self.state.is_closed
        if self.policy.closed_is_final and self.state.is_closed:
            self.was_closed_for_good = True

    @invariant()
    def version_counts_events(self) -> None:
        assert self.state.version >= 1 and self.state.status is not None


def machine_for(policy_id: str) -> Any:
    machine: Any = type(f"Machine_{policy_id}", (DeskMachine,), {"policy_id": policy_id})
    case = machine.TestCase
    case.settings = settings(
        max_examples=100,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return case


assert SHIPPED == ("erp-vendor", "cloud-partner", "saas-desk")
TestErpVendorRandomCommands = machine_for("erp-vendor")
TestCloudPartnerRandomCommands = machine_for("cloud-partner")
TestSaasDeskRandomCommands = machine_for("saas-desk")
