"""Who works in the console and in which role they act, read from the shipped policies."""

from __future__ import annotations

from desk_policies.description import describe
from desk_policies.loader import load_policies
from portal.domain.console import led_desks, role_for, staff_desks

POLICIES = load_policies()


def test_staff_desks_keep_support_side_roles_only() -> None:
    roles = {"erp-vendor": ["requester", "service_desk"], "saas-desk": ["requester"]}
    assert staff_desks(roles, POLICIES.values()) == {"erp-vendor": ("service_desk",)}


def test_a_customer_works_at_no_desk() -> None:
    assert staff_desks({"erp-vendor": ["requester", "participant"]}, POLICIES.values()) == {}


def test_leads_are_those_whose_role_administers_the_desk() -> None:
    roles = {"erp-vendor": ["team_lead"], "saas-desk": ["agent"], "cloud-partner": ["agent"]}
    assert led_desks(roles, POLICIES.values()) == frozenset({"erp-vendor"})


def test_the_role_is_the_first_the_policy_allows_for_the_move() -> None:
    desk = describe(POLICIES["erp-vendor"]).model_dump(mode="json", by_alias=True)
    roles = ("service_desk", "team_lead")
    assert role_for(desk, roles, action="qualify", status="open") == "team_lead"
    assert role_for(desk, roles, action="start", status="qualified") == "service_desk"
    assert role_for(desk, ("service_desk",), action="qualify", status="open") is None
    assert role_for(desk, ("daily",), permission="change_priority") is None
    assert role_for(desk, ("daily", "front_desk"), permission="change_priority") == "front_desk"
