"""Every status of a policy is reachable from creation, and every open status can still reach a
closed one: first as a graph over the policy's data, then by searching the decider itself."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from workflow_story import T0, Desk, actor

from desk_policies import SHIPPED, DeskPolicy, shipped_policy
from desk_policies.actions import Action
from workflow.domain import (
    Actor,
    AddComment,
    Assign,
    AutoClose,
    Close,
    Command,
    ConfirmResolution,
    DisputeResolution,
    Escalate,
    Qualify,
    Rejection,
    Reopen,
    RequestInformation,
    Resolve,
    ReturnFromEscalation,
    ScheduleOperation,
    StartWork,
    Ticket,
    WaitForThirdParty,
    decide,
    evolve,
)

desks = pytest.mark.parametrize("policy_id", SHIPPED)


def edges(policy: DeskPolicy) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {s.id: set() for s in policy.statuses}
    for rule in policy.transitions:
        targets = {rule.to} if rule.to else set(policy.escalations.values())
        if rule.action is not Action.ESCALATE and rule.to is None:
            targets = set()
        for source in rule.from_:
            graph[source] |= {t for t in targets if t is not None}
    if policy.reopen.allowed and policy.reopen.to_status:
        for closed in policy.closed_statuses:
            graph[closed].add(policy.reopen.to_status)
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


@desks
def test_every_status_of_the_policy_is_reachable_from_creation(policy_id: str) -> None:
    policy = shipped_policy(policy_id)
    assert reachable(edges(policy), policy.initial_status) == {s.id for s in policy.statuses}


@desks
def test_every_open_status_can_reach_a_closed_one(policy_id: str) -> None:
    policy = shipped_policy(policy_id)
    graph = edges(policy)
    for status in policy.statuses:
        assert reachable(graph, status.id) & policy.closed_statuses, status.id


def canonical_commands(state: Ticket, now: datetime) -> Iterator[Command]:
    """One plausible command of each kind, by each role of the policy."""
    policy = state.policy
    later = now + timedelta(days=1)
    for role in policy.roles:
        who: Actor = actor(role.id)
        yield from (
            Qualify(actor=who),
            Assign(actor=who, assignee_id=f"{role.id}-agent"),
            StartWork(actor=who),
            RequestInformation(actor=who, comment="details?"),
            WaitForThirdParty(actor=who, party=(policy.third_parties or ("vendor",))[0]),
            ScheduleOperation(actor=who, scheduled_for=later, responsible="ops"),
            *(Escalate(actor=who, target=t) for t in policy.escalations),
            ReturnFromEscalation(actor=who),
            Resolve(actor=who, resolution_code=policy.resolution_codes[0].id, comment="done"),
            ConfirmResolution(actor=who),
            DisputeResolution(actor=who, comment="no"),
            Close(actor=who),
            Reopen(actor=who),
            AddComment(actor=who, body="answer"),
        )
    yield AutoClose(armed_version=state.version)


def successors(state: Ticket) -> Iterator[Ticket]:
    now = T0 + timedelta(days=(state.policy.automations.auto_close_days or 0))
    for command in canonical_commands(state, now):
        result = decide(state, command, now)
        if isinstance(result, Rejection) or not result:
            continue
        nxt = state
        for event in result:
            nxt = evolve(nxt, event)
        yield nxt


def key(state: Ticket) -> tuple[str | None, bool, str | None]:
    return state.status, state.resolution_confirmed, state.assignee_id


Key = tuple[str | None, bool, str | None]


def explore(start: Ticket) -> dict[Key, set[Key]]:
    """The decider's state space (abstracted by `key`) as a graph of successors."""
    graph: dict[Key, set[Key]] = {key(start): set()}
    todo = deque([start])
    while todo:
        state = todo.popleft()
        for nxt in successors(state):
            graph[key(state)].add(key(nxt))
            if key(nxt) not in graph:
                graph[key(nxt)] = set()
                todo.append(nxt)
    return graph


@desks
def test_the_decider_reaches_every_status_and_can_always_close(policy_id: str) -> None:
    created = Desk(policy_id).create().state
    graph = explore(created)
    policy = created.policy
    assert {s for s, _, _ in graph} == {s.id for s in policy.statuses}
    can_close = {k for k in graph if k[0] in policy.closed_statuses}
    changed = True
    while changed:
        before = len(can_close)
        can_close |= {k for k, nexts in graph.items() if nexts & can_close}
        changed = len(can_close) != before
    assert can_close == set(graph), f"cannot reach closed from {set(graph) - can_close}"
