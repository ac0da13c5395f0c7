"""Record a satisfaction-survey answer: once per request, as `SurveySubmitted` in intake's store.

Only submitting the form records anything (opening the link does not: mail scanners follow
links). The answer row and the event are written in one transaction; the event goes on the
ticket's stream of intake's store (stream id = ticket id, so the relay keys it by ticket) and the
relay forwards it to workflow's commands, which turns it into `SurveyAnswered`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from desk_contracts.requests import SurveySubmitted
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append
from desk_platform.survey_tokens import SurveyClaim

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Recorded:
    event_id: str


@dataclass(frozen=True)
class AlreadyAnswered:
    rating: int
    answered_at: datetime


async def previous_answer(pool: asyncpg.Pool, ticket_id: str) -> AlreadyAnswered | None:
    row = await pool.fetchrow(
        "SELECT rating, answered_at FROM survey_answers WHERE ticket_id = $1", ticket_id
    )
    return AlreadyAnswered(row["rating"], row["answered_at"]) if row else None


async def record_answer(
    pool: asyncpg.Pool,
    claim: SurveyClaim,
    rating: int,
    comment: str | None,
    now: datetime,
) -> Recorded | AlreadyAnswered:
    """Record the answer of `claim`'s respondent, unless the request was already rated."""
    event_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO survey_answers (ticket_id, key, respondent, rating, comment, event_id,
                                           answered_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ticket_id) DO NOTHING
               RETURNING ticket_id""",
            claim.ticket_id,
            claim.key,
            claim.respondent,
            rating,
            comment,
            event_id,
            now,
        )
        if inserted is None:
            previous = await conn.fetchrow(
                "SELECT rating, answered_at FROM survey_answers WHERE ticket_id = $1",
                claim.ticket_id,
            )
            return AlreadyAnswered(previous["rating"], previous["answered_at"])
        event = SurveySubmitted(
            ticket_id=claim.ticket_id,
            occurred_at=now,
            respondent_id=claim.respondent,
            rating=rating,
            comment=comment,
        )
        new = NewEvent.from_event(event, event_id=event_id, metadata={"correlationid": claim.key})
        # at the stream's end, wherever that is: the version is read under the stream's lock
        await append(conn, claim.ticket_id, None, [new], bounded=False)
    log.info("survey_answered", ticket_id=claim.ticket_id, key=claim.key, rating=rating)
    return Recorded(str(event_id))
