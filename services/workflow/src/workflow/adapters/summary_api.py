"""A desk's figures for its leads' dashboard, from what workflow owns:
`GET /desks/{policy_id}/summary`.

- **Open requests** (those whose status is not of the closed category), counted by status and
  by the role expected to act, from the read model `tickets` (one grouped count on the index by
  desk and expected actor). Every open or waiting status of the desk is told, in the policy's
  order, with 0 when no request is there; so is every role one of them expects.
- **Satisfaction**: the ratings of the desk's requests, the `SurveyAnswered` events of
  workflow's event store (the survey answers it accepted): how many answers per rating, from 1
  to the desk's scale, and their average (None without an answer); optionally of a period,
  `since` and `until` (days, `YYYY-MM-DD`, in the desk's time zone: from `since`'s midnight
  there, up to `until`'s excluded), by when each answer was given.

For the desk's support side only (a support role there: `desk_policies.audience`): 403 for
anyone else, deny by default; 404 for an unknown desk, 401 without a verified identity, 422 for
a day that is not one or a period that ends before it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query

from desk_contracts.identity import Identity
from desk_contracts.inputs import quoted
from desk_platform.http import IDENTITY_ANSWERS, SCHEMAS, RoleChoice, refusals
from desk_platform.identity import Verifier, requires_identity
from desk_policies.audience import Audience
from desk_policies.model import DeskPolicy, StatusCategory
from workflow.adapters import search_api
from workflow.adapters.readers import desks_read_by

DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

SUMMARY_ANSWERS: dict[int | str, dict[str, Any]] = {
    **IDENTITY_ANSWERS,
    **refusals(
        {
            403: "not the desk's support side (or a role X-Actor-Role chooses that the identity "
            "does not grant)",
            404: "no such desk",
        }
    ),
    422: {
        "description": "invalid input, or a day that is not one, or a period that ends before "
        "it starts (a sentence)",
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": f"{SCHEMAS}HTTPValidationError"},
                        {"$ref": f"{SCHEMAS}Problem"},
                    ]
                }
            }
        },
    },
}


def day_start(day: str | None, policy: DeskPolicy, name: str) -> datetime | None:
    """Midnight of `day` (YYYY-MM-DD) in the desk's time zone, in UTC; None for no day; 422
    naming the parameter for a date that does not exist."""
    if day is None:
        return None
    try:
        found = date.fromisoformat(day)
    except ValueError:
        raise HTTPException(422, f"{name}: {quoted(day)} is not a day (YYYY-MM-DD)") from None
    return search_api.day_start(found, policy.zone).astimezone(UTC)  # the same bounds


def open_requests(policy: DeskPolicy, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The open requests counted (rows of status, expected actor and count) in total, by
    status and by expected actor (see module)."""
    by_status: dict[str, int] = {}
    by_actor: dict[str | None, int] = {}
    for s in policy.statuses:
        if s.category is not StatusCategory.CLOSED:
            by_status[s.id] = 0
            by_actor.setdefault(s.expected_actor, 0)
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        by_actor[row["expected_actor"]] = by_actor.get(row["expected_actor"], 0) + row["n"]
    return {
        "total": sum(by_status.values()),
        "by_status": [{"status": s, "count": n} for s, n in by_status.items()],
        "by_expected_actor": [{"expected_actor": a, "count": n} for a, n in by_actor.items()],
    }


def satisfaction(
    policy: DeskPolicy, since: str | None, until: str | None, rows: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The answers counted (rows of rating and count) per rating from 1 to the desk's scale,
    and their average rating (None without an answer)."""
    scale = policy.survey.scale
    counts = dict.fromkeys(range(1, scale + 1), 0)
    for row in rows:
        if row["rating"] in counts:
            counts[row["rating"]] += row["n"]
    answers = sum(counts.values())
    average = sum(r * n for r, n in counts.items()) / answers if answers else None
    return {
        "enabled": policy.survey.enabled,
        "scale": scale,
        "since": since,
        "until": until,
        "answers": answers,
        "by_rating": [{"rating": r, "count": n} for r, n in counts.items()],
        "average": None if average is None else round(average, 2),
    }


def summary_router(
    pool: asyncpg.Pool, policies: Mapping[str, DeskPolicy], verifier: Verifier
) -> APIRouter:
    """The route described in the module docstring."""
    router = APIRouter()
    identified = Depends(requires_identity(verifier))

    @router.get("/desks/{policy_id}/summary", responses=SUMMARY_ANSWERS)
    async def desk_summary(
        policy_id: Annotated[str, Path(min_length=1, max_length=100)],
        since: Annotated[str | None, Query(pattern=DAY)] = None,
        until: Annotated[str | None, Query(pattern=DAY)] = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> dict[str, Any]:
        """A desk's open requests by status and by expected actor, and its satisfaction
        ratings (of the period from `since` to `until` excluded, when given; see module)."""
        policy = policies.get(policy_id)
        if policy is None:
            raise HTTPException(404, f"no desk {quoted(policy_id)}")
        reads = desks_read_by(identity, policies.values(), x_actor_role)
        if reads.get(policy_id) is not Audience.SUPPORT:
            raise HTTPException(403, f"the summary is for the support side of desk {policy_id}")
        start, end = day_start(since, policy, "since"), day_start(until, policy, "until")
        if start is not None and end is not None and end <= start:
            raise HTTPException(422, "until: the period ends before it starts")
        async with pool.acquire() as conn:
            counted = await conn.fetch(
                """SELECT status, expected_actor, count(*) AS n FROM tickets
                   WHERE policy_id = $1 AND category <> 'closed'
                   GROUP BY status, expected_actor""",
                policy_id,
            )
            rated = await conn.fetch(
                """SELECT (e.payload->>'rating')::int AS rating, count(*) AS n
                   FROM events AS e JOIN tickets AS t ON t.ticket_id = e.stream_id
                   WHERE e.event_type = 'SurveyAnswered' AND t.policy_id = $1
                     AND ($2::timestamptz IS NULL
                          OR (e.payload->>'occurred_at')::timestamptz >= $2)
                     AND ($3::timestamptz IS NULL
                          OR (e.payload->>'occurred_at')::timestamptz < $3)
                   GROUP BY 1""",
                policy_id, start, end,
            )  # fmt: skip
        return {
            "policy_id": policy_id,
            "open": open_requests(policy, counted),
            "satisfaction": satisfaction(policy, since, until, rated),
        }

    return router
