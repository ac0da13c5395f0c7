"""The directory the portal owns: its events appended to the store (the outbox the relay
publishes on the `directory` topic) and applied, in the same transaction, to the read model
(`people`, `organisations`) the portal answers from."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from desk_contracts import directory as d
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append, read_stream
from portal.domain.accounts import Account


async def record(conn: asyncpg.Connection, events: Sequence[d.DirectoryEvent]) -> None:
    """Append `events` and apply them to the read model, in one transaction."""
    async with conn.transaction():
        for event in events:
            new = NewEvent(
                uuid.uuid4(), event.event_type, event.model_dump(mode="json"), event.schema_version
            )
            await append(conn, event.stream_id, None, [new], bounded=False)
            await _apply(conn, event)


async def _apply(conn: asyncpg.Connection, event: d.DirectoryEvent) -> None:
    at = event.occurred_at
    match event:
        case d.OrganisationRecorded():
            await conn.execute(
                "INSERT INTO organisations (organisation_id, name, domains) VALUES ($1, $2, $3)"
                " ON CONFLICT (organisation_id) DO UPDATE SET name = $2, domains = $3",
                event.organisation_id, event.name, list(event.domains),
            )  # fmt: skip
        case d.PersonInvited() | d.PersonRegistered():
            status = "invited" if isinstance(event, d.PersonInvited) else "registered"
            organisation = getattr(event, "organisation_id", None)
            p = event.profile
            await conn.execute(
                "INSERT INTO people (email, name, phone, language, date_format, organisation_id,"
                " status, created_at, updated_at, time_zone)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)"
                " ON CONFLICT (email) DO UPDATE SET name = $2, phone = $3, language = $4,"
                " date_format = $5, organisation_id = coalesce($6, people.organisation_id),"
                " updated_at = $8, time_zone = $9",
                event.email, p.name, p.phone, p.language, p.date_format, organisation, status, at,
                p.time_zone,
            )  # fmt: skip
        case d.PersonActivated() | d.PersonReactivated():
            await _set(conn, event.email, at, "status = 'active', activated = true")
        case d.PersonDeactivated():
            await _set(conn, event.email, at, "status = 'deactivated'")
        case d.ProfileChanged():
            p = event.profile
            await conn.execute(
                "UPDATE people SET name = $2, phone = $3, language = $4, date_format = $5,"
                " updated_at = $6, time_zone = $7 WHERE email = $1",
                event.email, p.name, p.phone, p.language, p.date_format, at, p.time_zone,
            )  # fmt: skip
        case d.PersonLinked():
            await _set(conn, event.email, at, "organisation_id = $3", event.organisation_id)
        case d.PersonUnlinked():
            await _set(conn, event.email, at, "organisation_id = NULL")
        case d.RoleGranted() | d.RoleRevoked():
            row = await conn.fetchval(  # locked: a grant and a revoke at once apply in turn
                "SELECT roles FROM people WHERE email = $1 FOR UPDATE", event.email
            )
            roles: dict[str, list[str]] = json.loads(row) if row else {}
            held = [r for r in roles.get(event.desk_id, []) if r != event.role]
            if isinstance(event, d.RoleGranted):
                held.append(event.role)
            roles = {**roles, event.desk_id: held}
            roles = {desk: r for desk, r in roles.items() if r}
            await _set(conn, event.email, at, "roles = $3::jsonb", json.dumps(roles))


async def _set(conn: asyncpg.Connection, email: str, at: Any, change: str, *values: Any) -> None:
    await conn.execute(
        f"UPDATE people SET {change}, updated_at = $2 WHERE email = $1", email, at, *values
    )


def _account(row: asyncpg.Record) -> Account:
    roles = json.loads(row["roles"]) if isinstance(row["roles"], str) else row["roles"]
    return Account(
        email=row["email"],
        name=row["name"],
        status=row["status"],
        organisation_id=row["organisation_id"],
        language=row["language"],
        date_format=row["date_format"],
        time_zone=row["time_zone"] or "UTC",
        phone=row["phone"],
        roles={desk: tuple(r) for desk, r in roles.items()},
    )


async def account(conn: asyncpg.Connection, email: str) -> Account | None:
    """The account of `email` (as typed: compared lower-cased), or None."""
    row = await conn.fetchrow("SELECT * FROM people WHERE email = $1", email.lower())
    return None if row is None else _account(row)


async def accounts(
    conn: asyncpg.Connection, organisation_id: str | None = None, limit: int = 200
) -> list[Account]:
    """The accounts (of one organisation), by address."""
    rows = await conn.fetch(
        "SELECT * FROM people WHERE $1::text IS NULL OR organisation_id = $1"
        " ORDER BY email LIMIT $2",
        organisation_id, limit,
    )  # fmt: skip
    return [_account(row) for row in rows]


async def people_of(
    conn: asyncpg.Connection, desks: Collection[str], words: str, limit: int, offset: int
) -> tuple[list[Account], int]:
    """The customers (no desk role) and the staff of `desks` (a role at one of them), whose
    name or address holds `words` (any case; every one when empty), by name: the page of
    `limit` from `offset`, and how many there are in all."""
    where = (
        "(roles = '{}'::jsonb OR roles ?| $1::text[])"
        " AND ($2 = '' OR strpos(lower(name), $2) > 0 OR strpos(email, $2) > 0)"
    )
    found = words.lower()
    total = await conn.fetchval(f"SELECT count(*) FROM people WHERE {where}", list(desks), found)
    rows = await conn.fetch(
        f"SELECT * FROM people WHERE {where} ORDER BY lower(name), email LIMIT $3 OFFSET $4",
        list(desks), found, limit, offset,
    )  # fmt: skip
    return [_account(row) for row in rows], int(total)


@dataclass(frozen=True)
class Organisation:
    """An organisation as the read model holds it, and how many people belong to it."""

    organisation_id: str
    name: str
    domains: tuple[str, ...]
    people: int


async def organisations(conn: asyncpg.Connection) -> list[Organisation]:
    """Every organisation, by name."""
    rows = await conn.fetch(
        "SELECT o.organisation_id, o.name, o.domains,"
        " (SELECT count(*) FROM people p WHERE p.organisation_id = o.organisation_id) AS people"
        " FROM organisations o ORDER BY lower(o.name), o.organisation_id"
    )
    return [
        Organisation(r["organisation_id"], r["name"], tuple(r["domains"]), int(r["people"]))
        for r in rows
    ]


async def organisation_exists(conn: asyncpg.Connection, organisation_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM organisations WHERE organisation_id = $1", organisation_id
        )
    )


async def is_empty(conn: asyncpg.Connection) -> bool:
    """Has the directory no person and no organisation yet (a fresh installation)?"""
    return not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM people) OR EXISTS (SELECT 1 FROM organisations)"
    )


async def history(conn: asyncpg.Connection, email: str) -> list[dict[str, Any]]:
    """Every change of a person's entry, oldest first, with who made it and when."""
    events = await read_stream(conn, d.person_stream(email))
    return [
        {
            "version": e.stream_version,
            "change": e.event_type,
            "by": e.payload.get("by"),
            "at": e.payload.get("occurred_at"),
            "data": {k: v for k, v in e.payload.items() if k not in ("by", "occurred_at")},
        }
        for e in events
    ]
