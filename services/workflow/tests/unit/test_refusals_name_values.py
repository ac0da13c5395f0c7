"""A value the desk does not accept is refused naming the field at fault and listing the desk's
valid values (an invalid input, 422 over HTTP); an unknown role lists the desk's roles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from workflow_story import Desk, actor

from desk_policies import SHIPPED
from desk_policies.actions import Permission
from workflow.domain import (
    Actor,
    AddComment,
    ChangePriority,
    Command,
    Escalate,
    Rejection,
    Resolve,
    WaitForThirdParty,
    decide,
)

Make = Callable[[str], Desk]
desks = pytest.mark.parametrize("policy_id", SHIPPED)


def rejection(d: Desk, command: Command) -> Rejection:
    result = decide(d.state, command, d.now)
    assert isinstance(result, Rejection), f"accepted: {result}"
    return result


def staff(d: Desk) -> Actor:
    """Someone of the support side who may change the priority (and so comment)."""
    return actor(d.state.policy.permissions[Permission.CHANGE_PRIORITY][0])


@desks
def test_an_unknown_role_lists_the_desks_roles(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    refused = rejection(d, AddComment(actor=Actor("x", "janitor"), body="hi"))
    assert refused.field is None  # who acts is not a field of the body: 403 over HTTP
    assert "'janitor' does not exist" in refused.reason
    assert ", ".join(r.id for r in d.state.policy.roles) in refused.reason


@desks
def test_an_unknown_resolution_code_lists_the_desks_codes(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    refused = rejection(d, Resolve(actor=staff(d), resolution_code="magic", comment="Done"))
    codes = ", ".join(c.id for c in d.state.policy.resolution_codes)
    assert refused == Rejection(
        f"unknown resolution code 'magic' (codes: {codes})", "resolution_code"
    )


@desks
def test_an_unknown_priority_lists_the_desks_priorities(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    refused = rejection(d, ChangePriority(actor=staff(d), priority="urgent"))
    priorities = ", ".join(p.id for p in d.state.policy.priorities)
    assert refused == Rejection(f"unknown priority 'urgent' (priorities: {priorities})", "priority")


@desks
def test_an_unknown_escalation_lists_the_desks_targets(desk: Make, policy_id: str) -> None:
    d = desk(policy_id).create()
    refused = rejection(d, Escalate(actor=staff(d), target="moon"))
    targets = ", ".join(d.state.policy.escalations) or "none"
    assert refused == Rejection(
        f"no escalation 'moon' in this desk (escalations: {targets})", "target"
    )


def test_an_unknown_third_party_lists_the_desks(desk: Make) -> None:
    d = desk("cloud-partner").create()
    refused = rejection(d, WaitForThirdParty(actor=staff(d), party="ibm"))
    assert refused == Rejection(
        "name the third party waited for (atlassian, addon_vendor, hosting)", "party"
    )


@desks
def test_a_blank_comment_from_code_is_refused_naming_its_field(desk: Make, policy_id: str) -> None:
    """Code that builds commands itself gets the pure check the HTTP body's schema also makes."""
    d = desk(policy_id).create()
    refused = rejection(d, AddComment(actor=staff(d), body=" \n "))
    assert refused == Rejection("a comment cannot be empty", "body")
