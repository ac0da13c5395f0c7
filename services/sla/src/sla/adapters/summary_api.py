"""A desk's SLA figures for its leads' dashboard: `GET /desks/{policy_id}/summary`.

- **Today**: the SLA warnings and breaches sla fired today, the day of the desk's calendar (its
  time zone: midnight to midnight there), by clock and by priority. They are read from what sla
  itself appended when its timers fired (`sla.application.timers._fire`): the
  `SlaWarningReached` / `SlaBreached` events of its event store (the `events` table that is its
  outbox), counted by the instant each says it happened (`occurred_at`).
- **Compliance** of a month (`month=YYYY-MM`, UTC as the report counts; the current one when
  absent) per priority, computed by the compliance report's own projection
  (`sla.domain.compliance.tally`, the rule `compliance` applies to a replayed log). Its input is
  built from what sla keeps instead of the log: a request's creation is the first step of its
  timeline (`request_steps` at version 1: the instant and the priority its `TicketCreated` gave
  it, as the state workflow published with that event says), its desk is its latest published
  state's (`request_states`), and its breaches are the `SlaBreached` events sla stored. So the
  dashboard and the report agree on the same requests, without sla folding any ticket event.

For the desk's support side only (a support role there, `desk_policies.audience`): 403 for
anyone else (deny by default), 404 for an unknown desk, 401 without a verified identity; 422 for
a month that is not one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query

from desk_contracts.identity import Identity
from desk_contracts.inputs import quoted
from desk_platform.http import IDENTITY_ANSWERS, RoleChoice, refusals
from desk_platform.identity import Verifier, requires_identity
from desk_policies.audience import Audience, NotYourRole, reader_desks
from desk_policies.model import DeskPolicy
from sla.application.timers import Desks
from sla.domain.compliance import Creation, Row, month_of, tally

MONTH = r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$"  # YYYY-MM, 1970-01 to 2999-12
FIRED = ("SlaWarningReached", "SlaBreached")
CLOCKS = ("response", "resolution")

SUMMARY_ANSWERS = {
    **IDENTITY_ANSWERS,
    **refusals(
        {
            403: "not the desk's support side (or a role X-Actor-Role chooses that the identity "
            "does not grant)",
            404: "no such desk",
        }
    ),
}


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first instant of `month` (YYYY-MM, UTC) and of the month after it."""
    year, number = int(month[:4]), int(month[5:7])
    start = datetime(year, number, 1, tzinfo=UTC)
    after = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, after


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Midnight of `day` and of the day after in `zone`, in UTC (23 or 25 hours
    apart across a change of daylight-saving time)."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    after = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), after.astimezone(UTC)


def in_priority_order(policy: DeskPolicy, found: Iterable[str]) -> list[str]:
    """The desk's priorities (lowest first), then any other one `found` names (a priority the
    policy no longer has), sorted."""
    ids = [p.id for p in policy.priorities]
    return ids + sorted(set(found) - set(ids))


