"""Which actions a person has now on a request, per shipped desk, from what `GET /desks`
tells a customer (and an agent) of each desk."""

from __future__ import annotations

from typing import Any

import pytest

from desk_policies.audience import Audience
from desk_policies.description import desk_for
from desk_policies.loader import load_policies
from portal.adapters.request_pages import list_choice
from portal.domain.request_actions import acting_role, actions_now

POLICIES = load_policies()
ANNE = "anne@acme.example"


def desk(policy: str, audience: Audience = Audience.CUSTOMER) -> dict[str, Any]:
    return desk_for(POLICIES[policy], audience).model_dump(mode="json", by_alias=True)


def request(status: str, category: str = "in_progress", muted: tuple[str, ...] = ()) -> Any:
    return {"status": {"id": status, "category": category}, "muted": list(muted)}


def offered(policy: str, status: str, category: str = "in_progress", **kw: Any) -> list[str]:
    told = desk(policy)
    role = acting_role(told, (), customer=True)
    return actions_now(told, request(status, category, **kw), ANNE, role)


def test_a_customer_acts_as_the_desk_s_first_customer_side_role() -> None:
    assert acting_role(desk("erp-vendor"), (), customer=True) == "requester"
    assert acting_role(desk("erp-vendor"), (), customer=False) is None
    agent = desk("cloud-partner", Audience.SUPPORT)
    assert acting_role(agent, ("agent",), customer=False) == "agent"


@pytest.mark.parametrize(
    ("policy", "waiting"),
    [("erp-vendor", "waiting_customer"), ("cloud-partner", "waiting_customer"),
     ("saas-desk", "answered")],
)  # fmt: skip
def test_waiting_for_the_customer_the_comment_is_a_reply(policy: str, waiting: str) -> None:
    assert "reply" in offered(policy, waiting) and "comment" not in offered(policy, waiting)


def test_erp_vendor() -> None:
    assert offered("erp-vendor", "in_progress") == ["comment", "mute"]
    assert offered("erp-vendor", "resolved", "resolved")[:3] == ["comment", "confirm", "dispute"]
    assert offered("erp-vendor", "closed", "closed") == ["new_referencing"]


def test_cloud_partner() -> None:
    assert offered("cloud-partner", "in_progress") == ["comment", "escalate", "mute"]
    assert offered("cloud-partner", "resolved", "resolved") == [
        "comment", "confirm", "dispute", "escalate", "mute",
    ]  # fmt: skip
    assert offered("cloud-partner", "closed", "closed") == ["comment", "reopen", "mute"]
    assert offered("cloud-partner", "in_progress", muted=(ANNE,))[-1] == "unmute"


def test_saas_desk() -> None:
    assert offered("saas-desk", "assigned") == ["comment", "mute"]
    assert offered("saas-desk", "answered") == ["reply", "confirm", "dispute", "mute"]
    assert offered("saas-desk", "closed", "closed") == ["comment", "reopen", "mute"]


def test_no_role_no_action() -> None:
    assert actions_now(desk("saas-desk"), request("open"), ANNE, None) == []


def test_a_list_link_keeps_the_choice_and_goes_back_to_the_first_page() -> None:
    choice = list_choice({"tab": "organisation", "state": "closed", "q": "vpn", "page": "3"})
    assert choice.page == 3
    assert choice.link(sort="key") == (
        "/requests?tab=organisation&state=closed&sort=key&order=desc&q=vpn&page=1"
    )
    assert choice.sorted_by("updated") == "descending" and choice.sorted_by("key") == "none"
    assert "order=asc" in choice.sort_link("updated")
    odd = list_choice({"tab": "x", "state": "'", "sort": "subject", "page": "-1"})
    assert (odd.tab, odd.state, odd.sort, odd.page) == ("mine", "open", "updated", 1)
