"""DOMAIN §7 (and the reminders and automatic closing of §5), one row per sentence, per desk.

Each row is an event on a request of the demonstration directory's people: Anne (requester,
French), Bruno (participant, French), Carla (participant, English); the support staff hold the
desk roles (Paul agent / service desk, Léa team lead, Max manager). The request is as workflow
publishes it with the event (the one fold of its opening by e-mail, assigned to Paul, what came
`before` and the event). The expected value is who is told, with the template and the language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from published import published_states

from desk_contracts.base import Event
from desk_contracts.sla import SlaBreached, SlaWarningReached
from desk_contracts.state import RequestState
from desk_contracts.tickets import (
    ActedEvent,
    Channel,
    CommentAdded,
    InformationRequested,
    NotificationFailed,
    NotificationsMuted,
    NotificationsUnmuted,
    OperationScheduled,
    ParticipantAdded,
    PriorityChanged,
    ReminderSent,
    RequesterEscalated,
    ResolutionConfirmed,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketReopened,
    TicketResolved,
    WaitingForThirdParty,
    WorkStarted,
)
from desk_policies.audience import Audience
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from desk_policies.model import DeskPolicy, NotificationRule
from notifier.adapters.templates import Templates
from notifier.domain.content import how_to_answer, notification_context
from notifier.domain.rules import Notification, notifications_for, unstaffed_roles

POLICIES = load_policies()
DIRECTORY = load_directory()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ANNE, BRUNO, CARLA = "anne@acme.example", "bruno@acme.example", "carla@globex.example"
PAUL, LEA, MAX = "paul@desk.example", "lea@desk.example", "max@desk.example"
STRANGER = "zoe@acme.example"  # not in the directory: the request's language

KEYS = {"cloud-partner": "SUP-1042", "erp-vendor": "SPT-1042", "saas-desk": "PRB-1042"}
BASE: dict[str, Any] = {"ticket_id": "t-1", "occurred_at": NOW}
TEAM = {"actor_id": PAUL, "actor_role": "agent"}
SYSTEM = {"actor_id": "system", "actor_role": "system"}
BRUNO_HIMSELF = {"actor_id": BRUNO, "actor_role": "participant", "participant_id": BRUNO}


def created(
    channel: Channel,
    creator: str = ANNE,
    role: str = "requester",
    policy: str = "cloud-partner",
    **changes: Any,
) -> TicketCreated:
    """Anne's request "Jira is slow" at `policy`, with Bruno as participant (`changes` apart)."""
    fields: dict[str, Any] = {
        "key": KEYS[policy],
        "policy_id": policy,
        "request_type": "support",
        "priority": "high",
        "subject": "Jira is slow",
        "description": "Since the upgrade",
        "organisation_id": "acme",
        "requester_id": ANNE,
        "created_by": creator,
        "created_by_role": role,
        "channel": channel,
        "participants": (BRUNO,),
    }
    return TicketCreated(**BASE, **(fields | changes))


def opened(policy: str, **changes: Any) -> tuple[Event, ...]:
    """The request created by e-mail, then assigned to Paul (its status unchanged)."""
    initial = POLICIES[policy].initial_status
    assigned = TicketAssigned(
        **BASE, **TEAM, from_status=initial, to_status=initial, assignee_id=PAUL
    )
    return created(Channel.EMAIL, policy=policy, **changes), assigned


def state_after(history: Sequence[Event]) -> RequestState:
    """The request as workflow publishes it with the last of `history` (the one fold)."""
    opening = history[0]
    assert isinstance(opening, TicketCreated)
    return published_states(history, POLICIES[opening.policy_id])[-1]


def moved(cls: type[Event], frm: str, to: str, **extra: Any) -> Event:
    actor = extra.pop("actor", TEAM)
    return cls(**BASE, **actor, from_status=frm, to_status=to, **extra)


@dataclass(frozen=True)
class Row:
    sentence: str
    event: Event
    told: dict[str, str]  # recipient -> template
    policy_id: str = "cloud-partner"
    before: tuple[Event, ...] = ()  # what happened between the opening and `event`

    @property
    def policy(self) -> DeskPolicy:
        return POLICIES[self.policy_id]

    @property
    def ticket(self) -> RequestState:
        """The request as published with `event`: its state after it."""
        if isinstance(self.event, TicketCreated):
            return state_after([self.event])
        return state_after([*opened(self.policy_id), *self.before, self.event])