def fired_today(policy: DeskPolicy, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Warnings and breaches counted (rows of event type, clock, priority and count) in total,
    by clock and by priority."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        counts[(row["event_type"], row["clock"], row["priority"])] += row["n"]

    def total(event_type: str, clock: str | None = None, priority: str | None = None) -> int:
        return sum(
            n
            for (kind, c, p), n in counts.items()
            if kind == event_type and clock in (None, c) and priority in (None, p)
        )

    def figures(event_type: str) -> dict[str, int]:
        return {"total": total(event_type), **{c: total(event_type, c) for c in CLOCKS}}

    return {
        "warnings": figures("SlaWarningReached"),
        "breaches": figures("SlaBreached"),
        "by_priority": [
            {
                "priority": p,
                "warnings": total("SlaWarningReached", priority=p),
                "breaches": total("SlaBreached", priority=p),
            }
            for p in in_priority_order(policy, (p for _, _, p in counts))
        ],
    }


def compliance_of(policy: DeskPolicy, month: str, rows: list[Row]) -> dict[str, Any]:
    """The month's rows of the projection, one per priority of the desk (no request: none
    breached, nothing to keep: `*_kept` None), each share kept between 0 and 1."""
    found = {r.priority: r for r in rows if r.month == month}
    priorities = []
    for p in in_priority_order(policy, found):
        row = found.get(p, Row(month, p))
        priorities.append(
            {
                "priority": p,
                "requests": row.requests,
                "response_breached": row.response_breached,
                "resolution_breached": row.resolution_breached,
                "response_kept": row.response_kept if row.requests else None,
                "resolution_kept": row.resolution_kept if row.requests else None,
            }
        )
    return {"month": month, "priorities": priorities}


def summary_router(
    pool: asyncpg.Pool, desks: Desks, clock: Callable[[], datetime], verifier: Verifier
) -> APIRouter:
    """The route described in the module docstring."""
    router = APIRouter()
    identified = Depends(requires_identity(verifier))

    @router.get("/desks/{policy_id}/summary", responses=SUMMARY_ANSWERS)
    async def desk_summary(
        policy_id: Annotated[str, Path(min_length=1, max_length=100)],
        month: Annotated[str | None, Query(pattern=MONTH)] = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> dict[str, Any]:
        """Today's SLA warnings and breaches (the desk calendar's day) and the SLA compliance
        of `month` per priority, from the compliance report's projection (see module)."""
        policy = desks.policies.get(policy_id)
        if policy is None:
            raise HTTPException(404, f"no desk {quoted(policy_id)}")
        try:
            reads = reader_desks(identity, desks.policies.values(), x_actor_role)
        except NotYourRole as error:
            raise HTTPException(403, str(error)) from None
        if reads.get(policy_id) is not Audience.SUPPORT:
            raise HTTPException(403, f"the summary is for the support side of desk {policy_id}")
        now = clock()
        chosen = month or month_of(now)
        zone = desks.calendars[policy.sla.calendar].zone
        today = now.astimezone(zone).date()
        day_start, day_end = day_bounds(today, zone)
        month_start, month_end = month_bounds(chosen)
        async with pool.acquire() as conn:
            fired = await conn.fetch(
                """SELECT e.event_type, e.payload->>'clock' AS clock,
                          e.payload->>'priority' AS priority, count(*) AS n
                   FROM events AS e JOIN request_states AS r ON r.ticket_id = e.stream_id
                   WHERE e.event_type = ANY($1::text[]) AND r.state->>'policy_id' = $2
                     AND (e.payload->>'occurred_at')::timestamptz >= $3
                     AND (e.payload->>'occurred_at')::timestamptz < $4
                   GROUP BY 1, 2, 3""",
                list(FIRED), policy_id, day_start, day_end,
            )  # fmt: skip
            created = await conn.fetch(
                """SELECT s.ticket_id, s.at, s.priority,
                          array_remove(array_agg(DISTINCT e.payload->>'clock'), NULL) AS breached
                   FROM request_steps AS s
                   JOIN request_states AS r ON r.ticket_id = s.ticket_id
                   LEFT JOIN events AS e
                     ON e.stream_id = s.ticket_id AND e.event_type = 'SlaBreached'
                   WHERE s.version = 1 AND r.state->>'policy_id' = $1
                     AND s.at >= $2 AND s.at < $3
                   GROUP BY s.ticket_id, s.at, s.priority""",
                policy_id, month_start, month_end,
            )  # fmt: skip
        rows = tally(
            (Creation(r["ticket_id"], month_of(r["at"]), r["priority"]) for r in created),
            ((r["ticket_id"], kind) for r in created for kind in r["breached"]),
        )
        return {
            "policy_id": policy_id,
            "today": {
                "date": today.isoformat(),
                "time_zone": str(zone.key),
                **fired_today(policy, fired),
            },
            "compliance": compliance_of(policy, chosen, rows),
        }

    return router
