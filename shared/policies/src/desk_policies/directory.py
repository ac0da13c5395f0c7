"""The directory: people, their organisations, languages and desk roles, as validated data.

Who a requester is (organisation, language), into which organisation someone may file a request
(`may_file_into`: a customer into their own, staff into any the directory lists), who may answer
a request by mail (the requester,
a participant, or a member of their organisation: by membership or by the organisation's mail
domains), who may take part in a request (and so receive its mail: `may_take_part`,
`may_request`), and who holds a support role in a desk (team lead, manager, ...) for
notifications, and so who may be assigned a request (`may_be_assigned`: staff of its desk).
Addresses and mail domains are checked by the one address rule (`desk_contracts.inputs`).

The portal owns the directory and publishes its events (`desk_contracts.directory`); every reader
keeps the same view of them with the one fold, `with_event` (many at once: `DirectoryDraft`). A
deactivated person leaves the view (kept aside in `deactivated`, so a reactivation restores
them as they were): they no longer take part, receive mail nor may be assigned. The shipped file
(`DIRECTORY_FILE`) is a demonstration directory: `import_events` are the events that build it,
which the portal appends on a fresh installation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from desk_contracts.directory import (
    LANGUAGE,
    DeskId,
    DirectoryEvent,
    MailDomain,
    OrganisationId,
    OrganisationRecorded,
    PersonActivated,
    PersonDeactivated,
    PersonEvent,
    PersonInvited,
    PersonLinked,
    PersonReactivated,
    PersonRegistered,
    PersonUnlinked,
    Profile,
    ProfileChanged,
    RoleGranted,
    RoleId,
    RoleRevoked,
    TimeZone,
)
from desk_contracts.inputs import Address, address, quoted
from desk_policies.model import Side

DIRECTORY_FILE = Path(str(resources.files("desk_policies") / "data" / "directory.yaml"))


class Organisation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: OrganisationId
    name: str = Field(min_length=1, max_length=200)
    # mail domains whose senders belong to it (lower case, an IDN in its xn-- form)
    domains: tuple[MailDomain, ...] = Field(default=(), max_length=50)


class Person(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: Address  # lower case, as every address we compare it with
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    organisation: OrganisationId | None = None  # customers belong to one; support staff to none
    language: str = Field(default="en", pattern=LANGUAGE)
    date_format: str = Field(default="%Y-%m-%d", max_length=20)
    time_zone: TimeZone | None = None  # where their instants are shown (None: UTC)
    roles: dict[DeskId, tuple[RoleId, ...]] = Field(default_factory=dict)  # desk id -> roles

    @field_validator("roles")
    @classmethod
    def _each_role_once(cls, roles: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        """A desk listed without roles is no desk of theirs; a role listed twice is held once;
        roles are a set (kept sorted, so the same roles compare equal in any order given)."""
        return {desk: tuple(sorted(set(held))) for desk, held in roles.items() if held}

    @property
    def profile(self) -> Profile:
        """What the person tells about themself, as the directory's events carry it."""
        return Profile(
            name=self.name, phone=self.phone, language=self.language,
            date_format=self.date_format, time_zone=self.time_zone,
        )  # fmt: skip


