"""The account life cycle, as the seed desks run it, and the administration of people.

Seed 004: staff invite a person, who receives an activation mail with a single-use, expiring
link, chooses a password and is signed in. Seed 001: a person registers alone, confirms the
address from the mail (choosing the password then, so whoever typed someone else's address
gains nothing), and reads no request until staff link them to an organisation. A forgotten
password is reset from a mailed link; a sign-in link may replace the password.

Answers never tell which addresses have an account: registering a known address, asking a
reset or a sign-in link for an unknown one, all get the same answer (the mail, if any, tells
the owner of the address). Every change is a directory event naming who made it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg

from desk_contracts import directory as d
from desk_policies.model import DeskPolicy
from portal.application import credentials as c
from portal.application.directory import account, organisation_exists, record
from portal.domain.accounts import (
    Account,
    Refused,
    check_administers,
    check_administers_all,
    check_grant,
    check_manages,
)


@dataclass(frozen=True)
class Mail:
    """A message to send about an account: a catalogue key and the values it names."""

    to: str
    kind: str  # activate, confirm, already_registered, reset, sign_in
    language: str
    values: Mapping[str, str] = field(default_factory=dict)


Send = Callable[[Mail], Awaitable[None]]


def _mail(person: Account, kind: str, secret: str | None = None, then: str = "/") -> Mail:
    values = {"name": person.name}
    if secret is not None:
        values["secret"] = secret
    if then != "/":
        values["next"] = then
    return Mail(person.email, kind, person.language, values)


# --- the person's own steps ---------------------------------------------------------------


async def register(
    conn: asyncpg.Connection, email: str, profile: d.Profile, now: datetime, send: Send
) -> None:
    """Seed 001: a new account waiting for its address to be confirmed (or, for a known
    address, a mail to its owner saying so)."""
    known = await account(conn, email)
    if known is not None:
        await send(_mail(known, "already_registered"))
        return
    await record(
        conn, [d.PersonRegistered(occurred_at=now, by=email, email=email, profile=profile)]
    )
    person = await account(conn, email)
    assert person is not None
    await send(_mail(person, "confirm", await c.issue_link(conn, person.email, "confirm", now)))


async def activate(
    conn: asyncpg.Connection, secret: str, password: str, now: datetime
) -> Account | None:
    """Spend an activation or confirmation link, setting the password: the account, now
    active, or None when the link does not work (any more)."""
    async with conn.transaction():
        used = await c.use_link(conn, secret, ("activate", "confirm"), now)
        if used is None:
            return None
        email, _ = used
        person = await account(conn, email)
        if person is None or person.status == "deactivated":
            return None  # the link is spent, nothing else changes
        await c.set_password(conn, email, password, now)
        if person.status == "active":  # an older link of an active account: as a reset
            await c.close_sessions_of(conn, email)
        else:
            await record(conn, [d.PersonActivated(occurred_at=now, by=email, email=email)])
        await c.clear_failures(conn, f"address:{email}")
        return await account(conn, email)


async def request_reset(conn: asyncpg.Connection, email: str, now: datetime, send: Send) -> None:
    """A reset link for an active account, the activation link again for one not activated
    yet; nothing for an unknown or deactivated address (same answer to the caller)."""
    person = await account(conn, email)
    if person is None or person.status == "deactivated":
        return
    if person.status == "active":
        await send(_mail(person, "reset", await c.issue_link(conn, person.email, "reset", now)))
    else:
        purpose: c.Purpose = "activate" if person.status == "invited" else "confirm"
        await send(_mail(person, purpose, await c.issue_link(conn, person.email, purpose, now)))


async def reset(
    conn: asyncpg.Connection, secret: str, password: str, now: datetime
) -> Account | None:
    """Spend a reset link: the new password replaces the old, every session ends, the lock on
    the address is lifted. None when the link does not work."""
    async with conn.transaction():
        used = await c.use_link(conn, secret, ("reset",), now)
        if used is None:
            return None
        email, _ = used
        person = await account(conn, email)
        if person is None or not person.may_sign_in:
            return None
        await c.set_password(conn, email, password, now)
        await c.close_sessions_of(conn, email)
        await c.clear_failures(conn, f"address:{email}")
        return person


async def request_sign_in_link(
    conn: asyncpg.Connection, email: str, now: datetime, send: Send, then: str = "/"
) -> None:
    """A sign-in link for an active account (nothing otherwise, same answer), leading to the
    page `then` (a local path the caller checked) once used."""
    person = await account(conn, email)
    if person is not None and person.may_sign_in:
        secret = await c.issue_link(conn, person.email, "sign-in", now)
        await send(_mail(person, "sign_in", secret, then))


async def sign_in_by_link(conn: asyncpg.Connection, secret: str, now: datetime) -> Account | None:
    used = await c.use_link(conn, secret, ("sign-in",), now)
    if used is None:
        return None
    person = await account(conn, used[0])
    return person if person is not None and person.may_sign_in else None


SignIn = Account | Literal["refused", "locked"]


async def sign_in(
    conn: asyncpg.Connection, email: str, password: str, client: str, now: datetime
) -> SignIn:
    """Check an address and password. `locked` when the address (as typed) or the client has
    tried too often lately (each attempt counted before the check); `refused` for a wrong
    pair, an unknown address or an account that may not sign in (one answer for all: see
    module)."""
    address = email.strip().lower()[:320]
    keys = {f"address:{address}": "address", f"client:{client}": "client"}
    if not await c.attempt(conn, keys, now):
        return "locked"
    person = await account(conn, address)
    matches = await c.password_matches(conn, address, password[: c.MAX_PASSWORD])
    if person is None or not matches or not person.may_sign_in:
        return "refused"
    await c.clear_failures(conn, f"address:{address}")
    await c.uncount(conn, f"client:{client}")
    return person


async def may_mail(conn: asyncpg.Connection, email: str, client: str, now: datetime) -> str:
    """May a page mail a link to `email` for `client`? `yes`; `address` when that address was
    mailed enough lately (the caller answers as if it were sent: nothing tells who has an
    account); `client` when that client asked too often (429)."""
    address = email.strip().lower()[:320]
    if not await c.attempt(conn, {f"mail-client:{client}": "mail_client"}, now):
        return "client"
    if not await c.attempt(conn, {f"mail:{address}": "mail_address"}, now):
        return "address"
    return "yes"


async def change_profile(
    conn: asyncpg.Connection, person: Account, profile: d.Profile, now: datetime
) -> None:
    await record(
        conn,
        [d.ProfileChanged(occurred_at=now, by=person.email, email=person.email, profile=profile)],
    )


# --- administration (staff who administer a desk) -----------------------------------------


async def _existing(conn: asyncpg.Connection, email: str) -> Account:
    person = await account(conn, email)
    if person is None:
        address = email.lower()[:320]
        raise Refused(
            f"no account for {address}", 404, "admin.refused.no_account", {"email": address}
        )
    return person


async def _known_organisation(conn: asyncpg.Connection, organisation_id: str) -> None:
    if not await organisation_exists(conn, organisation_id):
        named = organisation_id[:100]
        raise Refused(
            f"no organisation {named!r}", 404, "admin.refused.no_organisation",
            {"organisation": named},
        )  # fmt: skip


async def invite(
    conn: asyncpg.Connection,
    admin: Account,
    policies: Mapping[str, DeskPolicy],
    email: str,
    profile: d.Profile,
    organisation_id: str | None,
    now: datetime,
    send: Send,
) -> Account:
    """Seed 004: an account made by staff and its activation mail (sent again when the person
    was invited before and did not activate yet)."""
    check_administers(admin, policies)
    if organisation_id is not None:
        await _known_organisation(conn, organisation_id)
    known = await account(conn, email)
    if known is not None and known.status not in ("invited", "registered"):
        raise Refused(
            f"{known.email} already has an account ({known.status})", 409,
            "admin.refused.has_account", {"email": known.email},
        )  # fmt: skip
    if known is not None:  # not activated yet: the link again, the entry as it is
        purpose: c.Purpose = "activate" if known.status == "invited" else "confirm"
        await send(_mail(known, purpose, await c.issue_link(conn, known.email, purpose, now)))
        return known
    event = d.PersonInvited(
        occurred_at=now,
        by=admin.email,
        email=email,
        profile=profile,
        organisation_id=organisation_id,
    )
    await record(conn, [event])
    person = await _existing(conn, email)
    await send(_mail(person, "activate", await c.issue_link(conn, person.email, "activate", now)))
    return person


async def link(
    conn: asyncpg.Connection,
    admin: Account,
    policies: Mapping[str, DeskPolicy],
    email: str,
    organisation_id: str | None,
    now: datetime,
) -> Account:
    """Link a person to an organisation (None: unlink them)."""
    person = await _existing(conn, email)
    check_manages(admin, person, policies)
    events: list[d.DirectoryEvent] = []
    if person.organisation_id is not None and person.organisation_id != organisation_id:
        events.append(
            d.PersonUnlinked(
                occurred_at=now, by=admin.email, email=person.email,
                organisation_id=person.organisation_id,
            )
        )  # fmt: skip
    if organisation_id is not None and organisation_id != person.organisation_id:
        await _known_organisation(conn, organisation_id)
        events.append(
            d.PersonLinked(
                occurred_at=now, by=admin.email, email=person.email, organisation_id=organisation_id
            )
        )
    await record(conn, events)
    return await _existing(conn, email)


async def grant(
    conn: asyncpg.Connection,
    admin: Account,
    policies: Mapping[str, DeskPolicy],
    email: str,
    desk: str,
    role: str,
    now: datetime,
    *,
    revoke: bool = False,
) -> Account:
    """Grant (or revoke) a desk role."""
    check_grant(admin, policies, desk, role, email)
    person = await _existing(conn, email)
    held = role in person.roles.get(desk, ())
    if held == revoke:
        kind = d.RoleRevoked if revoke else d.RoleGranted
        await record(
            conn,
            [kind(occurred_at=now, by=admin.email, email=person.email, desk_id=desk, role=role)],
        )
    return await _existing(conn, email)


async def deactivate(
    conn: asyncpg.Connection,
    admin: Account,
    policies: Mapping[str, DeskPolicy],
    email: str,
    now: datetime,
    *,
    again: bool = False,
) -> Account:
    """Deactivate a person (signed out everywhere, API tokens dead), or reactivate them."""
    person = await _existing(conn, email)
    check_manages(admin, person, policies)
    if again and person.status == "deactivated":
        await record(
            conn, [d.PersonReactivated(occurred_at=now, by=admin.email, email=person.email)]
        )
    elif not again and person.status != "deactivated":
        async with conn.transaction():
            await record(
                conn, [d.PersonDeactivated(occurred_at=now, by=admin.email, email=person.email)]
            )
            await c.close_sessions_of(conn, person.email)
            await conn.execute(
                "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE email = $1",
                person.email, now,
            )  # fmt: skip
    return await _existing(conn, email)


async def record_organisation(
    conn: asyncpg.Connection,
    admin: Account,
    policies: Mapping[str, DeskPolicy],
    organisation: Mapping[str, Any],
    now: datetime,
) -> None:
    """Create or change an organisation (its name, its mail domains)."""
    check_administers_all(admin, policies)
    await record(conn, [d.OrganisationRecorded(occurred_at=now, by=admin.email, **organisation)])


async def sso_sign_in(
    conn: asyncpg.Connection,
    email: str,
    name: str,
    roles: Mapping[str, tuple[str, ...]],
    now: datetime,
    managed: Mapping[str, frozenset[str]],
) -> Account | None:
    """A member of staff signed in by the identity provider: their account (made on first
    sign-in), with the desk roles the provider's groups map to, granted and revoked to match
    among the roles the map manages (`managed`, desk -> roles: a role granted otherwise, by a
    desk's lead, stays). None for a deactivated account."""
    person = await account(conn, email)
    events: list[d.DirectoryEvent] = []
    if person is None:
        profile = d.Profile(name=name or email)
        events += [
            d.PersonInvited(occurred_at=now, by="sso", email=email, profile=profile),
            d.PersonActivated(occurred_at=now, by="sso", email=email),
        ]
        held: Mapping[str, tuple[str, ...]] = {}
    elif person.status == "deactivated":
        return None
    else:
        held = person.roles
        if person.status != "active":
            events.append(d.PersonActivated(occurred_at=now, by="sso", email=email))
    for desk in sorted(set(held) | set(roles)):
        for role in sorted(set(roles.get(desk, ())) - set(held.get(desk, ()))):
            events.append(
                d.RoleGranted(occurred_at=now, by="sso", email=email, desk_id=desk, role=role)
            )
        lost = set(held.get(desk, ())) - set(roles.get(desk, ()))
        for role in sorted(lost & managed.get(desk, frozenset())):
            events.append(
                d.RoleRevoked(occurred_at=now, by="sso", email=email, desk_id=desk, role=role)
            )
    await record(conn, events)
    return await account(conn, email)