CUSTOMERS = {ANNE: "{}", BRUNO: "{}"}
BREACH_AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
TIMER: dict[str, Any] = {"armed_version": 2, "priority": "high"}
WARNING = SlaWarningReached(**BASE, **TIMER, due_at=NOW, clock="response", breach_at=BREACH_AT)
BREACH = SlaBreached(**BASE, **TIMER, due_at=BREACH_AT, clock="resolution")


def sla_rows(policy: str, leads: tuple[str, ...], unassigned: Event) -> list[Row]:
    """SLA warnings and breaches at `policy`: the assignee is told, else its `leads` (once
    `unassigned` left the request to a group only); never a customer."""
    return [
        Row("SLA: a coming breach is told to the assignee", WARNING,
            {PAUL: "SlaWarningReached"}, policy),
        Row("SLA: a passed breach is told to the assignee", BREACH, {PAUL: "SlaBreached"}, policy),
        Row("SLA: a coming breach of a request nobody holds goes to the leads", WARNING,
            {lead: "SlaWarningReached" for lead in leads}, policy, before=(unassigned,)),
        Row("SLA: a passed breach of a request nobody holds goes to the leads", BREACH,
            {lead: "SlaBreached" for lead in leads}, policy, before=(unassigned,)),
    ]  # fmt: skip


def to_group(status: str, role: str = "agent") -> Event:
    """The request handed to a group: nobody holds it any more."""
    actor = {"actor_id": PAUL, "actor_role": role}
    return moved(TicketAssigned, status, status, group_id="level2", actor=actor)


def customers(template: str, *people: str) -> dict[str, str]:
    return {p: template for p in (people or (ANNE, BRUNO))}


CLOUD_PARTNER = [
    Row(
        "creation by e-mail: the requester and participants are told",
        created(Channel.EMAIL),
        customers("TicketCreated"),
    ),
    Row(
        "not when created in the portal: its creator saw it there (participants are told)",
        created(Channel.PORTAL),
        customers("TicketCreated", BRUNO),
    ),
    Row(
        "created in the portal by an agent on the requester's behalf: the requester is told",
        created(Channel.PORTAL, PAUL, "agent"),
        customers("TicketCreated"),
    ),
    Row(
        "when work starts", moved(WorkStarted, "submitted", "in_progress"), customers("WorkStarted")
    ),
    Row(
        "when the request waits for them",
        moved(InformationRequested, "in_progress", "waiting_customer", comment="Logs?"),
        customers("InformationRequested"),
    ),
    Row(
        "when it waits for a third party",
        moved(WaitingForThirdParty, "in_progress", "waiting_third_party", party="atlassian"),
        customers("WaitingForThirdParty"),
    ),
    Row(
        "when it waits for a scheduled operation",
        moved(
            OperationScheduled,
            "in_progress",
            "scheduled_operation",
            scheduled_for=NOW,
            responsible="hosting",
        ),
        customers("OperationScheduled"),
    ),
    Row(
        "on every public comment by the team",
        CommentAdded(**BASE, **TEAM, body="Try this", public=True),
        customers("CommentAdded"),
    ),
    Row(
        "not on an internal comment",
        CommentAdded(**BASE, **TEAM, body="between us", public=False),
        {},
    ),
    Row(
        "not on the requester's own comment",
        CommentAdded(**BASE, actor_id=ANNE, actor_role="requester", body="Thanks", public=True),
        {},
    ),
    Row(
        "on closing",
        moved(TicketClosed, "resolved", "closed", resolution_code="done"),
        customers("TicketClosed"),
    ),
    Row(
        "participants who muted the request are not told",
        moved(WorkStarted, "submitted", "in_progress"),
        customers("WorkStarted", ANNE),
        before=(NotificationsMuted(**BASE, **BRUNO_HIMSELF),),
    ),
    Row(
        "a participant added later is told of what follows",
        moved(WorkStarted, "submitted", "in_progress"),
        {ANNE: "WorkStarted", BRUNO: "WorkStarted", CARLA: "WorkStarted"},
        before=(ParticipantAdded(**BASE, **TEAM, participant_id=CARLA),),
    ),
    Row(
        "the support team is told when a requester reopens",
        moved(
            TicketReopened,
            "closed",
            "in_progress",
            actor={"actor_id": ANNE, "actor_role": "requester"},
        ),
        {PAUL: "TicketReopened"},
    ),
    Row(
        "not when the team reopens itself",
        moved(
            TicketReopened,
            "closed",
            "in_progress",
            actor={"actor_id": LEA, "actor_role": "team_lead"},
        ),
        {},
    ),
    Row(
        "team lead and manager when a requester escalates",
        RequesterEscalated(**BASE, actor_id=ANNE, actor_role="requester", reason="urgent"),
        {LEA: "RequesterEscalated", MAX: "RequesterEscalated"},
    ),
    Row(
        "§5: an automatic comment after 3 and 6 days waiting",
        ReminderSent(**BASE, **SYSTEM, days_waiting=3, armed_version=4),
        customers("ReminderSent"),
    ),
    Row(
        "§5: closed automatically after 12 days",
        moved(
            TicketClosed,
            "waiting_customer",
            "closed",
            actor=SYSTEM,
            automatic=True,
            resolution_code="no_answer",
        ),
        customers("TicketClosed"),
    ),
    Row(
        "a lowered priority is explained to the requester",
        PriorityChanged(
            **BASE,
            **TEAM,
            from_priority="high",
            to_priority="low",
            reason="worked around",
            requester_must_be_informed=True,
        ),
        {ANNE: "PriorityChanged"},
    ),
    *sla_rows("cloud-partner", (LEA,), to_group("submitted")),
]

