"""The shape of a desk policy: every rule that differs between desks, as validated data.

A policy is loaded once at start-up (see `desk_policies.loader`) and then only read. The
SLA calculator, the workflow decider and the notifier all read the same object.

Durations of SLA targets are **business minutes** (integers), counted on the policy's
calendar: on a 24/7 calendar a business minute is a wall-clock minute. Every delay in days
(reminders, automatic closing, the reopening window) is **calendar days** in the desk's time
zone, as the seed pages say "jours": one rule, `DeskPolicy.waited_until`, that the sla service
arms its timers with and workflow accepts their commands by.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from desk_contracts.inputs import Address
from desk_policies.actions import Action, Permission

ID = r"^[a-z0-9][a-z0-9_-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Labels(_Frozen):
    """A text in each language the product speaks (fr and en at least)."""

    fr: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return self.fr if language == "fr" else self.en


class Side(StrEnum):
    """Which side of the desk a role is on: the customer's, the support team's, or automation."""

    CUSTOMER = "customer"
    SUPPORT = "support"
    EXTERNAL = "external"  # e.g. a vendor or hosting company a request waits for
    SYSTEM = "system"


class Role(_Frozen):
    """A role an actor plays in this desk (e.g. `requester`, `front_desk`, `sales_admin`)."""

    id: str = Field(pattern=ID)
    labels: Labels
    side: Side
    # may administer the desk's people in the portal: invite, link to an organisation, grant
    # and revoke this desk's roles, deactivate (the desk's leads)
    administers: bool = False


class RequestType(_Frozen):
    """A kind of request (e.g. `SPT`): its key prefix, category, SLA binding and creators."""

    id: str = Field(pattern=ID)
    prefix: str = Field(pattern=r"^[A-Z][A-Z0-9]*$")
    category: str = Field(min_length=1)
    labels: Labels
    sla_bound: bool
    creators: tuple[str, ...] = Field(min_length=1)  # roles allowed to create it


class Priority(_Frozen):
    """A priority level; the policy lists them from the lowest to the highest."""

    id: str = Field(pattern=ID)
    labels: Labels
    meaning: Labels | None = None


class StatusCategory(StrEnum):
    OPEN = "open"
    WAITING = "waiting"
    CLOSED = "closed"


class Status(_Frozen):
    """A workflow status and what it means for the clocks.

    `pauses_sla`: both clocks pause while the ticket is here (waiting for customer/third party).
    `stops_response`: the first entry into such a status stops the response clock for good.
    `starts_resolution` / `stops_resolution`: entering it starts / stops the resolution clock.
    """

    id: str = Field(pattern=ID)
    labels: Labels
    expected_actor: str | None  # role expected to act next; None once closed
    category: StatusCategory
    pauses_sla: bool = False
    stops_response: bool = False
    starts_resolution: bool = False
    stops_resolution: bool = False


class Guard(StrEnum):
    """A condition on the ticket a transition needs beyond its status."""

    RESOLUTION_CONFIRMED = "resolution_confirmed"


class Transition(_Frozen):
    """Roles allowed to perform `action` from the `from` statuses; `to: null` keeps the status.

    For `escalate`, `to` is read from `escalations` (by the command's target) when null.
    """

    action: Action
    from_: tuple[str, ...] = Field(alias="from", min_length=1)
    to: str | None = None
    roles: tuple[str, ...] = Field(min_length=1)
    guard: Guard | None = None


class ReopenPolicy(_Frozen):
    """Whether a closed request may be reopened, by whom, to which status and for how long."""

    allowed: bool
    to_status: str | None = None
    roles: tuple[str, ...] = ()
    within_days: int | None = Field(default=None, ge=1)  # None: no time limit
    refusal: Labels | None = None  # shown when refused (e.g. "open a new request")


class EmailReplies(_Frozen):
    """Whether a reply by e-mail becomes a comment, or is refused with a pointer to the portal."""

    accepted: bool
    portal_url: str | None = None
    refusal: Labels | None = None


class EmailIntake(_Frozen):
    """Where customers write to this desk, and what a request opened by e-mail is.

    `support_address`: the address the e-mail gateway accepts new requests at (None: this desk
    takes no new requests by mail). `request_type` / `priority`: given to a request opened by
    mail (None: the desk's first type a requester may create / its lowest priority).
    """

    support_address: Address | None = None
    request_type: str | None = None
    priority: str | None = None


class ResolutionCode(_Frozen):
    id: str = Field(pattern=ID)
    labels: Labels


class Automations(_Frozen):
    """Reminders and auto-close of a request left waiting (calendar days since its last change)."""

    statuses: tuple[str, ...] = ()  # statuses watched (waiting for the customer)
    reminder_days: tuple[int, ...] = ()
    auto_close_days: int | None = Field(default=None, ge=1)
    auto_close_resolution: str | None = None  # resolution code given when none was set


class NotificationRule(_Frozen):
    """Who the notifier tells about an event (data only; the notifier interprets it).

    `event`: an event type name (e.g. `WorkStarted`, `CommentAdded`). Optional filters:
    `to_statuses` (status changes entering one of them), `actor_sides` (who caused it),
    `public_only` (comments), `skip_channels` (creation channels that do not notify the
    creator, e.g. `portal`). `recipients`: `requester`, `participants`, `assignee`,
    `creator`, or a role id (everyone in that role, e.g. `team_lead`). `only_if`: name of a
    boolean field of the event that must be true (e.g. `requester_must_be_informed`).
    `to_actor`: also tell the person who caused it (by default they are not told of their own
    act; a closing mail with its survey is for them too). `unassigned_only`: only while the
    request has no assignee (e.g. an SLA warning to the team leads when nobody holds the
    request; the rule naming `assignee` tells the person who does).
    """

    event: str = Field(min_length=1)
    recipients: tuple[str, ...] = Field(min_length=1)
    to_statuses: tuple[str, ...] = ()
    actor_sides: tuple[Side, ...] = ()
    public_only: bool = False
    skip_channels: tuple[str, ...] = ()
    only_if: str | None = None
    template: str | None = None
    to_actor: bool = False
    unassigned_only: bool = False


class SlaTarget(_Frozen):
    """Targets of one priority (of one request type), in business minutes on the policy's
    calendar."""

    response: int = Field(gt=0)
    resolution: int = Field(gt=0)

    @property
    def response_time(self) -> timedelta:
        return timedelta(minutes=self.response)

    @property
    def resolution_time(self) -> timedelta:
        return timedelta(minutes=self.resolution)


class SlaPolicy(_Frozen):
    """Which calendar the clocks count on, when to warn, and the targets.

    `targets`: the default, per priority id (every priority has one). `by_request_type`: the
    targets of a request type that has its own, per priority id (a desk that distinguishes its
    kinds of request, e.g. a system error answered sooner than a question); a priority it does
    not name keeps the default.
    """

    calendar: str = Field(min_length=1)
    warning_share: float = Field(default=0.75, gt=0, lt=1)
    targets: dict[str, SlaTarget]
    by_request_type: dict[str, dict[str, SlaTarget]] = Field(default_factory=dict)

    def target(self, request_type: str, priority: str) -> SlaTarget | None:
        """The targets of a request of `request_type` at `priority` (None: the policy has none)."""
        own = self.by_request_type.get(request_type, {}).get(priority)
        return own if own is not None else self.targets.get(priority)


class Announcement(_Frozen):
    """A message the desk shows its customers on the portal's home page, from `since` on."""

    title: Labels
    body: Labels
    since: date


class Contact(_Frozen):
    """Someone customers may turn to outside a request (the escalation matrix): a mail address
    (`mail`) or a page (`url`), exactly one of them."""

    label: Labels
    mail: Address | None = None
    url: str | None = Field(default=None, pattern=r"^https://[^\s<>\"']{1,490}$")

    @model_validator(mode="after")
    def _one_way(self) -> Contact:
        if (self.mail is None) == (self.url is None):
            raise ValueError("a contact has a mail address or a url (exactly one)")
        return self


class FieldHelp(_Frozen):
    """How to find what each complementary field of a new request asks (None: no help)."""

    product_version: Labels | None = None
    company: Labels | None = None
    contact: Labels | None = None
    error_message: Labels | None = None


class Guide(_Frozen):
    """What the portal tells a desk's customers before they open a request (the seed pages'
    home and help texts): announcements, when to open a request, how to write its subject,
    how to find the complementary fields, whom to contact beyond a request."""

    announcements: tuple[Announcement, ...] = ()
    when_to_open: Labels | None = None
    subject_advice: Labels | None = None
    field_help: FieldHelp = FieldHelp()
    contacts: tuple[Contact, ...] = ()


class Survey(_Frozen):
    """Satisfaction survey sent on closing (rating on a `scale`-point scale plus a comment)."""

    enabled: bool = False
    scale: int = Field(default=5, ge=2, le=10)


def days_later(instant: datetime, days: int, zone: ZoneInfo) -> datetime:
    """`days` calendar days after `instant`: the same local wall-clock time in `zone` (so a day
    across a daylight-saving change lasts 23 or 25 hours), in UTC."""
    local = instant.astimezone(zone).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=zone).astimezone(UTC)


class DeskPolicy(_Frozen):
    """Everything that makes one desk behave the way its seed pages describe."""

    id: str = Field(pattern=ID)
    name: str = Field(min_length=1)
    time_zone: str = "UTC"  # the desk's local time: where its "N days" are counted
    roles: tuple[Role, ...] = Field(min_length=1)
    request_types: tuple[RequestType, ...] = Field(min_length=1)
    priorities: tuple[Priority, ...] = Field(min_length=1)  # lowest first
    statuses: tuple[Status, ...] = Field(min_length=2)
    initial_status: str
    transitions: tuple[Transition, ...] = Field(min_length=1)
    escalations: dict[str, str] = Field(default_factory=dict)  # target -> status id
    third_parties: tuple[str, ...] = ()  # empty: any party named
    permissions: dict[Permission, tuple[str, ...]] = Field(default_factory=dict)
    reopen: ReopenPolicy
    comments_on_closed: bool = True
    email_replies: EmailReplies
    email_intake: EmailIntake = EmailIntake()
    resolution_codes: tuple[ResolutionCode, ...] = Field(min_length=1)
    automations: Automations = Automations()
    notifications: tuple[NotificationRule, ...] = ()
    sla: SlaPolicy
    survey: Survey = Survey()
    guide: Guide = Guide()  # what the portal tells customers (customer-visible)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)")
        return value

    @model_validator(mode="after")
    def _email_intake_known(self) -> DeskPolicy:
        intake = self.email_intake
        if intake.request_type is not None and self.request_type(intake.request_type) is None:
            raise ValueError(
                f"email_intake.request_type: {intake.request_type!r} is not a request type"
            )
        if intake.priority is not None and self.priority_rank(intake.priority) is None:
            raise ValueError(f"email_intake.priority: {intake.priority!r} is not a priority")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def waited_until(self, since: datetime, days: int) -> datetime:
        """When something that started at `since` has waited `days` days (calendar days in the
        desk's zone): a reminder or an automatic close is due then, a reopening window ends."""
        return days_later(since, days, self.zone)

    # --- lookups (the model is frozen, so these are cheap pure reads) ---
    def status(self, status_id: str) -> Status:
        for status in self.statuses:
            if status.id == status_id:
                return status
        raise KeyError(status_id)

    def role(self, role_id: str) -> Role | None:
        for role in self.roles:
            if role.id == role_id:
                return role
        return None

    def request_type(self, type_id: str) -> RequestType | None:
        for request_type in self.request_types:
            if request_type.id == type_id:
                return request_type
        return None

    def priority_rank(self, priority_id: str) -> int | None:
        for rank, priority in enumerate(self.priorities):
            if priority.id == priority_id:
                return rank
        return None

    @property
    def mail_request_type(self) -> str:
        """The request type of a request opened by e-mail."""
        if self.email_intake.request_type is not None:
            return self.email_intake.request_type
        for request_type in self.request_types:
            if "requester" in request_type.creators:
                return request_type.id
        return self.request_types[0].id

    @property
    def mail_priority(self) -> str:
        """The priority of a request opened by e-mail."""
        return self.email_intake.priority or self.priorities[0].id

    def has_resolution_code(self, code: str) -> bool:
        return any(c.id == code for c in self.resolution_codes)

    @cached_property
    def closed_statuses(self) -> frozenset[str]:
        return frozenset(s.id for s in self.statuses if s.category is StatusCategory.CLOSED)

    @property
    def closed_is_final(self) -> bool:
        """Closed means final: no reopening and no comments (a new request must be opened)."""
        return not self.reopen.allowed and not self.comments_on_closed

    def may(self, permission: Permission, role: str) -> bool:
        return role in self.permissions.get(permission, ())
