"""Rules every desk follows, whatever its policy (DOMAIN §3, §4): run for each shipped desk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from workflow_story import Desk, actor

from desk_contracts.tickets import CommentAdded, PriorityChanged, StatusChanged, TicketClosed
from desk_policies import SHIPPED
from desk_policies.actions import Action
from workflow.domain import (
    Actor,
    AddComment,
    AddParticipant,
    Assign,
    AutoClose,
    ChangePriority,
    Close,
    MuteNotifications,
    RequestInformation,
    Resolve,
    SendReminder,
    StartWork,
    UnmuteNotifications,
)

Make = Callable[[str], Desk]
ALICE = actor("requester")
desks = pytest.mark.parametrize("policy_id", SHIPPED)


def agent_of(d: Desk, action: Action) -> Actor:
    """Someone whose role may perform `action` from the current status."""
    for rule in d.state.policy.transitions:
        if rule.action is action and d.status in rule.from_:
            return actor(rule.roles[0])
    raise AssertionError(f"no {action} from {d.status}")


@desks
def test_invalid_transitions_are_refused_with_a_reason_and_change_nothing(
    desk: Make, policy_id: str
) -> None:
    d = desk(policy_id).create()
    reason = d.refused(Close(actor=ALICE))
    assert "may not close" in reason and len(d.history) == 1


@desks
def test_nothing_happens_to_a_request_before_it_exists(desk: Make, policy_id: str) -> None:
    assert "create it first" in desk(policy_id).refused(StartWork(actor=actor("agent")))


@desks
def test_time_always_carries_a_time_zone(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    d.now = datetime(2026, 3, 2, 9, 0)
    assert "time zone" in d.refused(AddComment(actor=actor("requester"), body="hi"))


@desks
def test_unknown_roles_are_refused(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    assert "does not exist" in d.refused(AddComment(actor=Actor("x", "janitor"), body="hi"))


@desks
def test_the_team_may_lower_the_priority_with_a_reason_and_the_requester_is_informed(
    desk: Make, policy_id: str
) -> None:
    d = desk(policy_id).create(priority="critical")
    team = actor(d.state.policy.permissions["change_priority"][0])  # type: ignore[index]
    assert "needs a reason" in d.refused(ChangePriority(actor=team, priority="low"))
    (lowered,) = d.do(ChangePriority(actor=team, priority="low", reason="Workaround"))
    assert isinstance(lowered, PriorityChanged) and lowered.requester_must_be_informed
    (raised,) = d.do(ChangePriority(actor=team, priority="high"))
    assert isinstance(raised, PriorityChanged) and not raised.requester_must_be_informed
    assert "already has priority" in d.refused(ChangePriority(actor=team, priority="high"))


@desks
def test_requester_comment_while_waiting_for_customer_moves_back_to_the_team(
    desk: Make, policy_id: str
) -> None:
    d = desk(policy_id).create()
    policy = d.state.policy
    (reply,) = [t for t in policy.transitions if t.action is Action.REQUESTER_REPLY]
    waiting = reply.from_[0]
    path = {
        "erp-vendor": ["start", "request_information"],
        "cloud-partner": ["start", "request_information"],
        "saas-desk": ["assign", "resolve"],
    }[policy_id]
    for step in path:
        who = agent_of(d, Action(step))
        d.do(
            {
                "start": StartWork(actor=who),
                "request_information": RequestInformation(actor=who, comment="What version?"),
                "assign": Assign(actor=who, assignee_id="bob"),
                "resolve": Resolve(
                    actor=who, resolution_code=policy.resolution_codes[0].id, comment="Try X"
                ),
            }[step]
        )
    assert d.status == waiting
    (event,) = d.do(AddComment(actor=ALICE, body="Here is the answer"))
    assert isinstance(event, StatusChanged) and event.to_status == reply.to
    (event,) = d.do(AddComment(actor=ALICE, body="And one more thing"))
    assert isinstance(event, CommentAdded)


# after the requester comments on a resolution: the status, and whether closing cites the comment
AFTER_COMMENT_ON_RESOLUTION = {
    "erp-vendor": ("resolved", True),  # seed 001: the agent closes if the comment confirms
    "cloud-partner": ("resolved", False),
    "saas-desk": ("assigned", False),  # the answer was not enough: back to the agent
}


@desks
def test_only_erp_vendor_closes_a_commented_resolution_citing_the_comment(
    desk: Make, policy_id: str
) -> None:
    d = desk(policy_id).create()
    code = d.state.policy.resolution_codes[0].id
    if policy_id == "saas-desk":  # taking it in charge is assigning it
        d.do(Assign(actor=agent_of(d, Action.ASSIGN), assignee_id="bob"))
    else:
        d.do(StartWork(actor=agent_of(d, Action.START)))
    d.do(Resolve(actor=agent_of(d, Action.RESOLVE), resolution_code=code, comment="Try X"))
    d.do(AddComment(actor=ALICE, body="ça fonctionne"))
    status, cites = AFTER_COMMENT_ON_RESOLUTION[policy_id]
    assert d.status == status
    closer = agent_of(d, Action.CLOSE)
    if cites:
        assert "cite the requester's comment" in d.refused(Close(actor=closer))
    cited = d.state.version if cites else None
    (closed,) = d.do(Close(actor=closer, confirmation_version=cited))
    assert isinstance(closed, TicketClosed) and closed.confirmation_version == cited


@desks
def test_customers_cannot_write_internal_notes(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    assert "internal note" in d.refused(AddComment(actor=ALICE, body="psst", public=False))


@desks
def test_participants_are_added_once_and_mute_only_themselves(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create().run(AddParticipant(actor=ALICE, participant_id="bob@acme.example"))
    assert "already follows" in d.refused(
        AddParticipant(actor=ALICE, participant_id="bob@acme.example")
    )
    assert "own notifications" in d.refused(
        MuteNotifications(actor=ALICE, participant_id="bob@acme.example")
    )
    bob = actor("participant", "bob@acme.example")
    d.run(
        MuteNotifications(actor=bob, participant_id="bob@acme.example"),
        UnmuteNotifications(actor=bob, participant_id="bob@acme.example"),
    )
    assert d.state.muted == frozenset()


@desks
def test_only_the_system_sends_reminders_and_auto_closes(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    v = d.state.version
    assert "only the system" in d.refused(AutoClose(actor=ALICE, armed_version=v))
    policy = d.state.policy
    if policy.automations.auto_close_days is None:
        assert "never closes" in d.refused(AutoClose(armed_version=v))
    else:
        assert d.do(AutoClose(armed_version=v)) == []  # not waiting for the customer
    for days in policy.automations.reminder_days:
        assert d.do(SendReminder(armed_version=v, days_waiting=days)) == []