ERP_VENDOR = [
    Row(
        "creation by e-mail: the requester is told",
        created(Channel.EMAIL, policy="erp-vendor"),
        customers("TicketCreated"),
        "erp-vendor",
    ),
    Row(
        "not its creator when created in the portal",
        created(Channel.PORTAL, policy="erp-vendor"),
        customers("TicketCreated", BRUNO),
        "erp-vendor",
    ),
    Row(
        "when work starts",
        moved(
            WorkStarted,
            "qualified",
            "in_progress",
            actor={"actor_id": PAUL, "actor_role": "service_desk"},
        ),
        customers("WorkStarted"),
        "erp-vendor",
    ),
    Row(
        "when it waits for them",
        moved(
            InformationRequested,
            "in_progress",
            "waiting_customer",
            comment="Which company?",
            actor={"actor_id": PAUL, "actor_role": "service_desk"},
        ),
        customers("InformationRequested"),
        "erp-vendor",
    ),
    Row(
        "handled: the requester is asked to confirm the resolution",
        moved(
            TicketResolved,
            "in_progress",
            "resolved",
            resolution_code="handled",
            comment="Done",
            actor={"actor_id": PAUL, "actor_role": "service_desk"},
        ),
        customers("confirm_resolution"),
        "erp-vendor",
    ),
    Row(
        "public comment by the team; its author is not told even when following the request",
        CommentAdded(**BASE, actor_id=PAUL, actor_role="service_desk", body="See KB", public=True),
        customers("CommentAdded"),
        "erp-vendor",
        before=(ParticipantAdded(**BASE, **TEAM, participant_id=PAUL),),
    ),
    Row(
        "a requester's comment goes to the assignee",
        CommentAdded(**BASE, actor_id=ANNE, actor_role="requester", body="Any news?", public=True),
        {PAUL: "CommentAdded"},
        "erp-vendor",
    ),
    Row(
        "not to the former assignee once the request went to a group only",
        CommentAdded(**BASE, actor_id=ANNE, actor_role="requester", body="Any news?", public=True),
        {},
        "erp-vendor",
        before=(moved(TicketAssigned, "in_progress", "in_progress", group_id="level2"),),
    ),
    Row(
        "§5: reminders after 10 and 15 days",
        ReminderSent(**BASE, **SYSTEM, days_waiting=10, armed_version=5),
        customers("ReminderSent"),
        "erp-vendor",
    ),
    Row(
        "§5: closed automatically after 20 days",
        moved(
            TicketClosed,
            "waiting_customer",
            "closed",
            actor=SYSTEM,
            automatic=True,
            resolution_code="no_answer",
        ),
        customers("TicketClosed"),
        "erp-vendor",
    ),
    *sla_rows("erp-vendor", (LEA,), to_group("open", "front_desk")),
]

