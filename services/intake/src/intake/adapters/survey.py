"""The satisfaction survey's JSON API: `GET /surveys/{token}` tells what the survey is about,
`POST /surveys/{token}` records the answer. The portal renders the pages people see.

The token is the only credential (signed, expiring: `desk_platform.survey_tokens`): no identity
is asked, so the routes stay outside intake's identity dependency. Reading records nothing (a
mail scanner opening the link must not answer it); posting `{rating, comment}` records the
rating once (201), a second answer gets 409 saying when the first was given. A forged token gets
403, an expired one 410 saying when it expired; a rating off the desk's scale, a comment too
long or holding what cannot be stored, or a field the answer does not have gets 422 naming the
field. Answers are never cached and never leak the token as a referrer. Each answer recorded is
told to `answered` (desk, rating: `intake.adapters.metrics.SurveyMetrics`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from desk_platform.edge import refusal
from desk_platform.http import BODY_ANSWERS, field_refusals
from desk_platform.survey_tokens import (
    ExpiredToken,
    InvalidToken,
    SurveyClaim,
    genuine_claim,
    unexpired,
)
from desk_platform.testclocks import RequestTime, TestClocks
from desk_policies.model import DeskPolicy
from intake.application.survey import AlreadyAnswered, previous_answer, record_answer

MAX_COMMENT = 4000  # characters of a survey comment
MAX_TOKEN = 1000  # a survey token is about 250 characters
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
Token = Annotated[str, Path(max_length=MAX_TOKEN, description="the signed link's token")]


class Survey(BaseModel):
    """What a survey link is about, and whether it was answered."""

    key: str = Field(description="the request's key")
    scale: int = Field(description="ratings go from 1 to this")
    language: str = Field(description="the respondent's language when the link was made")
    expires_at: datetime
    answered: bool
    answered_at: datetime | None = None
    rating: int | None = Field(default=None, description="the rating given, once answered")


class SurveyAnswer(BaseModel):
    """A respondent's answer: a rating on the desk's scale and an optional comment."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rating: int = Field(ge=1, le=10, description="from 1 to the desk's scale")
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class Answered(BaseModel):
    """The answer recorded (201)."""

    key: str
    rating: int
    scale: int


class Refused(BaseModel):
    """A link refused (403 forged, 410 expired) or already answered (409)."""

    detail: str
    expired_at: datetime | None = None
    language: str | None = Field(default=None, description="an expired link's language")
    answered_at: datetime | None = None


LINK_ANSWERS: dict[int | str, dict[str, Any]] = {
    403: {"model": Refused, "description": "a forged or malformed link"},
    410: {"model": Refused, "description": "an expired link: `expired_at` says when"},
}
SENT_ANSWERS: dict[int | str, dict[str, Any]] = {
    **LINK_ANSWERS,
    409: {"model": Refused, "description": "already answered: `answered_at` says when"},
    **field_refusals({422: "a rating off the desk's scale, a comment too long, or an unknown "
                      "field: `detail` names it"}),
    **BODY_ANSWERS,
}  # fmt: skip


def _json(status: int, content: Any) -> JSONResponse:
    return JSONResponse(content, status_code=status, headers=HEADERS)


def _link_refused(error: InvalidToken | ExpiredToken) -> JSONResponse:
    if isinstance(error, ExpiredToken):
        claim = error.claim
        expired = Refused(detail=str(error), expired_at=claim.expires_at, language=claim.language)
        return _json(410, expired.model_dump(mode="json"))
    return _json(403, Refused(detail=str(error)).model_dump(mode="json"))


def survey_router(
    pool: asyncpg.Pool,
    policies: dict[str, DeskPolicy],
    secret: str,
    clock: Callable[[], datetime],
    answered: Callable[[str, int], None] = lambda desk, rating: None,
    test_clocks: TestClocks | None = None,
) -> APIRouter:
    """The survey's routes (see module); `secret` checks the links' signatures; `answered` is
    told the desk and rating of each answer recorded; a link of a request on a test clock
    expires on that clock's time (`test_clocks`: those this process knows; None: not enabled)."""
    router = APIRouter(tags=["survey"])
    times = RequestTime(clock, test_clocks)

    def claim_of(token: str) -> SurveyClaim | JSONResponse:
        try:
            claim = genuine_claim(secret, token)
            return unexpired(claim, times.now(claim.test_clock))
        except (ExpiredToken, InvalidToken) as error:
            return _link_refused(error)

    def scale_of(claim: SurveyClaim) -> int:
        policy = policies.get(claim.policy_id)
        return policy.survey.scale if policy else 5

    @router.get("/surveys/{token}", response_model=Survey, responses=LINK_ANSWERS)
    async def show(token: Token) -> JSONResponse:
        """What the link is about and whether it was answered; records nothing."""
        claim = claim_of(token)
        if isinstance(claim, JSONResponse):
            return claim
        answer = await previous_answer(pool, claim.ticket_id)
        survey = Survey(
            key=claim.key,
            scale=scale_of(claim),
            language=claim.language,
            expires_at=claim.expires_at,
            answered=answer is not None,
            answered_at=answer.answered_at if answer else None,
            rating=answer.rating if answer else None,
        )
        return _json(200, survey.model_dump(mode="json"))

    @router.post(
        "/surveys/{token}", status_code=201, response_model=Answered, responses=SENT_ANSWERS
    )
    async def submit(token: Token, answer: SurveyAnswer) -> JSONResponse:
        """Record the rating (and comment) once; a second answer gets 409."""
        claim = claim_of(token)
        if isinstance(claim, JSONResponse):
            return claim
        scale = scale_of(claim)
        if answer.rating > scale:
            reason = f"must be from 1 to {scale}"
            return _json(422, {"detail": [refusal(("body", "rating"), reason, "less_than_equal")]})
        comment = (answer.comment or "").strip() or None
        outcome = await record_answer(
            pool, claim, answer.rating, comment, times.now(claim.test_clock)
        )
        if isinstance(outcome, AlreadyAnswered):
            already = Refused(
                detail=f"{claim.key} was already rated", answered_at=outcome.answered_at
            )
            return _json(409, already.model_dump(mode="json"))
        answered(claim.policy_id, answer.rating)
        recorded = Answered(key=claim.key, rating=answer.rating, scale=scale)
        return _json(201, recorded.model_dump(mode="json"))

    return router
