"""The people who work at a desk, as the portal's directory has them: whom the console's
assignment form offers (workflow assigns staff of the request's desk only)."""

from __future__ import annotations

import asyncpg

from portal.domain.console_commands import Person

MAX_STAFF = 500  # people one assignment form lists


async def staff_of(conn: asyncpg.Connection, desk_id: str) -> list[Person]:
    """The people holding a role at `desk_id` who may still sign in, by name."""
    rows = await conn.fetch(
        """SELECT email, name FROM people
           WHERE roles ? $1 AND status <> 'deactivated'
           ORDER BY lower(name), email LIMIT $2""",
        desk_id,
        MAX_STAFF,
    )
    return [Person(row["email"], row["name"]) for row in rows]
