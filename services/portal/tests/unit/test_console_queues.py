"""The queues of each shipped desk, built from its description as workflow serves it: which
queues, sla's filters for each, their counts, the default queue of a person, durations."""

from __future__ import annotations

from typing import Any

import pytest

from desk_policies.description import describe
from desk_policies.loader import load_policies
from portal.domain.queues import chosen_queue, default_queue, duration, queues_of

POLICIES = load_policies()
ME = "paul@desk.example"


def desk(desk_id: str) -> dict[str, Any]:
    return describe(POLICIES[desk_id]).model_dump(mode="json", by_alias=True)


def ids(desk_id: str) -> list[str]:
    return [q.id for q in queues_of(desk(desk_id), ME)]


def test_erp_vendor_has_its_front_desk_daily_meeting_and_experts_queues() -> None:
    assert ids("erp-vendor") == [
        "new", "to_assign", "mine", "unassigned", "actor-front_desk", "actor-daily",
        "actor-service_desk", "actor-product_expert", "actor-rnd", "actor-level2_consultant",
        "actor-requester", "waiting", "breached", "soon",
    ]  # fmt: skip
    queues = {q.id: q for q in queues_of(desk("erp-vendor"), ME)}
    assert queues["new"].params == (("status", "open"),)
    assert queues["to_assign"].params == (("status", "qualified"),)  # the daily meeting's
    assert queues["mine"].params == (("assignee", ME),)
    assert queues["actor-rnd"].params == (("expected_actor", "rnd"),)
    assert queues["actor-rnd"].labels == {"fr": "R&D", "en": "R&D"}
    assert queues["actor-level2_consultant"].labels is not None
    assert queues["actor-level2_consultant"].labels["en"] == "Level-2 consultant"
    assert queues["waiting"].params == (("category", "waiting"),)
    assert queues["soon"].params == (("due", "soon"),)


def test_cloud_partner_waits_for_third_parties_and_has_nothing_to_assign_apart() -> None:
    assert ids("cloud-partner") == [
        "new", "mine", "unassigned", "actor-agent", "actor-requester", "actor-third_party",
        "waiting", "breached", "soon",
    ]  # fmt: skip
    new = queues_of(desk("cloud-partner"), ME)[0]
    assert new.params == (("status", "submitted"),)


def test_saas_desk_has_its_agents_and_customers_queues() -> None:
    assert ids("saas-desk") == [
        "new", "mine", "unassigned", "actor-agent", "actor-requester", "waiting", "breached",
        "soon",
    ]  # fmt: skip


def test_a_desk_told_to_a_reader_of_less_gives_what_it_can() -> None:
    """A description without transitions or roles (e.g. trimmed): no "to assign", no labels."""
    trimmed = {**desk("erp-vendor"), "transitions": [], "roles": []}
    queues = {q.id: q for q in queues_of(trimmed, ME)}
    assert "to_assign" not in queues
    assert queues["actor-daily"].labels is None


@pytest.mark.parametrize(
    ("desk_id", "roles", "expected"),
    [
        ("erp-vendor", ("front_desk",), "actor-front_desk"),
        ("erp-vendor", ("daily",), "actor-daily"),
        ("erp-vendor", ("service_desk",), "actor-service_desk"),
        ("erp-vendor", ("team_lead",), "mine"),  # expected to act nowhere
        ("erp-vendor", ("team_lead", "rnd"), "actor-rnd"),
        ("erp-vendor", ("sales_admin",), "mine"),
        ("cloud-partner", ("agent",), "actor-agent"),
        ("cloud-partner", ("team_lead",), "mine"),
        ("saas-desk", ("supervisor", "agent"), "actor-agent"),
    ],
)
def test_the_default_queue_is_that_of_the_first_role_expected_to_act(
    desk_id: str, roles: tuple[str, ...], expected: str
) -> None:
    queues = queues_of(desk(desk_id), ME)
    assert default_queue(queues, roles).id == expected
    assert chosen_queue(queues, "no-such-queue", roles).id == expected
    assert chosen_queue(queues, None, roles).id == expected
    assert chosen_queue(queues, "breached", roles).id == "breached"


def test_each_queue_counts_from_one_answer_of_sla() -> None:
    counts = {
        "active": 9, "waiting": 2, "unassigned": 4, "assigned": 3, "breached": 1, "soon": 2,
        "by_status": {"open": 3, "qualified": 2, "in_progress": 2, "waiting_customer": 2},
        "by_expected_actor": {"front_desk": 3, "daily": 2, "service_desk": 2, "requester": 2},
    }  # fmt: skip
    found = {q.id: q.count(counts) for q in queues_of(desk("erp-vendor"), ME)}
    assert found["new"] == 3 and found["to_assign"] == 2
    assert found["mine"] == 3 and found["unassigned"] == 4
    assert found["actor-daily"] == 2 and found["actor-rnd"] == 0
    assert found["waiting"] == 2 and found["breached"] == 1 and found["soon"] == 2
    assert all(q.count({}) is None for q in queues_of(desk("erp-vendor"), ME))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "< 1 min"),
        (59, "< 1 min"),
        (60, "1 min"),
        (40 * 60, "40 min"),
        (3 * 3600, "3 h"),
        (2 * 3600 + 15 * 60 + 30, "2 h 15 min"),
        (-3600, "1 h"),
        (-(26 * 3600 + 60), "26 h 1 min"),
    ],
)
def test_durations_read_as_hours_and_minutes(seconds: int, text: str) -> None:
    assert duration(seconds) == text
