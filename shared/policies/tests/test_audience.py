"""What each audience sees of a request: every registered event type, for each audience, filled
in with every field; a type missing from the table below fails the test."""

from __future__ import annotations

import importlib
import json
import types
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from desk_contracts.base import EVENT_MODULES, EVENT_TYPES, Event
from desk_contracts.identity import Identity
from desk_policies.audience import (
    COMMON,
    CUSTOMERS_SEE,
    PEOPLE,
    SUPPORT_NAME,
    Audience,
    NotYourRole,
    acting_role,
    entry_seen_by,
    leads,
    may_read,
    reader_audience,
    reader_desks,
    request_reader,
    request_seen_by,
    role_seen_by,
)
from desk_policies.loader import load_policies

for module in EVENT_MODULES:
    importlib.import_module(module)

POLICIES = load_policies()
CLOUD = POLICIES["cloud-partner"]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAUL, ANNE = "paul@desk.example", "anne@acme.example"

# event type -> does a customer see it (in part)? One row per registered type.
SHOWN_TO_CUSTOMERS = {
    "TicketCreated": True,
    "PriorityChanged": True,
    "TicketQualified": True,
    "TicketAssigned": True,
    "WorkStarted": True,
    "InformationRequested": True,
    "WaitingForThirdParty": True,
    "OperationScheduled": True,
    "TicketEscalated": True,
    "EscalationReturned": True,
    "TicketResolved": True,
    "ResolutionConfirmed": True,
    "ResolutionDisputed": True,
    "TicketClosed": True,
    "TicketReopened": True,
    "RequesterAnswered": True,
    "CommentAdded": True,  # a public one (an internal one: below)
    "RequesterEscalated": True,
    "TicketLinked": True,
    "ParticipantAdded": True,
    "NotificationsMuted": True,
    "NotificationsUnmuted": True,
    "ReminderSent": True,
    "SurveyAnswered": True,
    "NotificationFailed": False,
    "SlaWarningReached": False,
    "SlaBreached": False,
    "ReminderDue": False,
    "AutoCloseDue": False,
    "CommentReceived": False,
    "SurveySubmitted": False,
    "DeliveryFailed": False,
    "AutomaticReplyRequested": False,
}


