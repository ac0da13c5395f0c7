"""`describe(policy)`: everything a client needs of a desk is told, nothing of it dropped."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from desk_policies import SHIPPED, shipped_policy
from desk_policies.audience import Audience
from desk_policies.description import describe, desk_for
from desk_policies.model import Contact, Labels

desks = pytest.mark.parametrize("policy_id", SHIPPED)


@desks
def test_every_role_status_and_transition_is_told(policy_id: str) -> None:
    policy = shipped_policy(policy_id)
    told = describe(policy)
    assert [(r.id, r.side, r.labels) for r in told.roles] == [
        (r.id, r.side, r.labels) for r in policy.roles
    ]
    assert [(s.id, s.category, s.expected_actor, s.labels) for s in told.statuses] == [
        (s.id, s.category, s.expected_actor, s.labels) for s in policy.statuses
    ]
    assert told.initial_status == policy.initial_status
    assert [(t.action, t.from_, t.to, t.roles, t.guard) for t in told.transitions] == [
        (t.action, t.from_, t.to, t.roles, t.guard) for t in policy.transitions
    ]
    assert told.permissions == policy.permissions
    assert (told.reopen.allowed, told.reopen.roles) == (policy.reopen.allowed, policy.reopen.roles)


@desks
def test_every_value_a_command_or_a_submission_accepts_is_told(policy_id: str) -> None:
    policy = shipped_policy(policy_id)
    told = describe(policy)
    assert [(t.id, t.prefix, t.creators) for t in told.request_types] == [
        (t.id, t.prefix, t.creators) for t in policy.request_types
    ]
    assert told.priorities == tuple(p.id for p in policy.priorities)
    assert [(p.id, p.meaning) for p in told.priority_levels] == [
        (p.id, p.meaning) for p in policy.priorities
    ]
    assert [c.id for c in told.resolution_codes] == [c.id for c in policy.resolution_codes]
    assert told.escalations == policy.escalations
    assert told.third_parties == policy.third_parties


def test_the_fields_are_named_as_a_client_reads_them() -> None:
    told = describe(shipped_policy("cloud-partner")).model_dump(mode="json", by_alias=True)
    assert told["transitions"][0] == {
        "action": "assign",
        "from": [
            "submitted",
            "in_progress",
            "waiting_customer",
            "waiting_third_party",
            "scheduled_operation",
            "resolved",
        ],
        "to": None,
        "roles": ["agent", "team_lead"],
        "guard": None,
    }
    support = told["request_types"][0]
    assert support["label"] == "Support request" and support["prefix"] == "SUP"
    assert told["roles"][0] == {
        "id": "requester",
        "labels": {"fr": "Créateur", "en": "Requester"},
        "side": "customer",
    }


@desks
def test_every_shipped_desk_guides_its_customers(policy_id: str) -> None:
    policy = shipped_policy(policy_id)
    guide = desk_for(policy, Audience.CUSTOMER).guide
    assert guide == policy.guide
    assert guide.when_to_open is not None and guide.subject_advice is not None
    assert guide.contacts, "customers need someone to turn to beyond a request"


def test_a_contact_is_reached_one_way() -> None:
    with pytest.raises(ValidationError):
        Contact(label=Labels(fr="x", en="x"))
    with pytest.raises(ValidationError):
        Contact(label=Labels(fr="x", en="x"), mail="a@b.example", url="https://b.example")
    with pytest.raises(ValidationError):
        Contact(label=Labels(fr="x", en="x"), url="javascript:alert(1)")
