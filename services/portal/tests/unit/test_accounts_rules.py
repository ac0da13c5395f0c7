"""Who may administer whom, what an account's signed identity grants, and sign-in throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk_policies.loader import load_policies
from portal.domain.accounts import Account, Refused, administered_desks, check_grant
from portal.domain.throttle import LOCK, MAX_FAILURES, WINDOW, after_attempt, locked_for

POLICIES = load_policies()
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
LEA = Account("lea@desk.example", "Léa", "active", roles={"erp-vendor": ("team_lead",)})


def test_a_desk_lead_administers_that_desk_only() -> None:
    assert administered_desks(LEA, POLICIES.values()) == {"erp-vendor"}
    agent = Account("paul@desk.example", "Paul", "active", roles={"erp-vendor": ("service_desk",)})
    assert administered_desks(agent, POLICIES.values()) == frozenset()
    gone = Account(LEA.email, LEA.name, "deactivated", roles=LEA.roles)
    assert administered_desks(gone, POLICIES.values()) == frozenset()


@pytest.mark.parametrize(
    ("desk", "role", "why"),
    [
        ("saas-desk", "agent", "do not administer"),
        ("erp-vendor", "requester", "not a role of desk"),  # customer side: by organisation
        ("erp-vendor", "system", "not a role of desk"),  # the automations' own
        ("nowhere", "agent", "no desk"),
    ],
)
def test_grants_outside_the_rules_are_refused(desk: str, role: str, why: str) -> None:
    with pytest.raises(Refused, match=why):
        check_grant(LEA, POLICIES, desk, role)


def test_an_account_grants_nothing_until_active() -> None:
    waiting = Account("dan@initech.example", "Dan", "registered", "initech")
    identity = waiting.identity("password")
    assert identity.scope == frozenset() and identity.organisation is None
    active = Account("dan@initech.example", "Dan", "active", "initech")
    assert active.identity("password").organisation == "initech"
    assert active.identity("api_token", frozenset({"read"})).scope == {"read"}


def test_failures_lock_an_address_then_the_lock_ends() -> None:
    state = None
    for n in range(MAX_FAILURES["address"]):
        assert locked_for(state, NOW) is None, n
        state = after_attempt(state, "address", NOW)
    assert locked_for(state, NOW) == LOCK
    assert locked_for(state, NOW + LOCK) is None
    # failures spread wider than the window start counting again
    old = after_attempt(None, "address", NOW - WINDOW - timedelta(seconds=1))
    assert after_attempt(old, "address", NOW).failures == 1


def test_a_lead_manages_customers_and_their_desk_s_staff_only() -> None:
    from portal.domain.accounts import check_administers_all, check_manages

    customer = Account("anne@acme.example", "Anne", "active", "acme")
    colleague = Account("paul@desk.example", "Paul", "active", roles={"erp-vendor": ("rnd",)})
    elsewhere = Account("max@desk.example", "Max", "active", roles={"saas-desk": ("agent",)})
    check_manages(LEA, customer, POLICIES)
    check_manages(LEA, colleague, POLICIES)
    for person, why in ((elsewhere, "do not administer: saas-desk"), (LEA, "your own")):
        with pytest.raises(Refused, match=why) as refused:
            check_manages(LEA, person, POLICIES)
        assert refused.value.status == 403
    with pytest.raises(Refused, match="every desk"):
        check_administers_all(LEA, POLICIES)
    everywhere = Account(LEA.email, LEA.name, "active", roles={
        "erp-vendor": ("team_lead",), "cloud-partner": ("team_lead",), "saas-desk": ("supervisor",)
    })  # fmt: skip
    check_administers_all(everywhere, POLICIES)


def test_a_lead_changes_no_role_of_their_own_and_every_refusal_has_its_text() -> None:
    import re
    from importlib import resources

    from portal.catalogue import catalogue, text

    check_grant(LEA, POLICIES, "erp-vendor", "rnd", "paul@desk.example")
    with pytest.raises(Refused, match="your own desk roles") as refused:
        check_grant(LEA, POLICIES, "erp-vendor", "rnd", "LEA@desk.example")
    assert refused.value.status == 403 and refused.value.key == "admin.refused.own_roles"
    with pytest.raises(Refused) as elsewhere:
        check_grant(LEA, POLICIES, "saas-desk", "agent")
    said = text("fr", elsewhere.value.key, **elsewhere.value.values)
    assert said == (
        "Vous n'administrez pas le desk SaaS ticketing desk : ce sont ses responsables qui "
        "attribuent ses rôles."
    )
    named = set()
    for module in ("domain/accounts.py", "application/people.py"):
        source = (resources.files("portal") / module).read_text("utf-8")
        named |= set(re.findall(r'"(admin\.refused\.[a-z_]+)"', source))
    assert len(named) >= 10 and named - set(catalogue("en")) == set()


def test_a_lead_reads_customers_and_the_staff_of_their_desks_only() -> None:
    from portal.domain.accounts import may_read

    lead = Account(email="lea@desk.example", name="Léa", status="active",
                   roles={"erp-vendor": ("team_lead",)})  # fmt: skip
    customer = Account(email="anne@acme.example", name="Anne", status="active",
                       organisation_id="acme")  # fmt: skip
    theirs = Account(email="paul@desk.example", name="Paul", status="active",
                     roles={"erp-vendor": ("service_desk",), "saas-desk": ("agent",)})  # fmt: skip
    other = Account(email="sam@desk.example", name="Sam", status="active",
                    roles={"saas-desk": ("agent",)})  # fmt: skip
    agent = Account(email="ann@desk.example", name="Ann", status="active",
                    roles={"erp-vendor": ("service_desk",)})  # fmt: skip
    policies = POLICIES.values()
    assert may_read(lead, customer, policies) and may_read(lead, theirs, policies)
    assert may_read(lead, lead, policies)
    assert not may_read(lead, other, policies)
    assert not may_read(agent, customer, policies)  # not a lead: reads nobody here