SAAS_DESK = [
    Row(
        "on receipt, whatever the channel (portal too)",
        created(Channel.PORTAL, policy="saas-desk"),
        customers("TicketCreated"),
        "saas-desk",
    ),
    Row(
        "on assignment to an agent",
        moved(
            TicketAssigned,
            "open",
            "assigned",
            assignee_id=PAUL,
            actor={"actor_id": LEA, "actor_role": "supervisor"},
        ),
        customers("TicketAssigned"),
        "saas-desk",
    ),
    Row(
        "not on an assignment to a group only",
        moved(
            TicketAssigned,
            "open",
            "open",
            group_id="level1",
            actor={"actor_id": LEA, "actor_role": "supervisor"},
        ),
        {},
        "saas-desk",
    ),
    Row(
        "on the team's reply",
        CommentAdded(**BASE, **TEAM, body="Fixed", public=True),
        customers("CommentAdded"),
        "saas-desk",
    ),
    Row(
        "on closing, with the satisfaction survey invitation",
        moved(TicketClosed, "answered", "closed", resolution_code="fixed"),
        customers("closed_with_survey"),
        "saas-desk",
    ),
    Row(
        "the requester's confirmation closes it: the survey to them too, who confirmed",
        moved(
            ResolutionConfirmed, "answered", "closed",
            actor={"actor_id": ANNE, "actor_role": "requester"},
        ),
        customers("closed_with_survey"),
        "saas-desk",
    ),
    *sla_rows("saas-desk", (LEA,), to_group("open", "supervisor")),
]  # fmt: skip


def _run(row: Row) -> dict[str, str]:
    told = notifications_for(row.event, row.ticket, row.policy, DIRECTORY)
    return {n.recipient: n.template for n in told}


@pytest.mark.parametrize("row", CLOUD_PARTNER, ids=lambda r: r.sentence)
def test_cloud_partner(row: Row) -> None:
    assert _run(row) == row.told


@pytest.mark.parametrize("row", ERP_VENDOR, ids=lambda r: r.sentence)
def test_erp_vendor(row: Row) -> None:
    assert _run(row) == row.told


@pytest.mark.parametrize("row", SAAS_DESK, ids=lambda r: r.sentence)
def test_saas_desk(row: Row) -> None:
    assert _run(row) == row.told


def told_of_work_started(**changes: Any) -> list[Notification]:
    """Who is told that work started on the request created with `changes`."""
    started = moved(WorkStarted, "submitted", "in_progress")
    ticket = state_after([*opened("cloud-partner", **changes), started])
    return notifications_for(started, ticket, POLICIES["cloud-partner"], DIRECTORY)


def test_each_in_their_language_from_the_directory_else_the_requests() -> None:
    told = told_of_work_started(participants=(CARLA, STRANGER), language="fr")
    assert {n.recipient: n.language for n in told} == {ANNE: "fr", CARLA: "en", STRANGER: "fr"}
    assert {n.audience for n in told} == {Audience.CUSTOMER}


def test_once_per_person_even_when_two_rules_name_them() -> None:
    told = told_of_work_started(participants=(BRUNO, ANNE))
    assert [n.recipient for n in told] == [ANNE, BRUNO]


def test_team_messages_are_for_the_team() -> None:
    event = RequesterEscalated(**BASE, actor_id=ANNE, actor_role="requester")
    ticket = state_after([*opened("cloud-partner"), event])
    told = notifications_for(event, ticket, POLICIES["cloud-partner"], DIRECTORY)
    assert {(n.recipient, n.language, n.audience) for n in told} == {
        (LEA, "fr", Audience.SUPPORT),
        (MAX, "en", Audience.SUPPORT),
    }


