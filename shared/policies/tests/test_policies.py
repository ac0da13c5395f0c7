"""Desk policies: the three shipped desks load, a fourth needs only a file, and every mistake
in a file is reported with the file, the field path and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from desk_policies import (
    POLICIES_DIR,
    SHIPPED,
    PolicyError,
    load_policies,
    load_policy,
    parse_policy,
    shipped_policy,
)
from desk_policies.calendars import shipped_calendars
from desk_policies.model import StatusCategory

EXPECTED_CALENDARS = {
    "erp-vendor": "ch-geneva-business",
    "cloud-partner": "fr-paris-business",
    "saas-desk": "ca-quebec-business",
}


def raw(policy_id: str = "saas-desk") -> dict[str, Any]:
    data = yaml.safe_load((POLICIES_DIR / f"{policy_id}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def error_of(data: dict[str, Any], **kw: Any) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "desk.yaml", **kw)
    return str(caught.value)


def test_the_three_seed_desks_ship_and_load_against_the_shipped_calendars() -> None:
    policies = load_policies(known_calendars=shipped_calendars())
    assert set(policies) == set(SHIPPED)
    for policy_id, calendar in EXPECTED_CALENDARS.items():
        assert policies[policy_id].sla.calendar == calendar
        assert policies[policy_id].sla.warning_share == 0.75


def test_notification_rules_name_events_that_exist() -> None:
    import desk_contracts.sla  # (registers the SLA warnings and breaches)
    import desk_contracts.tickets  # noqa: F401  (registers the ticket events)
    from desk_contracts.base import EVENT_TYPES

    load_policies(known_events=set(EVENT_TYPES))


def test_every_priority_has_response_and_resolution_targets_in_business_minutes() -> None:
    for policy_id in SHIPPED:
        policy = shipped_policy(policy_id)
        for request_type in policy.request_types:
            for priority in policy.priorities:
                target = policy.sla.target(request_type.id, priority.id)
                assert target is not None and 0 < target.response <= target.resolution
                assert target.response_time.total_seconds() == target.response * 60


def test_the_saas_desk_distinguishes_its_kinds_of_ticket_and_the_others_keep_a_default() -> None:
    """Seed 004: "Une distinction est également faite entre les différents types de billet"."""
    erp, cloud, saas = (shipped_policy(p) for p in SHIPPED)
    assert erp.sla.by_request_type == cloud.sla.by_request_type == {}
    for priority in (p.id for p in saas.priorities):
        error, problem, question = (
            saas.sla.target(kind, priority)
            for kind in ("system_error", "problem_report", "information_request")
        )
        assert error is not None and problem is not None and question is not None
        assert problem == saas.sla.targets[priority]  # a problem report keeps the default
        assert error.response < problem.response < question.response
        assert error.resolution < problem.resolution < question.resolution


def test_a_priority_a_request_type_does_not_name_keeps_the_default() -> None:
    data = raw()
    del data["sla"]["by_request_type"]["system_error"]["low"]
    policy = parse_policy(data)
    assert policy.sla.target("system_error", "low") == policy.sla.targets["low"]
    assert policy.sla.target("system_error", "high") != policy.sla.targets["high"]
    assert policy.sla.target("system_error", "nope") is None


def test_targets_of_an_unknown_request_type_or_priority_are_reported() -> None:
    data = raw()
    targets = data["sla"]["by_request_type"]
    targets["complaint"] = {"low": {"response": 10, "resolution": 20}}
    targets["system_error"]["urgent"] = {"response": 10, "resolution": 20}
    targets["system_error"]["high"] = {"response": 60, "resolution": 30}
    data["sla"]["targets"]["someday"] = {"response": 10, "resolution": 20}
    message = error_of(data)
    assert (
        "sla.by_request_type.complaint: unknown request type 'complaint' (request types: "
        "information_request, problem_report, system_error)" in message
    )
    assert (
        "sla.by_request_type.system_error.urgent: not a priority of this policy "
        "(priorities: low, medium, high, critical)" in message
    )
    assert "sla.by_request_type.system_error.high: resolution shorter than response" in message
    assert "sla.targets.someday: not a priority of this policy" in message


def test_targets_of_a_request_type_without_clocks_are_reported() -> None:
    data = raw("erp-vendor")
    data["sla"]["by_request_type"] = {"licence": {"low": {"response": 10, "resolution": 20}}}
    assert (
        "sla.by_request_type.licence: request type 'licence' is not sla_bound: it has no clocks"
        in error_of(data)
    )


def test_priorities_are_ordered_lowest_first() -> None:
    policy = shipped_policy("erp-vendor")
    assert [p.id for p in policy.priorities] == ["low", "medium", "high", "critical"]
    assert policy.priority_rank("low") == 0 and policy.priority_rank("nope") is None


def test_seed_rules_are_in_the_data() -> None:
    erp, cloud, saas = (shipped_policy(p) for p in SHIPPED)
    assert erp.closed_is_final and not erp.email_replies.accepted
    assert erp.automations.reminder_days == (10, 15) and erp.automations.auto_close_days == 20
    assert cloud.reopen.allowed and cloud.reopen.to_status == "in_progress"
    assert cloud.automations.reminder_days == (3, 6) and cloud.automations.auto_close_days == 12
    assert cloud.has_resolution_code("consulting") and cloud.email_replies.accepted
    assert saas.survey.enabled and saas.survey.scale == 5
    assert erp.request_type("licence") is not None
    assert erp.request_type("licence").creators == ("sales_admin",)  # type: ignore[union-attr]
    waiting = {s.id for s in cloud.statuses if s.pauses_sla}
    assert waiting >= {"waiting_customer", "waiting_third_party"}
    stops = {s.id for s in cloud.statuses if s.stops_response}
    assert stops == {"scheduled_operation", "waiting_customer", "resolved", "closed"}


def test_labels_speak_french_and_english() -> None:
    status = shipped_policy("erp-vendor").status("waiting_customer")
    assert status.labels.get("fr") == "En attente client"
    assert status.labels.get("en") == "Waiting for customer"
    assert status.category is StatusCategory.WAITING


def test_a_fourth_desk_needs_a_file_not_code(tmp_path: Path) -> None:
    data = raw("saas-desk")
    data["id"], data["name"] = "fourth-desk", "A fourth desk"
    data["sla"]["calendar"] = "always"
    (tmp_path / "fourth-desk.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    policies = load_policies(tmp_path)
    assert set(policies) == {*SHIPPED, "fourth-desk"}
    assert load_policies(tmp_path, include_shipped=False)["fourth-desk"].name == "A fourth desk"


def test_a_desk_defined_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "saas-desk.yaml").write_text(yaml.safe_dump(raw()), encoding="utf-8")
    with pytest.raises(PolicyError, match="defined twice"):
        load_policies(tmp_path)


def test_the_file_name_is_the_policy_id(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw()), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"other.yaml: invalid desk policy\n  id: 'saas-desk'"):
        load_policy(path)


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"(?s)broken.yaml.*not valid YAML.*line 1"):
        load_policy(path)


def test_a_missing_field_is_reported_with_its_path() -> None:
    data = raw()
    del data["statuses"][1]["category"]
    assert "statuses[1].category: Field required" in error_of(data)


def test_a_misspelt_field_is_reported() -> None:
    data = raw()
    data["statuses"][0]["pauses_slaa"] = True
    assert "statuses[0].pauses_slaa: Extra inputs are not permitted" in error_of(data)


def test_an_unknown_action_is_reported() -> None:
    data = raw()
    data["transitions"][0]["action"] = "teleport"
    assert "transitions[0].action: Input should be" in error_of(data)


def test_an_unknown_role_in_a_transition_is_reported() -> None:
    data = raw()
    data["transitions"][2]["roles"] = ["agent", "wizard"]
    message = error_of(data)
    assert message.startswith("desk.yaml: invalid desk policy")
    assert "transitions[2].roles[1]: unknown role 'wizard'" in message


def test_an_unknown_status_in_a_transition_is_reported() -> None:
    data = raw()
    data["transitions"][0]["from"] = ["limbo"]
    assert "transitions[0].from[0]: unknown status 'limbo'" in error_of(data)


def test_every_priority_needs_an_sla_target() -> None:
    data = raw()
    del data["sla"]["targets"]["critical"]
    assert "sla.targets: no target for priority 'critical'" in error_of(data)


def test_reminders_come_before_auto_close() -> None:
    data = raw("erp-vendor")
    data["automations"]["reminder_days"] = [10, 25]
    assert "automations.reminder_days: reminders must come before auto-close" in error_of(data)


def test_reopening_needs_a_target_status() -> None:
    data = raw("cloud-partner")
    data["reopen"]["to_status"] = None
    assert "reopen.to_status: required when reopening is allowed" in error_of(data)


def test_refused_email_replies_point_to_the_portal() -> None:
    data = raw("erp-vendor")
    data["email_replies"]["portal_url"] = None
    assert "email_replies.portal_url" in error_of(data)


def test_the_support_address_is_an_address_by_the_one_address_rule() -> None:
    data = raw()
    data["email_intake"]["support_address"] = "support@saas..example"  # the old pattern took it
    message = error_of(data)
    assert "email_intake.support_address: " in message and "two periods in a row" in message
    data["email_intake"]["support_address"] = "Support@SaaS-Desk.example"
    assert parse_policy(data).email_intake.support_address == "support@saas-desk.example"


def test_calendars_are_checked_against_the_known_set_when_given() -> None:
    data = raw()
    assert "sla.calendar: unknown calendar 'ca-quebec-business'" in error_of(
        data, known_calendars={"always"}
    )


def test_the_warning_share_is_a_fraction() -> None:
    data = raw()
    data["sla"]["warning_share"] = 1.5
    assert "sla.warning_share: Input should be less than 1" in error_of(data)


def test_all_problems_are_listed_at_once() -> None:
    data = raw()
    data["initial_status"] = "limbo"
    data["reopen"]["roles"] = ["ghost"]
    message = error_of(data)
    assert "initial_status: unknown status 'limbo'" in message
    assert "reopen.roles[0]: unknown role 'ghost'" in message