class Directory(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organisations: tuple[Organisation, ...] = ()
    people: tuple[Person, ...] = ()  # who may take part: every rule below reads these only
    deactivated: tuple[Person, ...] = ()  # set aside until reactivated (see module)

    @cached_property
    def _by_email(self) -> dict[str, Person]:
        return {p.email: p for p in self.people}

    @cached_property
    def _by_domain(self) -> dict[str, str]:
        return {d: o.id for o in self.organisations for d in o.domains}

    def person(self, address: str) -> Person | None:
        return self._by_email.get(address.lower())

    def organisation_of(self, address: str) -> str | None:
        """The sender's organisation: by the directory entry, else by the mail domain."""
        person = self.person(address)
        if person is not None and person.organisation:
            return person.organisation
        return self._by_domain.get(address.lower().rpartition("@")[2])

    @cached_property
    def _organisation_ids(self) -> frozenset[str]:
        return frozenset(o.id for o in self.organisations)

    def may_file_into(
        self, submitter: str, organisation: str, side: Side, *, placed_in: str | None = None
    ) -> str | None:
        """Why `submitter`, acting on `side` of a desk, may not file a request into
        `organisation` (None: they may). Staff (the support side) file on a client's behalf
        into any organisation the directory lists; anyone else into their own only: the one
        their verified identity places them in (`placed_in`), else as the directory places
        them (by entry or mail domain, as the mail gateway does)."""
        if side is Side.SUPPORT:
            if organisation in self._organisation_ids:
                return None
            return f"{quoted(organisation)} is not an organisation of the directory"
        own = placed_in if placed_in is not None else self.organisation_of(submitter)
        if own == organisation:
            return None
        return (
            f"{quoted(submitter)} files requests into their own organisation only, "
            f"not into {quoted(organisation)}"
        )

    def language_of(self, address: str, default: str = "en") -> str:
        person = self.person(address)
        return person.language if person else default

    def is_staff(self, address: str, desk: str) -> bool:
        """Does `address` hold a support role in `desk`?"""
        person = self.person(address)
        return person is not None and bool(person.roles.get(desk))

    def may_take_part(self, text: str, organisation: str, desk: str) -> str | None:
        """Why `text` may not take part in a request of `organisation` at `desk` (None: they
        may). Our mail goes to everyone taking part, so only people the directory lists in that
        organisation, or staff of the desk, may: an address of the organisation's mail domain
        that the directory does not list is anyone's guess."""
        try:
            checked = address(text)
        except ValueError as error:
            return str(error)
        return self._takes_part(checked, organisation, desk)

    def may_request(self, text: str, organisation: str, desk: str) -> str | None:
        """Why `text` may not be the requester of a request of `organisation` at `desk` (None:
        they may): whoever may take part, and also a sender the directory places in the
        organisation by its mail domain (as the mail gateway admits senders)."""
        try:
            checked = address(text)
        except ValueError as error:
            return str(error)
        if self._takes_part(checked, organisation, desk) is None:
            return None
        if self.organisation_of(checked) == organisation:
            return None
        return (
            f"{quoted(checked)} does not belong to organisation {quoted(organisation)} "
            f"(neither in the directory nor by its mail domains) nor to the staff of desk "
            f"{quoted(desk)}"
        )

    def may_be_assigned(self, text: str, desk: str) -> str | None:
        """Why `text` may not be assigned a request of `desk` (None: they may). The assignee
        acts for the desk and receives the request's mail: staff of that desk only."""
        try:
            checked = address(text)
        except ValueError as error:
            return str(error)
        if self.is_staff(checked, desk):
            return None
        return f"{quoted(checked)} is not staff of desk {quoted(desk)} in the directory"

    def _takes_part(self, checked: str, organisation: str, desk: str) -> str | None:
        person = self.person(checked)
        if person is not None and person.organisation == organisation:
            return None
        if self.is_staff(checked, desk):
            return None
        return (
            f"{quoted(checked)} is neither a person of organisation {quoted(organisation)} "
            f"in the directory nor staff of desk {quoted(desk)}"
        )

    def in_role(self, desk: str, role: str) -> tuple[Person, ...]:
        """Everyone holding `role` in `desk` (e.g. the team leads of cloud-partner)."""
        return tuple(p for p in self.people if role in p.roles.get(desk, ()))


class DirectoryError(ValueError):
    """A directory file that cannot be read, or an event that does not apply to the view."""


def parse_directory(data: Any, source: str = "<directory>") -> Directory:
    """The directory of `data` (a file's content): each organisation and address once, people
    of listed organisations only; `DirectoryError` naming the field at fault and why."""
    try:
        directory = Directory.model_validate(data)
    except ValidationError as error:
        lines = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        ]
        raise DirectoryError(f"{source}: invalid directory\n  " + "\n  ".join(lines)) from None
    known: set[str] = set()
    for n, organisation in enumerate(directory.organisations):
        if organisation.id in known:
            raise DirectoryError(f"{source}: organisations.{n}.id: {organisation.id!r} twice")
        known.add(organisation.id)
    listed: set[str] = set()
    for where in ("people", "deactivated"):
        for n, person in enumerate(getattr(directory, where)):
            if person.email in listed:
                raise DirectoryError(f"{source}: {where}.{n}.email: {person.email!r} twice")
            listed.add(person.email)
            if person.organisation and person.organisation not in known:
                raise DirectoryError(
                    f"{source}: {where}.{n}.organisation: unknown organisation "
                    f"{person.organisation!r}"
                )
    return directory


