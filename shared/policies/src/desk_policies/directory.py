"""The directory: people, their organisations, languages and desk roles, as validated data.

Who a requester is (organisation, language), into which organisation someone may file a request
(`may_file_into`: a customer into their own, staff into any the directory lists), who may answer
a request by mail (the requester,
a participant, or a member of their organisation: by membership or by the organisation's mail
domains), who may take part in a request (and so receive its mail: `may_take_part`,
`may_request`), and who holds a support role in a desk (team lead, manager, ...) for
notifications, and so who may be assigned a request (`may_be_assigned`: staff of its desk).
Addresses and mail domains are checked by the one address rule (`desk_contracts.inputs`).
The shipped file is a demonstration directory; a deployment points `DIRECTORY_FILE` at its own.
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from desk_contracts.inputs import Address, address, mail_domain, quoted
from desk_policies.model import Side

DIRECTORY_FILE = Path(str(resources.files("desk_policies") / "data" / "directory.yaml"))


class Organisation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    # mail domains whose senders belong to it (lower case, an IDN in its xn-- form)
    domains: tuple[Annotated[str, AfterValidator(mail_domain)], ...] = ()


class Person(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    email: Address  # lower case, as every address we compare it with
    name: str = Field(min_length=1)
    organisation: str | None = None  # customers belong to one; support staff to none
    language: str = Field(default="en", pattern=r"^(fr|en)$")
    date_format: str = "%Y-%m-%d"
    roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # desk id -> roles there


class Directory(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organisations: tuple[Organisation, ...] = ()
    people: tuple[Person, ...] = ()

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
    pass


def parse_directory(data: Any, source: str = "<directory>") -> Directory:
    try:
        directory = Directory.model_validate(data)
    except ValidationError as error:
        lines = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors()
        ]
        raise DirectoryError(f"{source}: invalid directory\n  " + "\n  ".join(lines)) from None
    known = {o.id for o in directory.organisations}
    for n, person in enumerate(directory.people):
        if person.organisation and person.organisation not in known:
            raise DirectoryError(
                f"{source}: people.{n}.organisation: unknown organisation {person.organisation!r}"
            )
    return directory


def load_directory(path: Path = DIRECTORY_FILE) -> Directory:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DirectoryError(f"{path}: {error}") from None
    return parse_directory(data, str(path))
