"""Accounts (pure): a person as the portal knows them, and who may change whom.

A person's account goes through: invited by staff (seed 004) or registered alone (seed 001) ->
active once they proved the address is theirs (activation or confirmation link) -> deactivated
by staff (and back). Only an active account signs in. A customer reads requests once linked to
an organisation; until then their page says so and tells them to contact support.

Who administers: a member of staff holding, at a desk, a role the desk's policy marks
`administers` (its leads). They invite people, link people to organisations, grant and revoke
roles of the desks they administer, and deactivate people; anyone else is refused, and
nobody changes their own account's roles, organisation or status this way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from desk_contracts.identity import Identity, Via
from desk_policies.model import DeskPolicy

Status = Literal["invited", "registered", "active", "deactivated"]


@dataclass(frozen=True)
class Account:
    """A person's account as the portal's read model holds it."""

    email: str
    name: str
    status: Status
    organisation_id: str | None = None
    language: str = "en"
    date_format: str = "%Y-%m-%d"
    phone: str | None = None
    time_zone: str = "UTC"  # where the pages show instants (an IANA zone)
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def may_sign_in(self) -> bool:
        return self.status == "active"

    @property
    def is_staff(self) -> bool:
        return any(self.roles.values())

    @property
    def awaits_organisation(self) -> bool:
        """Signed in but reading nothing yet: no organisation and no desk role."""
        return self.organisation_id is None and not self.is_staff

    def identity(
        self, via: Via, scope: frozenset[Literal["read", "write"]] | None = None
    ) -> Identity:
        """The identity the portal signs for this account (nothing granted unless active)."""
        if not self.may_sign_in:
            return Identity(self.email, self.name, via=via, scope=frozenset())
        return Identity(
            self.email,
            self.name,
            self.organisation_id,
            {desk: tuple(roles) for desk, roles in self.roles.items() if roles},
            scope if scope is not None else frozenset(("read", "write")),
            via,
        )


def administered_desks(account: Account, policies: Iterable[DeskPolicy]) -> frozenset[str]:
    """The desks whose people `account` administers (see module)."""
    if not account.may_sign_in:
        return frozenset()
    desks = set()
    for policy in policies:
        for role_id in account.roles.get(policy.id, ()):
            role = policy.role(role_id)
            if role is not None and role.administers:
                desks.add(policy.id)
    return frozenset(desks)


def may_read(admin: Account, person: Account, policies: Iterable[DeskPolicy]) -> bool:
    """Whether `admin` may read `person`'s account and history in the administration pages:
    their own, a customer's (no desk role), or that of staff of a desk `admin` administers
    (the people the list shows them: `portal.application.directory.people_of`)."""
    desks = administered_desks(admin, policies)
    if not desks:
        return False
    held = {desk for desk, roles in person.roles.items() if roles}
    return person.email == admin.email or not held or bool(held & desks)


class Refused(Exception):
    """An administration change the rules refuse; the message says why, `status` how to
    answer (403: not yours to change, 404: no such person or organisation, 409: not now),
    `key` and `values` the same reason as a catalogue text for the pages (`admin.refused.*`)."""

    def __init__(
        self,
        message: str,
        status: int = 409,
        key: str = "admin.refused.other",
        values: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.key = key
        self.values: Mapping[str, str] = values or {}


def check_grant(
    admin: Account,
    policies: Mapping[str, DeskPolicy],
    desk: str,
    role: str,
    to: str | None = None,
) -> None:
    """Refuse granting or revoking `role` at `desk` (to the address `to`, when known) unless
    `admin` administers that desk, the desk has a support-side or external role of that name
    (customer-side roles come with an organisation, the automations' with no person) and `to`
    is not their own address (a lead neither raises nor drops their own roles)."""
    policy = policies.get(desk)
    if policy is None:
        raise Refused(f"no desk {desk!r}", 404, "admin.refused.no_desk", {"desk": desk})
    if desk not in administered_desks(admin, policies.values()):
        raise Refused(
            f"you do not administer desk {desk!r}", 403, "admin.refused.not_your_desk",
            {"desk": policy.name},
        )  # fmt: skip
    found = policy.role(role)
    if found is None or found.side.value not in ("support", "external"):
        grantable = [r.id for r in policy.roles if r.side.value in ("support", "external")]
        raise Refused(
            f"{role!r} is not a role of desk {desk!r} to grant: {', '.join(grantable)}", 422,
            "admin.refused.not_a_role", {"role": role, "desk": policy.name},
        )  # fmt: skip
    if to is not None and to.lower() == admin.email:
        raise Refused("you cannot change your own desk roles", 403, "admin.refused.own_roles")


def check_administers(admin: Account, policies: Mapping[str, DeskPolicy]) -> None:
    """Refuse inviting people, or reading the directory, to someone who administers no desk."""
    if not administered_desks(admin, policies.values()):
        raise Refused("you administer no desk", 403, "admin.refused.no_administration")


def check_manages(admin: Account, person: Account, policies: Mapping[str, DeskPolicy]) -> None:
    """Refuse changing `person`'s organisation or status (link, deactivate) unless `admin`
    administers every desk where `person` holds a role (a customer holds none), and never
    their own account: a desk's lead cannot reach into another desk's staff, nor give
    themself an organisation's reads."""
    administered = administered_desks(admin, policies.values())
    if not administered:
        raise Refused("you administer no desk", 403, "admin.refused.no_administration")
    if person.email == admin.email:
        raise Refused(
            "you cannot change your own organisation or status", 403, "admin.refused.own_account"
        )
    if outside := sorted(set(person.roles) - administered):
        raise Refused(
            f"{person.email} holds roles at desks you do not administer: {', '.join(outside)}",
            403, "admin.refused.other_desks",
            {"email": person.email, "desks": ", ".join(outside)},
        )  # fmt: skip


def check_administers_all(admin: Account, policies: Mapping[str, DeskPolicy]) -> None:
    """Refuse changing organisations (their names, their mail domains, which place senders
    in them for every desk) to anyone but who administers every desk."""
    if administered_desks(admin, policies.values()) != set(policies):
        raise Refused(
            "organisations are changed by who administers every desk", 403,
            "admin.refused.not_every_desk",
        )  # fmt: skip