def load_directory(path: Path = DIRECTORY_FILE) -> Directory:
    """The directory of the YAML file at `path` (the shipped demonstration one by default)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DirectoryError(f"{path}: {error}") from None
    return parse_directory(data, str(path))


# --- the directory as it is now, for code that runs while it changes ---------------------------

CurrentDirectory = Callable[[], Directory]
DirectorySource = Directory | CurrentDirectory  # a fixed directory, or what gives the current one


def current_directory(source: DirectorySource) -> Directory:
    """The directory `source` gives now: itself when fixed (tests, tools), else what the
    callable returns (a process's feed of the directory's events: ask at each use)."""
    return source if isinstance(source, Directory) else source()


# --- the one fold of the directory's events ----------------------------------------------------


class DirectoryDraft:
    """A directory being changed by events, one copy of it for a whole batch of them."""

    def __init__(self, directory: Directory) -> None:
        self._organisations = {o.id: o for o in directory.organisations}
        self._people = {p.email: p for p in directory.people}
        self._deactivated = {p.email: p for p in directory.deactivated}

    def directory(self) -> Directory:
        """The directory after the events applied so far."""
        return Directory(
            organisations=tuple(self._organisations.values()),
            people=tuple(self._people.values()),
            deactivated=tuple(self._deactivated.values()),
        )

    def apply(self, event: DirectoryEvent) -> None:
        """Apply `event`; `DirectoryError` (the draft unchanged) when it names a person the
        directory does not know. Each event sets what it says, so applying a stretch of events
        again in order (a relay re-sending from its checkpoint) leaves the same directory."""
        if isinstance(event, OrganisationRecorded):
            self._organisations[event.organisation_id] = Organisation(
                id=event.organisation_id, name=event.name, domains=event.domains
            )
        elif isinstance(event, PersonInvited | PersonRegistered):
            # the first event of a person's stream: they are listed as it says, afresh
            self._deactivated.pop(event.email, None)
            organisation = event.organisation_id if isinstance(event, PersonInvited) else None
            self._people[event.email] = Person(
                email=event.email, organisation=organisation, **event.profile.model_dump()
            )
        elif isinstance(event, PersonEvent):
            self._change(event)
        else:
            raise DirectoryError(f"{type(event).__name__} is not an event of the directory")

    def _change(self, event: PersonEvent) -> None:
        email = event.email
        person = self._people.get(email) or self._deactivated.get(email)
        if person is None:
            raise DirectoryError(
                f"{event.event_type} of {quoted(email)}, whom the directory does not know"
            )
        if isinstance(event, PersonDeactivated):
            if email in self._people:
                self._deactivated[email] = self._people.pop(email)
            return
        if isinstance(event, PersonReactivated):
            if email in self._deactivated:
                self._people[email] = self._deactivated.pop(email)
            return
        changed = _changed(person, event)
        if email in self._people:
            self._people[email] = changed
        else:
            self._deactivated[email] = changed


def _changed(person: Person, event: PersonEvent) -> Person:
    """`person` after an event of theirs that changes their entry, not their being listed."""
    if isinstance(event, ProfileChanged):
        return person.model_copy(update=event.profile.model_dump())
    if isinstance(event, PersonLinked):
        return person.model_copy(update={"organisation": event.organisation_id})
    if isinstance(event, PersonUnlinked):
        if person.organisation != event.organisation_id:
            return person
        return person.model_copy(update={"organisation": None})
    if isinstance(event, RoleGranted):
        held = person.roles.get(event.desk_id, ())
        if event.role in held:
            return person
        roles = {**person.roles, event.desk_id: tuple(sorted((*held, event.role)))}
        return person.model_copy(update={"roles": roles})
    if isinstance(event, RoleRevoked):
        roles = {desk: held for desk, held in person.roles.items() if desk != event.desk_id}
        kept = tuple(r for r in person.roles.get(event.desk_id, ()) if r != event.role)
        if kept:
            roles[event.desk_id] = kept
        return person.model_copy(update={"roles": roles})
    if isinstance(event, PersonActivated):  # the address is proven: the portal's concern
        return person
    raise DirectoryError(f"{type(event).__name__} is not an event of the directory")


def with_event(directory: Directory, event: DirectoryEvent) -> Directory:
    """The directory after `event` (see `DirectoryDraft.apply`): the view every reader keeps."""
    draft = DirectoryDraft(directory)
    draft.apply(event)
    return draft.directory()


def with_events(directory: Directory, events: Iterable[DirectoryEvent]) -> Directory:
    """The directory after `events` in order, each applied by `with_event`'s rule."""
    draft = DirectoryDraft(directory)
    for event in events:
        draft.apply(event)
    return draft.directory()


def import_events(
    directory: Directory, by: str = "import", *, now: datetime
) -> list[DirectoryEvent]:
    """The events that build `directory` from an empty one, made by `by` at `now`: each
    organisation recorded, each person invited into theirs (staff into none) and granted their
    roles, the deactivated ones then deactivated. Imported people still prove their address
    (activation) at the portal before they sign in."""
    events: list[DirectoryEvent] = [
        OrganisationRecorded(
            occurred_at=now, by=by, organisation_id=o.id, name=o.name, domains=o.domains
        )
        for o in directory.organisations
    ]
    for person in (*directory.people, *directory.deactivated):
        events.append(
            PersonInvited(
                occurred_at=now,
                by=by,
                email=person.email,
                profile=person.profile,
                organisation_id=person.organisation,
            )
        )
        events += [
            RoleGranted(occurred_at=now, by=by, email=person.email, desk_id=desk, role=role)
            for desk, held in person.roles.items()
            for role in held
        ]
    events += [
        PersonDeactivated(occurred_at=now, by=by, email=p.email) for p in directory.deactivated
    ]
    return events