def _value(name: str, annotation: Any) -> Any:
    """A valid value of the field, distinct per field name for strings."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return _value(name, next(a for a in args if a is not type(None)))
    if origin is Literal:
        return args[0]
    if origin is tuple:
        return (_value(name, args[0]),)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {f: _value(f, i.annotation) for f, i in annotation.model_fields.items()}
    simple: dict[Any, Any] = {str: f"<{name}>", bool: True, int: 7, datetime: NOW.isoformat()}
    return simple[annotation]


def stored(event_type: str, actor: str = PAUL, role: str = "agent") -> dict[str, Any]:
    """A payload of `event_type` as stored, every field filled; its people are `actor`."""
    cls = EVENT_TYPES[event_type]
    values = {name: _value(name, info.annotation) for name, info in cls.model_fields.items()}
    for person, person_role in PEOPLE:
        if person in values:
            values[person], values[person_role] = actor, role
    event = cls.model_validate(values)  # the sample is a valid event
    return event.model_dump(mode="json")


def test_every_registered_event_type_is_in_the_tables() -> None:
    registered = set(EVENT_TYPES)
    assert set(SHOWN_TO_CUSTOMERS) == registered, registered ^ set(SHOWN_TO_CUSTOMERS)
    decided = {cls.event_type for cls in CUSTOMERS_SEE}
    assert decided == registered, f"decide what customers see of {registered - decided}"


@pytest.mark.parametrize("cls", list(CUSTOMERS_SEE), ids=lambda cls: cls.event_type)
def test_every_field_of_a_type_customers_see_is_decided(cls: type[Event]) -> None:
    rule = CUSTOMERS_SEE[cls]
    if rule is None:
        return
    people = {name for pair in PEOPLE for name in pair}
    fields = set(cls.model_fields)
    assert not set(rule.shown) & set(rule.internal)
    assert set(rule.shown) | set(rule.internal) == fields - set(COMMON) - people, cls


@pytest.mark.parametrize("audience", list(Audience))
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_each_audience_sees_what_the_table_says_of_every_event_type(
    event_type: str, audience: Audience
) -> None:
    data = stored(event_type)
    seen = entry_seen_by(audience, CLOUD, event_type, data)
    if audience is Audience.SUPPORT:
        assert seen == data
        return
    if not SHOWN_TO_CUSTOMERS[event_type]:
        assert seen is None
        return
    assert seen is not None
    rule = CUSTOMERS_SEE[EVENT_TYPES[event_type]]
    assert rule is not None
    shown = json.dumps(seen)
    for field in rule.internal:
        assert field not in seen and f"<{field}>" not in shown, field
    for field in rule.shown:
        assert seen[field] == data[field], field
    assert PAUL not in shown and '"agent"' not in shown  # nor the agent, nor their role
    for person, role in PEOPLE:
        if person in data:
            assert seen[person] == seen[role] == SUPPORT_NAME


@pytest.mark.parametrize("event_type", [t for t, shown in SHOWN_TO_CUSTOMERS.items() if shown])
def test_a_customer_sees_who_on_the_customer_side_did_it(event_type: str) -> None:
    data = stored(event_type, ANNE, "requester")
    seen = entry_seen_by(Audience.CUSTOMER, CLOUD, event_type, data)
    assert seen is not None
    for person, role in PEOPLE:
        if person in data:
            assert (seen[person], seen[role]) == (ANNE, "requester")


def test_an_internal_comment_is_hidden_from_customers_whoever_wrote_it() -> None:
    for actor, role in ((PAUL, "agent"), (ANNE, "requester")):
        note = {**stored("CommentAdded", actor, role), "public": False, "body": "between us"}
        assert entry_seen_by(Audience.CUSTOMER, CLOUD, "CommentAdded", note) is None
        assert entry_seen_by(Audience.SUPPORT, CLOUD, "CommentAdded", note) == note
    unsure = {k: v for k, v in stored("CommentAdded").items() if k != "public"}
    assert entry_seen_by(Audience.CUSTOMER, CLOUD, "CommentAdded", unsure) is None


def test_unknown_types_and_roles_are_hidden_from_customers() -> None:
    data = {"occurred_at": NOW.isoformat(), "secret": "x"}
    assert entry_seen_by(Audience.CUSTOMER, CLOUD, "SomethingNew", data) is None
    assert entry_seen_by(Audience.SUPPORT, CLOUD, "SomethingNew", data) == data
    odd = {**stored("WorkStarted"), "actor_role": "wizard", "actor_id": "w@x.example"}
    started = entry_seen_by(Audience.CUSTOMER, CLOUD, "WorkStarted", odd)
    assert started is not None and started["actor_id"] == started["actor_role"] == SUPPORT_NAME
    no_role = {k: v for k, v in stored("WorkStarted").items() if k != "actor_role"}
    started = entry_seen_by(Audience.CUSTOMER, CLOUD, "WorkStarted", no_role)
    assert started is not None and started["actor_id"] == SUPPORT_NAME


def test_a_licence_request_made_by_sales_administration_names_the_support_side() -> None:
    erp = POLICIES["erp-vendor"]
    created = {**stored("TicketCreated"), "created_by": "sales@desk.example"}
    created["created_by_role"] = "sales_admin"
    seen = entry_seen_by(Audience.CUSTOMER, erp, "TicketCreated", created)
    assert seen is not None
    assert (seen["created_by"], seen["created_by_role"]) == (SUPPORT_NAME, SUPPORT_NAME)
    assert seen["requester_id"] == created["requester_id"]


@pytest.mark.parametrize(
    ("desk", "role", "audience"),
    [
        ("cloud-partner", "requester", Audience.CUSTOMER),
        ("cloud-partner", "participant", Audience.CUSTOMER),
        ("cloud-partner", "agent", Audience.SUPPORT),
        ("erp-vendor", "rnd", Audience.SUPPORT),
        ("cloud-partner", "third_party", None),
        ("cloud-partner", "system", None),
        ("cloud-partner", "rnd", None),  # a role of another desk
        ("saas-desk", "wizard", None),
    ],
)
def test_who_reads_as_which_audience(desk: str, role: str, audience: Audience | None) -> None:
    assert reader_audience(POLICIES[desk], role) is audience


def test_a_customer_reads_a_request_without_its_internal_fields() -> None:
    erp = POLICIES["erp-vendor"]
    row = {"key": "SPT-1", "assignee_id": PAUL, "expected_actor": "product_expert", "new": 1}
    assert request_seen_by(Audience.SUPPORT, erp, row) == row
    assert request_seen_by(Audience.CUSTOMER, erp, row) == {
        "key": "SPT-1",
        "expected_actor": SUPPORT_NAME,
    }
    assert role_seen_by(Audience.CUSTOMER, erp, "requester") == "requester"
    assert role_seen_by(Audience.CUSTOMER, erp, None) is None  # closed: nobody is expected


def test_an_assignment_tells_customers_the_status_not_the_assignee_nor_the_group() -> None:
    assigned = {**stored("TicketAssigned"), "assignee_id": PAUL, "group_id": "level2"}
    seen = entry_seen_by(Audience.CUSTOMER, CLOUD, "TicketAssigned", assigned)
    assert seen is not None and seen["to_status"] == assigned["to_status"]
    assert PAUL not in json.dumps(seen) and "level2" not in json.dumps(seen)


def test_the_support_side_reads_every_request_a_customer_their_organisations_only() -> None:
    assert may_read(Audience.SUPPORT, None, "acme")
    assert may_read(Audience.CUSTOMER, "acme", "acme")
    assert not may_read(Audience.CUSTOMER, "globex", "acme")
    assert not may_read(Audience.CUSTOMER, None, None)  # a customer names their organisation


LEA = Identity("lea@desk.example", roles={"cloud-partner": ("team_lead", "agent")})
CUSTOMER = Identity(ANNE, organisation="acme")
ALL = ("cloud-partner", "erp-vendor", "saas-desk")


def test_a_verified_caller_reads_the_desks_their_roles_read_and_chooses_among_them() -> None:
    assert reader_desks(LEA, POLICIES.values()) == {"cloud-partner": Audience.SUPPORT}
    assert reader_desks(LEA, POLICIES.values(), "agent") == {"cloud-partner": Audience.SUPPORT}
    assert reader_desks(CUSTOMER, POLICIES.values()) == dict.fromkeys(ALL, Audience.CUSTOMER)
    assert reader_desks(CUSTOMER, POLICIES.values(), "participant") == dict.fromkeys(
        ALL, Audience.CUSTOMER
    )
    both = Identity(ANNE, organisation="acme", roles={"saas-desk": ("agent",)})
    assert reader_desks(both, POLICIES.values())["saas-desk"] is Audience.SUPPORT
    assert reader_desks(both, POLICIES.values(), "requester")["saas-desk"] is Audience.CUSTOMER


@pytest.mark.parametrize(
    ("who", "requested", "why"),
    [
        (LEA, "offer_manager", "you do not hold the role 'offer_manager' at any desk"),
        (LEA, "requester", "you do not hold the role 'requester'"),  # staff are no customers
        (CUSTOMER, "agent", "you do not hold the role 'agent'"),
        (Identity("x@desk.example"), None, "you hold no role that reads requests"),
        (Identity("y@desk.example", roles={"cloud-partner": ("third_party",)}), None, "no role"),
        (
            Identity("service:timers", organisation="acme", roles={"saas-desk": ("system",)}),
            "system",
            "the role 'system' reads no desk's requests",
        ),
    ],
)
def test_who_reads_nothing_is_told_before_any_request_is_looked_up(
    who: Identity, requested: str | None, why: str
) -> None:
    with pytest.raises(NotYourRole, match=why):
        reader_desks(who, POLICIES.values(), requested)


def test_a_request_is_read_by_its_desk_s_support_side_and_its_organisation_s_customers() -> None:
    desks = reader_desks(CUSTOMER, POLICIES.values())
    assert request_reader(CUSTOMER, desks, "cloud-partner", "acme") is Audience.CUSTOMER
    assert request_reader(CUSTOMER, desks, "cloud-partner", "globex") is None
    lea = reader_desks(LEA, POLICIES.values())
    assert request_reader(LEA, lea, "cloud-partner", "globex") is Audience.SUPPORT
    assert request_reader(LEA, lea, "erp-vendor", "acme") is None  # not her desk


def test_the_acting_role_is_the_one_chosen_or_the_first_granted() -> None:
    assert acting_role(LEA, CLOUD) == "team_lead"
    assert acting_role(LEA, CLOUD, "agent") == "agent"
    assert acting_role(CUSTOMER, CLOUD) == "requester"
    with pytest.raises(NotYourRole):
        acting_role(LEA, POLICIES["erp-vendor"])


def test_who_leads_a_desk_holds_a_role_its_policy_marks_administers() -> None:
    assert leads(LEA, CLOUD)
    assert leads(LEA, CLOUD, "team_lead")
    assert not leads(LEA, CLOUD, "agent")  # the role chosen does not administer
    assert not leads(LEA, CLOUD, "offer_manager")  # nor may one choose a role not held
    assert not leads(LEA, POLICIES["erp-vendor"])  # no role there
    assert not leads(CUSTOMER, CLOUD)