def test_an_internal_comment_reaches_no_customer_whatever_the_rules_say() -> None:
    """A desk whose rule forgets `public_only` (or names customers for a hidden event type)
    still tells only its support side."""
    policy = POLICIES["cloud-partner"]
    careless = NotificationRule(event="CommentAdded", recipients=("requester", "participants"))
    team = NotificationRule(event="CommentAdded", recipients=("team_lead",))
    failed = NotificationRule(event="NotificationFailed", recipients=("requester", "team_lead"))
    policy = policy.model_copy(update={"notifications": (careless, team, failed)})
    note = CommentAdded(**BASE, **TEAM, body="between us", public=False)
    ticket = state_after([*opened("cloud-partner"), note])
    told = notifications_for(note, ticket, policy, DIRECTORY)
    assert [(n.recipient, n.audience) for n in told] == [(LEA, Audience.SUPPORT)]
    public = notifications_for(note.model_copy(update={"public": True}), ticket, policy, DIRECTORY)
    assert [n.recipient for n in public] == [ANNE, BRUNO, LEA]
    bounce = NotificationFailed(
        **BASE, recipient=BRUNO, message_id="<m@x>", notified_event_id="e-1", error="550"
    )
    told = notifications_for(bounce, ticket, policy, DIRECTORY)
    assert [(n.recipient, n.audience) for n in told] == [(LEA, Audience.SUPPORT)]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_an_assignment_mail_names_the_assignee_to_the_support_side_only(language: str) -> None:
    policy = POLICIES["saas-desk"]
    event = moved(TicketAssigned, "open", "assigned", assignee_id=PAUL)
    saas = state_after([*opened("saas-desk", participants=()), event])
    (note,) = notifications_for(event, saas, policy, DIRECTORY)
    assert note.audience is Audience.CUSTOMER
    for audience, named in ((Audience.CUSTOMER, False), (Audience.SUPPORT, True)):
        told = replace(note, language=language, audience=audience)
        context = notification_context(told, event, saas, policy, DIRECTORY)
        words = Templates().render(told.template, language, context, saas.key)
        assert (PAUL in words.text) is named, words.text


def test_muted_from_the_event_that_mutes_until_the_one_that_unmutes() -> None:
    # the published state drops muted people; an unmuted one is simply no longer in `muted`
    muted = NotificationsMuted(**BASE, **BRUNO_HIMSELF)
    unmuted = NotificationsUnmuted(**BASE, **BRUNO_HIMSELF)
    comment = CommentAdded(**BASE, **TEAM, body="Try this", public=True)
    history = [*opened("cloud-partner"), muted, comment, unmuted, comment]
    states = published_states(history, POLICIES["cloud-partner"])
    told = [
        {n.recipient for n in notifications_for(event, state, POLICIES["cloud-partner"], DIRECTORY)}
        for event, state in zip(history[2:], states[2:], strict=True)
    ]
    assert told == [set(), {ANNE}, set(), {ANNE, BRUNO}]


def test_every_role_the_shipped_rules_name_is_held_by_someone() -> None:
    for policy in POLICIES.values():
        assert unstaffed_roles(policy, DIRECTORY) == [], policy.id


HOW_TO_ANSWER = {
    ("reply", "en"): "Reply to this e-mail",
    ("reply", "fr"): "Répondez à cet e-mail",
    ("portal", "en"): "please answer on the support portal",
    ("portal", "fr"): "merci de répondre sur le portail du support",
    ("team", "en"): "Open the request in the desk",
    ("team", "fr"): "Ouvrir la demande dans le portail",
}


@pytest.mark.parametrize("row", CLOUD_PARTNER + ERP_VENDOR + SAAS_DESK, ids=lambda r: r.sentence)
@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_notification_is_worded_with_the_key_and_says_how_to_answer(
    row: Row, language: str
) -> None:
    """Every notification is sent in the recipient's language and says how to answer."""
    templates = Templates()
    policy, event, ticket = row.policy, row.event, row.ticket
    for note in notifications_for(event, ticket, policy, DIRECTORY):
        note = replace(note, language=language)
        context = notification_context(note, event, ticket, policy, DIRECTORY, "https://x/s/t")
        words = templates.render(note.template, language, context, ticket.key)
        assert words.subject.startswith(f"[{ticket.key}] ")
        assert "\n" not in words.subject and "{" not in words.subject
        if note.audience is Audience.SUPPORT:
            answer = "team"
        else:
            answer = "reply" if policy.email_replies.accepted else "portal"
        assert HOW_TO_ANSWER[answer, language] in words.text
        assert f'<html lang="{language}">' in words.html
        if answer != "reply":
            assert str(policy.email_replies.portal_url) in words.text
        if note.template == "closed_with_survey":
            assert "https://x/s/t" in words.text and 'href="https://x/s/t"' in words.html


@pytest.mark.parametrize("row", CLOUD_PARTNER + ERP_VENDOR + SAAS_DESK, ids=lambda r: r.sentence)
def test_every_notification_is_worded_when_the_events_optional_fields_are_empty(row: Row) -> None:
    """E.g. a request closed without a resolution code: the phrase is left out, the mail goes."""
    policy, ticket = row.policy, row.ticket
    fields = type(row.event).model_fields
    empty = {n: None for n, f in fields.items() if not f.is_required() and f.default is None}
    event = row.event.model_copy(update=empty)
    for note in notifications_for(event, ticket, policy, DIRECTORY):
        for language in ("fr", "en"):
            context = notification_context(
                replace(note, language=language), event, ticket, policy, DIRECTORY, "https://x/s/t"
            )
            words = Templates().render(note.template, language, context, ticket.key)
            assert words.subject.startswith(f"[{ticket.key}] ")


