"""The agents' queues, served by sla's board alone: a desk's requests filtered by category,
status, who is expected to act, assignee, or how close their clocks are to a breach, the most
urgent first, each with both clocks (state, why, due and warning instants) and the business time
left on the desk's calendar; and the counts of the usual queues in one read.

Sorted by the business time left on the running clock: the earliest due instant first (a
request with no running clock after), then the business seconds left when the row was written
(a paused clock keeps what it had left), then the key. `due=breached`: a running clock past its
due instant; `due=soon`: a running clock past its warning instant, none past due yet.

For the desk's support side only (403 for anyone else, as `/board`): who reads comes first, an
identity that reads no desk's requests gets 403 before any desk is looked up. Every parameter is
bounded and goes to SQL as a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, StringConstraints

from desk_contracts.identity import Identity
from desk_contracts.inputs import MAX_ADDRESS, address, quoted
from desk_platform.http import IDENTITY_ANSWERS, RoleChoice, refusals
from desk_platform.identity import Verifier, requires_identity
from desk_policies.audience import Audience, NotYourRole, reader_desks
from sla.application.timers import Desks
from sla.domain.business_time import BusinessTime

ID = r"^[a-z][a-z0-9_]{0,63}$"  # a status or role id (desk_policies.model.ID's alphabet)
MAX_LIMIT = 200
MAX_OFFSET = 100_000
MAX_STATUSES = 20
CATEGORIES = {  # the category filter -> its SQL (constant text, never the caller's)
    "active": "category <> 'closed'",
    "open": "category = 'open'",
    "waiting": "category = 'waiting'",
}
COPIED = ("key", "ticket_id", "subject", "status", "priority", "category", "expected_actor",
          "assignee_id", "group_id", "requester_id", "organisation_id", "created_at",
          "updated_at", "version", "next_due", "next_warning")  # fmt: skip
ORDER = "next_due ASC NULLS LAST, remaining_s ASC NULLS LAST, key"
ANSWERS = {
    **IDENTITY_ANSWERS,
    **refusals(
        {
            403: "not the desk's support side (or a role X-Actor-Role chooses that the identity "
            "does not grant)",
            404: "no such desk",
        }
    ),
}


class QueueClock(BaseModel):
    """One clock of a queue row as of the request's last event: its state (`not started`,
    `running`, `paused`, `stopped`), why, and its due and warning instants (None unless
    running, or breached)."""

    state: str | None
    reason: str | None
    due: datetime | None
    warning: datetime | None


class QueueRow(BaseModel):
    """A request in a queue: what the row shows and `business_time_left_s`, the business
    seconds left before the next breach at the time of asking (negative once breached; a paused
    clock's time left; None when no clock counts)."""

    key: str
    ticket_id: str
    subject: str | None
    status: str
    priority: str
    category: str | None
    expected_actor: str | None
    assignee_id: str | None
    group_id: str | None
    requester_id: str | None
    organisation_id: str | None
    created_at: datetime | None
    updated_at: datetime | None
    version: int
    response: QueueClock
    resolution: QueueClock
    next_due: datetime | None
    next_warning: datetime | None
    business_time_left_s: int | None


class QueueCounts(BaseModel):
    """How many requests of the desk not closed are in each usual queue, at the time of
    asking: all of them, waiting, unassigned, assigned to `assignee` (0 when not asked),
    breached, about to breach, and by status and by who is expected to act."""

    active: int
    waiting: int
    unassigned: int
    assigned: int
    breached: int
    soon: int
    by_status: dict[str, int]
    by_expected_actor: dict[str, int]


def _left(row: asyncpg.Record, now: datetime, calendar: BusinessTime) -> int | None:
    """The business seconds left on the row's most urgent clock at `now`."""
    due = row["next_due"]
    if due is None:
        remaining = row["remaining_s"]
        return None if remaining is None else int(remaining)
    left: timedelta = calendar.between(now, due) if due > now else -calendar.between(due, now)
    return int(left.total_seconds())


def _row(row: asyncpg.Record, now: datetime, calendar: BusinessTime) -> QueueRow:
    def clock(kind: str) -> QueueClock:
        return QueueClock(
            state=row[f"{kind}_state"],
            reason=row[f"{kind}_reason"],
            due=row[f"{kind}_due"],
            warning=row[f"{kind}_warning"],
        )

    return QueueRow(
        **{field: row[field] for field in COPIED},
        response=clock("response"),
        resolution=clock("resolution"),
        business_time_left_s=_left(row, now, calendar),
    )


def _assignee(text: str | None) -> str | None:
    """The assignee filter, an address (lower-cased); 422 when it is not one."""
    if text is None:
        return None
    try:
        return address(text).lower()
    except ValueError as error:
        raise HTTPException(422, f"assignee: {error}") from None


class _Where:
    """SQL conditions with their bound parameters ($1 is the desk)."""

    def __init__(self, policy_id: str) -> None:
        self.clauses = ["policy_id = $1"]
        self.args: list[Any] = [policy_id]

    def add(self, clause: str, *values: Any) -> None:
        """`clause` with `{}` marks for `values`, numbered in turn."""
        marks = []
        for value in values:
            self.args.append(value)
            marks.append(f"${len(self.args)}")
        self.clauses.append(clause.format(*marks))

    def __str__(self) -> str:
        return " AND ".join(self.clauses)


def queue_router(
    pool: asyncpg.Pool, desks: Desks, clock: Callable[[], datetime], *, verifier: Verifier
) -> APIRouter:
    """The routes `/queue` and `/queue/counts` (see the module)."""
    router = APIRouter(tags=["queues"])
    identified = Depends(requires_identity(verifier))

    def support_of(identity: Identity, role: str | None, policy_id: str) -> BusinessTime:
        """The desk's calendar when `identity` reads its requests as its support side; 403
        (reads nothing, a role not theirs, not the support side) or 404 (no such desk)."""
        try:
            read = reader_desks(identity, desks.policies.values(), role)
        except NotYourRole as error:
            raise HTTPException(403, str(error)) from None
        if policy_id not in desks.policies:
            raise HTTPException(404, f"no desk {quoted(policy_id)}")
        if read.get(policy_id) is not Audience.SUPPORT:
            raise HTTPException(403, f"the queues are for the support side of desk {policy_id}")
        return desks.of(policy_id)[1]

    @router.get("/queue", responses=ANSWERS)
    async def queue(
        response: Response,
        policy_id: Annotated[str, Query(min_length=1, max_length=100)],
        category: Annotated[str, Query(pattern="^(active|open|waiting)$")] = "active",
        status: Annotated[
            list[Annotated[str, StringConstraints(pattern=ID)]] | None,
            Query(max_length=MAX_STATUSES),
        ] = None,
        expected_actor: Annotated[str | None, Query(pattern=ID)] = None,
        assignee: Annotated[str | None, Query(min_length=3, max_length=MAX_ADDRESS)] = None,
        unassigned: bool = False,
        due: Annotated[str | None, Query(pattern="^(breached|soon)$")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> list[QueueRow]:
        """A desk's queue: its requests not closed (`category=active`), or those `open` or
        `waiting`, of one of the `status` ids, expected to be acted on by `expected_actor`,
        assigned to `assignee` (an address) or to no one (`unassigned=true`), breached or about
        to be (`due`); the most urgent first (see the module), one page of `limit` rows from
        `offset`. `X-Total-Count` says how many match."""
        calendar = support_of(identity, x_actor_role, policy_id)
        whom = _assignee(assignee)
        if whom is not None and unassigned:
            raise HTTPException(422, "give assignee or unassigned=true, not both")
        now = clock()
        where = _Where(policy_id)
        where.add(CATEGORIES[category])
        if status:
            where.add("status = ANY({}::text[])", list(dict.fromkeys(status)))
        if expected_actor is not None:
            where.add("expected_actor = {}", expected_actor)
        if whom is not None:
            where.add("assignee_id = {}", whom)
        if unassigned:
            where.add("assignee_id IS NULL")
        if due == "breached":
            where.add("next_due <= {}", now)
        elif due == "soon":
            where.add("next_warning <= {} AND next_due > {}", now, now)
        n = len(where.args)
        async with pool.acquire() as conn:
            total = await conn.fetchval(
                f"SELECT count(*) FROM clock_board WHERE {where}", *where.args
            )
            rows = await conn.fetch(
                f"""SELECT * FROM clock_board WHERE {where} ORDER BY {ORDER}
                    LIMIT ${n + 1} OFFSET ${n + 2}""",
                *where.args,
                limit,
                offset,
            )
        response.headers["X-Total-Count"] = str(total)
        return [_row(row, now, calendar) for row in rows]

    @router.get("/queue/counts", responses=ANSWERS)
    async def queue_counts(
        policy_id: Annotated[str, Query(min_length=1, max_length=100)],
        assignee: Annotated[str | None, Query(min_length=3, max_length=MAX_ADDRESS)] = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> QueueCounts:
        """How many of the desk's requests not closed each usual queue holds now (see
        `QueueCounts`): one read for a console's navigation."""
        support_of(identity, x_actor_role, policy_id)
        whom = _assignee(assignee)
        now = clock()
        async with pool.acquire() as conn:
            totals = await conn.fetchrow(
                """SELECT count(*) AS active,
                          count(*) FILTER (WHERE category = 'waiting') AS waiting,
                          count(*) FILTER (WHERE assignee_id IS NULL) AS unassigned,
                          count(*) FILTER (WHERE assignee_id = $2) AS assigned,
                          count(*) FILTER (WHERE next_due <= $3) AS breached,
                          count(*) FILTER (WHERE next_warning <= $3 AND next_due > $3) AS soon
                   FROM clock_board WHERE policy_id = $1 AND category <> 'closed'""",
                policy_id,
                whom,
                now,
            )
            groups = await conn.fetch(
                """SELECT status, expected_actor, count(*) AS n FROM clock_board
                   WHERE policy_id = $1 AND category <> 'closed'
                   GROUP BY status, expected_actor""",
                policy_id,
            )
        by_status: dict[str, int] = {}
        by_actor: dict[str, int] = {}
        for group in groups:
            by_status[group["status"]] = by_status.get(group["status"], 0) + group["n"]
            if group["expected_actor"] is not None:
                actor = group["expected_actor"]
                by_actor[actor] = by_actor.get(actor, 0) + group["n"]
        return QueueCounts(**dict(totals), by_status=by_status, by_expected_actor=by_actor)

    return router
