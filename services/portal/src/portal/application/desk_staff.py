"""Who works at a desk, from the portal's own read model of the directory (`people`): the
people a request of that desk may be assigned to (workflow admits as assignee only staff of the
request's desk, `Directory.may_be_assigned`), for the console's assignment forms."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

import asyncpg

MAX_STAFF = 500  # people offered in one form


@dataclass(frozen=True)
class StaffMember:
    """A person who works at a desk: their address, name, and roles there."""

    email: str
    name: str
    roles: tuple[str, ...]


async def staff_of(
    conn: asyncpg.Connection, desk_id: str, support_roles: Collection[str]
) -> list[StaffMember]:
    """The people not deactivated holding one of `support_roles` at `desk_id`, by name."""
    rows = await conn.fetch(
        "SELECT email, name, roles FROM people WHERE roles ? $1 AND status <> 'deactivated'"
        " ORDER BY name, email LIMIT $2",
        desk_id, MAX_STAFF,
    )  # fmt: skip
    found = []
    for row in rows:
        roles = json.loads(row["roles"]) if isinstance(row["roles"], str) else row["roles"]
        held = tuple(r for r in roles.get(desk_id, ()) if r in support_roles)
        if held:
            found.append(StaffMember(row["email"], row["name"], held))
    return found