def test_a_request_closed_without_a_resolution_code_is_announced() -> None:
    policy = POLICIES["saas-desk"]
    event = TicketClosed(
        **BASE, **TEAM, from_status="answered", to_status="closed", resolution_code=None
    )
    ticket = state_after([*opened("saas-desk"), event])
    notes = notifications_for(event, ticket, policy, DIRECTORY)
    assert notes
    for note in notes:
        context = notification_context(note, event, ticket, policy, DIRECTORY, "https://x/s/t")
        words = Templates().render(note.template, "en", context, ticket.key)
        assert "Your request was closed." in words.text


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_link_of_a_notification_opens_the_requests_page_on_the_portal(language: str) -> None:
    event = CommentAdded(**BASE, **TEAM, body="Done", public=True)
    for desk in ("cloud-partner", "saas-desk"):
        policy = POLICIES[desk]
        ticket = state_after([*opened(desk), event])
        for note in notifications_for(event, ticket, policy, DIRECTORY):
            if how_to_answer(policy, note.audience) == "reply":
                continue
            context = notification_context(
                replace(note, language=language), event, ticket, policy, DIRECTORY, None,
                "https://portal.desk.example/",
            )  # fmt: skip
            words = Templates().render(note.template, language, context, ticket.key)
            page = f"https://portal.desk.example/requests/{ticket.key}"
            assert page in words.text and f'href="{page}"' in words.html


def test_what_people_wrote_is_escaped_in_html_and_kept_in_text() -> None:
    event = CommentAdded(**BASE, **TEAM, body="Use <b>x</b> & y", public=True)
    policy = POLICIES["cloud-partner"]
    ticket = state_after([*opened("cloud-partner"), event])
    (note, *_) = notifications_for(event, ticket, policy, DIRECTORY)
    context = notification_context(note, event, ticket, policy, DIRECTORY)
    words = Templates().render(note.template, "en", context, ticket.key)
    assert "Use <b>x</b> & y" in words.text
    assert "Use &lt;b&gt;x&lt;/b&gt; &amp; y" in words.html


PEOPLE = [ANNE, BRUNO, CARLA, PAUL, LEA, MAX, STRANGER]


@given(
    row=st.sampled_from(CLOUD_PARTNER + ERP_VENDOR + SAAS_DESK),
    participants=st.lists(st.sampled_from(PEOPLE), max_size=4),
    muted=st.lists(st.sampled_from(PEOPLE), max_size=3),
    actor=st.sampled_from(PEOPLE),
)
def test_whoever_follows_a_request_nobody_is_told_twice_about_their_own_act_or_when_muted(
    row: Row, participants: list[str], muted: list[str], actor: str
) -> None:
    followers = {"participants": tuple(participants), "muted": tuple(muted)}
    ticket = row.ticket.model_copy(update=followers)
    event = row.event
    if isinstance(event, ActedEvent):
        event = event.model_copy(update={"actor_id": actor})
    told = notifications_for(event, ticket, row.policy, DIRECTORY)
    recipients = [n.recipient for n in told]
    assert len(recipients) == len(set(recipients))
    if isinstance(event, ActedEvent):  # unless a rule says so (the survey to who closed)
        to_actor = {r.template or r.event for r in row.policy.notifications if r.to_actor}
        assert all(n.template in to_actor for n in told if n.recipient == actor)
    assert not {n.recipient for n in told if n.audience is Audience.CUSTOMER} & set(muted)
    assert all(n.language in ("fr", "en") for n in told)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_request_filed_by_the_desk_names_the_desk_to_the_customer_not_a_staff_address(
    language: str,
) -> None:
    policy = POLICIES["erp-vendor"]
    sales = "sales@desk.example"
    opening = created(Channel.PORTAL, creator=sales, role="sales_admin", policy="erp-vendor")
    ticket = state_after([opening])
    told = {n.recipient: n for n in notifications_for(opening, ticket, policy, DIRECTORY)}
    note = replace(told[ANNE], language=language)
    context = notification_context(note, opening, ticket, policy, DIRECTORY)
    words = Templates().render(note.template, language, context, ticket.key)
    assert sales not in words.text and policy.name in words.text, words.text


