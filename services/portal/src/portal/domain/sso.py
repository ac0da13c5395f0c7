"""Single sign-on for staff (pure): the desk roles an identity provider's groups grant, and the
profile a verified ID token describes.

The role map (setting `OIDC_ROLE_MAP`) lists `group=desk:role` pairs, comma-separated, e.g.
`/desk/erp-vendor/team_lead=erp-vendor:team_lead,/desk/erp-vendor/rnd=erp-vendor:rnd`. A group
may grant several roles, at several desks (one pair each); a group the map lists nowhere grants
nothing (deny by default). A malformed entry is refused when the map is read, at start-up, with
its position and what is wrong: a typo must not quietly grant nothing, or the wrong role.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from desk_contracts.inputs import MAX_NAME, address
from desk_policies.model import ID, DeskPolicy, Side

_ID = re.compile(ID)
MAX_GROUP = 1000  # characters of a group's name as the map lists it (a full path, say)
MAX_GROUPS = 500  # groups read from one token; beyond that the token is refused


class RoleMapError(ValueError):
    """A role map setting that cannot be read: which entry, and why."""


class ProfileRefused(ValueError):
    """An ID token whose claims do not describe a person we can sign in: why."""


@dataclass(frozen=True)
class RoleMap:
    """Which (desk, role) pairs each group grants, in the order the setting lists them."""

    grants: Mapping[str, tuple[tuple[str, str], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def desk_roles(self, groups: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The roles `groups` grant, by desk (each role once, in the map's order); a group the
        map does not list grants nothing."""
        held = set(groups)
        roles: dict[str, list[str]] = {}
        for group, pairs in self.grants.items():
            if group not in held:
                continue
            for desk, role in pairs:
                at_desk = roles.setdefault(desk, [])
                if role not in at_desk:
                    at_desk.append(role)
        return {desk: tuple(held_roles) for desk, held_roles in roles.items()}


def grantable_roles(policies: Iterable[DeskPolicy]) -> dict[str, tuple[str, ...]]:
    """What single sign-on may grant: at each desk of `policies`, its support-side roles (staff
    sign in with it; customer roles come from the organisation, `system` is the services')."""
    return {p.id: tuple(r.id for r in p.roles if r.side is Side.SUPPORT) for p in policies}


def parse_role_map(text: str, grantable: Mapping[str, Collection[str]] | None = None) -> RoleMap:
    """The role map of the setting `text` (`group=desk:role`, comma-separated; empty: no group
    grants anything). With `grantable` (desk -> the roles single sign-on may grant there), a desk
    or role outside it is refused too. RoleMapError names the first entry at fault and why."""
    grants: dict[str, list[tuple[str, str]]] = {}
    if not text.strip():
        return RoleMap()
    for number, entry in enumerate(text.split(","), start=1):
        where = f"OIDC_ROLE_MAP entry {number} ({entry.strip()!r})"
        group, equals, target = entry.strip().rpartition("=")
        group, target = group.strip(), target.strip()
        if not equals or not group:
            raise RoleMapError(f"{where}: expected group=desk:role")
        if len(group) > MAX_GROUP or not group.isprintable():
            raise RoleMapError(f"{where}: a group has at most {MAX_GROUP} printable characters")
        desk, colon, role = target.partition(":")
        if not colon or not _ID.match(desk) or not _ID.match(role):
            raise RoleMapError(
                f"{where}: expected desk:role after '=', each of lower-case letters, digits, "
                "'_' and '-' (e.g. erp-vendor:team_lead)"
            )
        if grantable is not None:
            if desk not in grantable:
                known = ", ".join(sorted(grantable)) or "none"
                raise RoleMapError(f"{where}: no desk {desk!r} (desks: {known})")
            if role not in grantable[desk]:
                known = ", ".join(sorted(grantable[desk])) or "none"
                raise RoleMapError(
                    f"{where}: single sign-on may not grant {role!r} at {desk!r} (it may: {known})"
                )
        pairs = grants.setdefault(group, [])
        if (desk, role) in pairs:
            raise RoleMapError(f"{where}: listed twice")
        pairs.append((desk, role))
    return RoleMap(MappingProxyType({group: tuple(pairs) for group, pairs in grants.items()}))


@dataclass(frozen=True)
class SsoProfile:
    """A person as the identity provider vouched for them in a verified ID token."""

    issuer: str  # the provider; with `subject`, who they are there (stable, unlike the e-mail)
    subject: str
    email: str  # lower case
    email_verified: bool
    name: str
    groups: tuple[str, ...] = ()
    desk_roles: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


def profile_from_claims(
    claims: Mapping[str, Any], roles_claim: str, role_map: RoleMap
) -> SsoProfile:
    """The profile of a verified ID token's `claims`, its groups read from `roles_claim` and
    mapped through `role_map`. ProfileRefused when a claim we need is missing or malformed; an
    unverified e-mail is reported (`email_verified`), not refused here: the caller decides."""
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not issuer or not isinstance(subject, str) or not subject:
        raise ProfileRefused("the ID token names no issuer or subject")
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        raise ProfileRefused("the identity provider gave no e-mail address")
    try:
        email = address(email.strip())
    except ValueError as error:
        raise ProfileRefused(f"the provider's e-mail address is refused: {error}") from None
    groups = _groups(claims.get(roles_claim))
    return SsoProfile(
        issuer=issuer,
        subject=subject,
        email=email,
        email_verified=_verified(claims.get("email_verified")),
        name=_name(claims, email),
        groups=groups,
        desk_roles=MappingProxyType(role_map.desk_roles(groups)),
    )


def _verified(value: object) -> bool:
    # some providers send the JSON boolean as a string; anything else is "not verified"
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _groups(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise ProfileRefused("the groups claim is not a list of group names")
    if len(value) > MAX_GROUPS:
        raise ProfileRefused(f"the token lists more than {MAX_GROUPS} groups")
    return tuple(dict.fromkeys(value))


def _name(claims: Mapping[str, Any], email: str) -> str:
    parts = [claims.get("given_name"), claims.get("family_name")]
    candidates = [
        claims.get("name"),
        " ".join(p for p in parts if isinstance(p, str) and p.strip()),
        claims.get("preferred_username"),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return " ".join(candidate.split())[:MAX_NAME]
    return email
