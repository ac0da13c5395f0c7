"""The directory's events: who the people and organisations are, as the portal records them.

The portal owns the directory (people, organisations, memberships, desk roles) and appends
these events to its store, one stream per person (`person:<address>`) and per organisation
(`organisation:<id>`); its relay publishes them on the `directory` topic (key = stream id, kept
forever), which intake's gateways, workflow and the notifier read from the start into their
view of the directory (`desk_policies.directory.with_event`). Each names who made the change
(`by`: a person's address, `import` for the shipped file, a service's name). Credentials
(password hashes, links, sessions, API tokens) are the portal's private tables, never events.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, ClassVar
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from desk_contracts.inputs import Address, mail_domain

DIRECTORY_EVENTS: dict[str, type[DirectoryEvent]] = {}
LANGUAGE = r"^(fr|en)$"
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y")
MAX_TIME_ZONE = 64  # the longest IANA zone name is about 32 characters


@cache
def time_zones() -> frozenset[str]:
    """The IANA time zones this installation knows (`zoneinfo.available_timezones`)."""
    return frozenset(available_timezones())


def time_zone(name: str) -> str:
    """`name` when it is an IANA time zone (e.g. `Europe/Zurich`); ValueError otherwise."""
    if name not in time_zones():
        raise ValueError("must be an IANA time zone such as Europe/Zurich or UTC")
    return name


# where a person's instants are shown: an IANA zone's name
TimeZone = Annotated[str, Field(min_length=1, max_length=MAX_TIME_ZONE), AfterValidator(time_zone)]

# an organisation's id: in its stream id and in every membership that names it
OrganisationId = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
]
# a mail domain of an organisation's people: lower case, an IDN in its xn-- form
MailDomain = Annotated[str, AfterValidator(mail_domain)]
DeskId = Annotated[str, Field(min_length=1, max_length=64)]  # a desk policy's id
RoleId = Annotated[str, Field(min_length=1, max_length=64)]  # a role of a desk's support side


class DirectoryEvent(BaseModel):
    """A change to the directory, at an instant, by someone."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    occurred_at: datetime
    by: str = Field(min_length=1, max_length=320)

    @property
    def stream_id(self) -> str:
        raise NotImplementedError


def _register(cls: type[DirectoryEvent]) -> type[DirectoryEvent]:
    cls.event_type = cls.__name__
    DIRECTORY_EVENTS[cls.event_type] = cls
    return cls


def person_stream(email: str) -> str:
    """The stream of a person's events (and the Kafka key of their records)."""
    return f"person:{email.lower()}"


def organisation_stream(organisation_id: str) -> str:
    """The stream of an organisation's events (and the Kafka key of their records)."""
    return f"organisation:{organisation_id}"


class PersonEvent(DirectoryEvent):
    email: Address

    @property
    def stream_id(self) -> str:
        return person_stream(self.email)


class Profile(BaseModel):
    """What a person tells about themself (seed 004's profile)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    language: str = Field(default="en", pattern=LANGUAGE)
    date_format: str = Field(default="%Y-%m-%d", max_length=20)
    time_zone: TimeZone | None = Field(default=None, description="None: UTC")


@_register
class OrganisationRecorded(DirectoryEvent):
    """An organisation, new or changed: its name and the mail domains of its people."""

    organisation_id: OrganisationId
    name: str = Field(min_length=1, max_length=200)
    domains: tuple[MailDomain, ...] = Field(default=(), max_length=50)

    @property
    def stream_id(self) -> str:
        return organisation_stream(self.organisation_id)


@_register
class PersonInvited(PersonEvent):
    """Staff created an account for someone (seed 004): they activate it from the mail."""

    profile: Profile
    organisation_id: OrganisationId | None = None


@_register
class PersonRegistered(PersonEvent):
    """Someone registered alone (seed 001): no access to any request until linked."""

    profile: Profile


@_register
class PersonActivated(PersonEvent):
    """The person proved the address is theirs (activation or confirmation link)."""


@_register
class ProfileChanged(PersonEvent):
    """The person's name, phone, language or date format changed."""

    profile: Profile


@_register
class PersonLinked(PersonEvent):
    """The person belongs to an organisation from now on (one at a time)."""

    organisation_id: OrganisationId


@_register
class PersonUnlinked(PersonEvent):
    """The person no longer belongs to that organisation (nothing when they are not in it)."""

    organisation_id: OrganisationId


@_register
class RoleGranted(PersonEvent):
    """A desk role for a member of staff (team lead, agent, ...)."""

    desk_id: DeskId
    role: RoleId


@_register
class RoleRevoked(PersonEvent):
    """The person no longer holds that role in that desk (nothing when they did not)."""

    desk_id: DeskId
    role: RoleId


@_register
class PersonDeactivated(PersonEvent):
    """The person may no longer sign in nor take part (their history stays)."""


@_register
class PersonReactivated(PersonEvent):
    """A deactivated person may sign in and take part again, as they were."""


def directory_event(event_type: str, data: dict[str, object]) -> DirectoryEvent:
    """The directory event of `event_type` from its JSON data (KeyError: not a directory one)."""
    return DIRECTORY_EVENTS[event_type].model_validate(data)