SLA_WORDS = {
    ("SlaWarningReached", "fr"): (
        "[SUP-1042] Alerte SLA : délai de réponse (Haute) à échéance le 2026-03-02 15:00 CET : "
        "Jira is slow",
        "il sera dépassé le 2026-03-02 15:00 CET",
    ),
    ("SlaWarningReached", "en"): (
        "[SUP-1042] SLA warning: response time (High) ends 2026-03-02 15:00 CET: Jira is slow",
        "it will be breached on 2026-03-02 15:00 CET",
    ),
    ("SlaBreached", "fr"): (
        "[SUP-1042] SLA dépassé : délai de résolution (Haute) : Jira is slow",
        "est dépassé depuis le 2026-03-02 15:00 CET",
    ),
    ("SlaBreached", "en"): (
        "[SUP-1042] SLA breached: resolution time (High): Jira is slow",
        "was breached on 2026-03-02 15:00 CET",
    ),
}


@pytest.mark.parametrize(("event", "language"), [(e, lang) for e in (WARNING, BREACH)
                                                 for lang in ("fr", "en")])  # fmt: skip
def test_an_sla_mail_names_its_clock_priority_and_breach_time_in_the_recipients_zone(
    event: Event, language: str
) -> None:
    """Paul reads Paris time (the directory); the warning says when the clock breaches, the
    breach when it did, each for the support side (the desk's link, no reply by mail)."""
    policy = POLICIES["cloud-partner"]
    ticket = state_after([*opened("cloud-partner")])
    (note,) = notifications_for(event, ticket, policy, DIRECTORY)
    assert (note.recipient, note.audience) == (PAUL, Audience.SUPPORT)
    note = replace(note, language=language)
    context = notification_context(note, event, ticket, policy, DIRECTORY)
    words = Templates().render(note.template, language, context, ticket.key)
    subject, sentence = SLA_WORDS[event.event_type, language]
    assert words.subject == subject
    assert sentence in words.text and sentence in words.html
    assert HOW_TO_ANSWER["team", language] in words.text
    assert "Nobody is assigned" not in words.text
    assert "n'est attribuée à personne" not in words.text


def test_an_sla_mail_at_a_desk_zone_for_a_recipient_without_one() -> None:
    """Léa has no time zone of her own: the desk's (saas-desk: Toronto) is used."""
    policy = POLICIES["saas-desk"]
    ticket = state_after([*opened("saas-desk"), to_group("open", "supervisor")])
    (note,) = notifications_for(WARNING, ticket, policy, DIRECTORY)
    context = notification_context(replace(note, language="en"), WARNING, ticket, policy, DIRECTORY)
    words = Templates().render(note.template, "en", context, ticket.key)
    assert note.recipient == LEA
    assert "ends 2026-03-02 09:00 EST" in words.subject
    assert "Nobody is assigned to the request." in words.text


def test_no_customer_hears_of_an_sla_clock_whatever_the_rules_say() -> None:
    everyone = ("requester", "participants", "creator", "assignee")
    careless = tuple(
        NotificationRule(event=kind, recipients=everyone)
        for kind in ("SlaWarningReached", "SlaBreached")
    )
    policy = POLICIES["erp-vendor"].model_copy(update={"notifications": careless})
    ticket = state_after([*opened("erp-vendor")])
    for event in (WARNING, BREACH):
        told = notifications_for(event, ticket, policy, DIRECTORY)
        assert [(n.recipient, n.audience) for n in told] == [(PAUL, Audience.SUPPORT)]


def test_an_unassigned_only_rule_tells_nobody_while_someone_holds_the_request() -> None:
    policy = POLICIES["cloud-partner"]
    leads = NotificationRule(event="SlaBreached", recipients=("team_lead",), unassigned_only=True)
    policy = policy.model_copy(update={"notifications": (leads,)})
    held = state_after([*opened("cloud-partner")])
    left = state_after([*opened("cloud-partner"), to_group("submitted")])
    assert notifications_for(BREACH, held, policy, DIRECTORY) == []
    assert [n.recipient for n in notifications_for(BREACH, left, policy, DIRECTORY)] == [LEA]
