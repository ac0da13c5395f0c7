"""The console's command forms, from the shipped desks' descriptions (as workflow's `GET /desks`
tells them) for every status: what the policy allows a staff member's roles, never a customer's
action, each form naming workflow's command and body fields; and the check of what was typed."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from desk_policies.description import describe
from desk_policies.loader import load_policies
from desk_policies.model import Side
from portal.catalogue import catalogue
from portal.domain import console_commands as cc
from workflow.adapters.commands_api import NOT_IN_BODY, http_commands, kebab

POLICIES = load_policies()
DESKS = {p: describe(d).model_dump(mode="json", by_alias=True) for p, d in POLICIES.items()}
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEA = "lea@desk.example"
ANNE = "anne@acme.example"
BRUNO = "bruno@acme.example"
CUSTOMER_ACTIONS = {"confirm_resolution", "dispute_resolution", "requester_reply", "auto_close"}
BODIES = {  # workflow's command paths and the body fields each takes
    kebab(c.__name__): {f.name for f in dataclasses.fields(c)} - NOT_IN_BODY
    for c in http_commands()
}
STAFF = (cc.Person("paul@desk.example", "Paul Agent"), cc.Person(LEA, "Léa Lead"))


def request(desk: str, status: str, **fields: Any) -> dict[str, Any]:
    """A request of `desk` in `status`, as workflow shows it to the support side."""
    told = next(s for s in DESKS[desk]["statuses"] if s["id"] == status)
    return {
        "key": "SPT-1", "policy_id": desk, "priority": "medium",
        "requester_id": "anne@acme.example", "participants": [], "muted": [], "links": [],
        "resolution_code": None, "version": 3,
        "updated_at": "2026-03-01T09:00:00+00:00", "history": [],
        "status": {"id": status, "category": told["category"], "labels": told["labels"]},
        **fields,
    }  # fmt: skip


def support_roles(desk: str) -> tuple[str, ...]:
    return tuple(r.id for r in POLICIES[desk].roles if r.side is Side.SUPPORT)


def names(forms: list[cc.CommandForm]) -> list[str]:
    return [f.name for f in forms]


CASES = [(d, s["id"]) for d, desk in DESKS.items() for s in desk["statuses"]]


@pytest.mark.parametrize(("desk", "status"), CASES)
def test_each_form_is_allowed_to_one_of_the_roles_and_names_workflow_fields(
    desk: str, status: str
) -> None:
    roles = support_roles(desk)
    forms = cc.forms_now(DESKS[desk], request(desk, status), LEA, roles, STAFF, NOW)
    policy = POLICIES[desk]
    for form in forms:
        assert form.name not in CUSTOMER_ACTIONS
        assert form.role in roles
        assert form.path in BODIES, form.path
        sent = {f.name for f in form.fields} | set(form.fixed)
        assert sent <= BODIES[form.path], (form.name, sent - BODIES[form.path])
        if form.name in cc.TRANSITIONS:
            assert any(
                t.action.value == form.name and status in t.from_ and form.role in t.roles
                for t in policy.transitions
            )
    offered = set(names(forms))
    for t in policy.transitions:
        allowed = status in t.from_ and set(t.roles) & set(roles)
        if allowed and t.action.value not in CUSTOMER_ACTIONS:
            assert t.action.value in offered, t.action.value


@pytest.mark.parametrize(("desk", "status"), CASES)
def test_every_text_a_form_names_exists_in_both_languages(desk: str, status: str) -> None:
    forms = cc.forms_now(DESKS[desk], request(desk, status), LEA, support_roles(desk), STAFF, NOW)
    keys = {f"agent.{part}.{form.name}" for form in forms for part in ("cmd", "send", "done")}
    keys |= {f.label for form in forms for f in form.fields}
    keys |= {f.hint for form in forms for f in form.fields if f.hint}
    for language in ("en", "fr"):
        assert keys - set(catalogue(language)) == set()


def test_the_erp_vendor_front_desk_on_an_open_request() -> None:
    forms = cc.forms_now(
        DESKS["erp-vendor"], request("erp-vendor", "open"), "frontdesk@desk.example",
        ("front_desk",), STAFF, NOW,
    )  # fmt: skip
    assert names(forms) == [
        "qualify", "assign", "start", "request_information", "close", "comment", "note",
        "change_priority", "link_request", "add_participant", "mute",
    ]  # fmt: skip
    assert {f.role for f in forms} == {"front_desk"}
    assign = next(f for f in forms if f.name == "assign")
    assignee = assign.field("assignee_id")
    assert assignee is not None and [c.value for c in assignee.choices] == [s.email for s in STAFF]
    assert assign.field("group_id") is not None


def test_the_erp_vendor_team_lead_on_a_request_in_progress() -> None:
    forms = cc.forms_now(
        DESKS["erp-vendor"], request("erp-vendor", "in_progress"), LEA, ("team_lead",), STAFF, NOW
    )
    assert names(forms) == [
        "assign", "request_information", "escalate", "resolve", "close", "comment", "note",
        "change_priority", "link_request", "add_participant", "mute",
    ]  # fmt: skip
    paths = {f.name: f.path for f in forms}
    assert paths["request_information"] == "request-information"
    assert paths["comment"] == paths["note"] == "add-comment"
    escalate = next(f for f in forms if f.name == "escalate")
    target = escalate.field("target")
    assert target is not None and [c.value for c in target.choices] == ["triage", "rnd", "level2"]
    resolve = next(f for f in forms if f.name == "resolve")
    code, comment = resolve.fields
    assert code.required and code.choices[0].value == "handled"
    assert comment.name == "comment" and comment.required
    comment_form = next(f for f in forms if f.name == "comment")
    note = next(f for f in forms if f.name == "note")
    assert comment_form.fixed == {"public": True} and note.fixed == {"public": False}


def test_an_escalated_request_offers_the_other_targets_and_the_way_back() -> None:
    forms = cc.forms_now(
        DESKS["erp-vendor"], request("erp-vendor", "waiting_triage"), LEA, ("team_lead",), STAFF
    )
    escalate = next(f for f in forms if f.name == "escalate")
    target = escalate.field("target")
    assert target is not None and [c.value for c in target.choices] == ["rnd", "level2"]
    assert "return_from_escalation" in names(forms)


def test_a_closed_erp_vendor_request_is_final() -> None:
    forms = cc.forms_now(
        DESKS["erp-vendor"], request("erp-vendor", "closed", participants=[LEA]), LEA,
        ("team_lead",), STAFF, NOW,
    )  # fmt: skip
    assert forms == []


def test_cloud_partner_third_parties_and_scheduled_operations() -> None:
    forms = cc.forms_now(
        DESKS["cloud-partner"], request("cloud-partner", "in_progress"), LEA, ("team_lead",),
        STAFF, NOW,
    )  # fmt: skip
    wait = next(f for f in forms if f.name == "wait_for_third_party")
    party = wait.field("party")
    assert party is not None and party.kind == "select"
    assert [c.value for c in party.choices] == ["atlassian", "addon_vendor", "hosting"]
    schedule = next(f for f in forms if f.name == "schedule_operation")
    assert [f.name for f in schedule.fields] == ["scheduled_for", "responsible", "comment"]
    assert schedule.fields[0].kind == "datetime"


def test_a_desk_without_a_list_of_third_parties_takes_any_name() -> None:
    desk = {**DESKS["cloud-partner"], "third_parties": []}
    forms = cc.forms_now(desk, request("cloud-partner", "in_progress"), LEA, ("team_lead",))
    party = next(f for f in forms if f.name == "wait_for_third_party").field("party")
    assert party is not None and party.kind == "line" and party.required


def test_reopening_follows_the_desk_rule_and_its_days() -> None:
    closed = request("saas-desk", "closed", updated_at="2026-03-01T09:00:00+00:00")
    forms = cc.forms_now(DESKS["saas-desk"], closed, LEA, ("supervisor",), STAFF, NOW)
    assert "reopen" in names(forms)
    assert "comment" in names(forms) and "note" in names(forms)  # comments on closed
    assert "change_priority" not in names(forms)
    late = cc.forms_now(
        DESKS["saas-desk"], closed, LEA, ("supervisor",), STAFF, NOW + timedelta(days=31)
    )
    assert "reopen" not in names(late)
    closing = {"type": "TicketClosed", "version": 5, "occurred_at": "2026-01-15T09:00:00+00:00",
               "data": {}}  # fmt: skip
    long_ago = {**closed, "history": [closing]}  # the closing told by the history wins
    assert "reopen" not in names(cc.forms_now(DESKS["saas-desk"], long_ago, LEA, ("supervisor",),
                                              STAFF, NOW))  # fmt: skip
    forever = cc.forms_now(
        DESKS["cloud-partner"], request("cloud-partner", "closed"), LEA, ("team_lead",), STAFF,
        NOW + timedelta(days=3650),
    )  # fmt: skip
    assert "reopen" in names(forever)


def test_mute_and_unmute_name_one_of_the_people_who_follow_the_request() -> None:
    desk = DESKS["cloud-partner"]
    following = request("cloud-partner", "in_progress", participants=[BRUNO])
    forms = {f.name: f for f in cc.forms_now(desk, following, LEA, ("team_lead",))}
    who = forms["mute"].field("participant_id")
    assert who is not None and [c.value for c in who.choices] == [ANNE, BRUNO]
    assert forms["mute"].path == "mute-notifications" and "unmute" not in forms
    muted = {**following, "muted": [BRUNO]}
    forms = {f.name: f for f in cc.forms_now(desk, muted, LEA, ("team_lead",))}
    unmute = forms["unmute"].field("participant_id")
    assert unmute is not None and [c.value for c in unmute.choices] == [BRUNO]
    mute = forms["mute"].field("participant_id")
    assert mute is not None and [c.value for c in mute.choices] == [ANNE]


def test_a_close_awaiting_confirmation_may_cite_the_requesters_comment() -> None:
    history = [
        {"type": "CommentAdded", "version": 9, "occurred_at": "2026-03-01T10:00:00+00:00",
         "data": {"actor_id": "anne@acme.example", "actor_role": "requester", "public": True,
                  "body": "Ça marche, merci"}},
        {"type": "CommentAdded", "version": 8, "occurred_at": "2026-03-01T09:30:00+00:00",
         "data": {"actor_id": LEA, "actor_role": "team_lead", "public": True, "body": "Voilà"}},
        {"type": "TicketResolved", "version": 7, "occurred_at": "2026-03-01T09:00:00+00:00",
         "data": {}},
        {"type": "CommentAdded", "version": 6, "occurred_at": "2026-03-01T08:00:00+00:00",
         "data": {"actor_id": "anne@acme.example", "actor_role": "requester", "public": True,
                  "body": "Avant"}},
    ]  # fmt: skip
    resolved = request("erp-vendor", "resolved", history=history, resolution_code="handled")
    forms = cc.forms_now(DESKS["erp-vendor"], resolved, LEA, ("team_lead",), STAFF, NOW)
    close = next(f for f in forms if f.name == "close")
    cited = close.field("confirmation_version")
    assert cited is not None and [c.value for c in cited.choices] == ["9"]
    code = close.field("resolution_code")
    assert code is not None and code.value == "handled" and not code.required
    checked = cc.check(close, {"confirmation_version": "9"}, DESKS["erp-vendor"], resolved, "UTC")
    assert checked.body == {"confirmation_version": 9} and checked.errors == {}


def form_of(desk: str, status: str, name: str) -> tuple[cc.CommandForm, dict[str, Any]]:
    shown = request(desk, status)
    forms = cc.forms_now(DESKS[desk], shown, LEA, support_roles(desk), STAFF, NOW)
    return next(f for f in forms if f.name == name), shown


def test_lowering_the_priority_needs_a_reason() -> None:
    form, shown = form_of("erp-vendor", "in_progress", "change_priority")
    desk = DESKS["erp-vendor"]
    refused = cc.check(form, {"priority": "low", "reason": "  "}, desk, shown, "UTC")
    assert refused.errors == {"reason": "agent.error.reason_lowering"} and refused.body == {}
    done = cc.check(form, {"priority": "low", "reason": "Contourné"}, desk, shown, "UTC")
    assert done.body == {"priority": "low", "reason": "Contourné"}
    raised = cc.check(form, {"priority": "high"}, desk, shown, "UTC")
    assert raised.body == {"priority": "high"} and raised.errors == {}
    unknown = cc.check(form, {"priority": "urgent"}, desk, shown, "UTC")
    assert unknown.errors == {"priority": "agent.error.choice"}


def test_a_scheduled_instant_is_read_in_the_agents_time_zone() -> None:
    form, shown = form_of("cloud-partner", "in_progress", "schedule_operation")
    desk = DESKS["cloud-partner"]
    typed = {"scheduled_for": "2026-03-10T20:00", "responsible": "Léa", "comment": ""}
    checked = cc.check(form, typed, desk, shown, "Europe/Paris")
    assert checked.body == {"scheduled_for": "2026-03-10T20:00:00+01:00", "responsible": "Léa"}
    for bad in ("2026-13-10T20:00", "demain", "\uff12\uff1026-03-10T20:00", "2026-03-10 20:00"):
        wrong = cc.check(form, {**typed, "scheduled_for": bad}, desk, shown, "Europe/Paris")
        assert wrong.errors == {"scheduled_for": "agent.error.datetime"}, bad
        assert wrong.typed["scheduled_for"] == bad  # kept for the form again
    assert cc.local_instant("2026-07-01T08:30:15", "Nowhere/Else") == datetime(
        2026, 7, 1, 8, 30, 15, tzinfo=UTC
    )


def test_texts_are_bounded_and_refuse_control_characters() -> None:
    form, shown = form_of("erp-vendor", "in_progress", "request_information")
    desk = DESKS["erp-vendor"]
    assert cc.check(form, {"comment": ""}, desk, shown, "UTC").errors == {
        "comment": "agent.error.required"
    }
    long = cc.check(form, {"comment": "x" * 5001}, desk, shown, "UTC")
    assert long.errors == {"comment": "agent.error.too_long"}
    for bad in ("nul\x00", "bell\x07", "lone \ud800"):
        assert cc.check(form, {"comment": bad}, desk, shown, "UTC").errors == {
            "comment": "agent.error.text"
        }
    fine = cc.check(form, {"comment": "  Quelle version ?\n\tMerci  "}, desk, shown, "UTC")
    assert fine.body == {"comment": "Quelle version ?\n\tMerci"}
    note, _ = form_of("erp-vendor", "in_progress", "note")
    body = cc.check(note, {"body": "y" * 100_000}, desk, shown, "UTC")
    assert body.errors == {} and body.body["public"] is False
    assert cc.check(note, {"body": "y" * 100_001}, desk, shown, "UTC").errors


def test_people_and_keys_are_checked() -> None:
    desk = DESKS["erp-vendor"]
    add, shown = form_of("erp-vendor", "in_progress", "add_participant")
    assert cc.check(add, {"participant_id": "Bruno@ACME.example "}, desk, shown, "UTC").body == {
        "participant_id": "bruno@acme.example"
    }
    bad = cc.check(add, {"participant_id": "Bruno <bruno@acme.example>"}, desk, shown, "UTC")
    assert bad.errors == {"participant_id": "agent.error.address"}
    link, _ = form_of("erp-vendor", "in_progress", "link_request")
    assert cc.check(link, {"linked_key": "spt-12"}, desk, shown, "UTC").body == {
        "linked_key": "SPT-12"
    }
    assert cc.check(link, {"linked_key": "SPT-\uff11\uff12"}, desk, shown, "UTC").errors == {
        "linked_key": "agent.error.key"
    }
    assign, _ = form_of("erp-vendor", "in_progress", "assign")
    assert cc.check(assign, {}, desk, shown, "UTC").errors == {
        "assignee_id": "agent.error.assign_whom"
    }
    assert cc.check(assign, {"assignee_id": "eve@evil.example"}, desk, shown, "UTC").errors == {
        "assignee_id": "agent.error.choice"
    }
    assert cc.check(assign, {"group_id": "Finances"}, desk, shown, "UTC").body == {
        "group_id": "Finances"
    }
    line = cc.check(assign, {"group_id": "two\nlines"}, desk, shown, "UTC")
    assert line.errors == {"group_id": "agent.error.text"}


def test_the_changes_since_a_version_are_the_newer_entries() -> None:
    shown = request("erp-vendor", "in_progress")
    shown["history"] = [{"version": v, "type": "CommentAdded"} for v in (7, 6, 5, 4)]
    assert [e["version"] for e in cc.changes_since(shown, 5)] == [7, 6]
    assert cc.changes_since(shown, 7) == []


def test_the_forms_ids_are_valid_names() -> None:
    for name in cc.NAMES:
        assert re.fullmatch(r"[a-z_]+", name)
