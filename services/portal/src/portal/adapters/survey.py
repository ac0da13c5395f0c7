"""The satisfaction survey's pages: `GET /survey/{token}` shows the five faces and a comment
box, `POST /survey/{token}` sends the answer to intake's survey API (`/surveys/{token}`).

No sign-in is needed: the mailed link's signed token authorises the answer, so intake is
called without a person's identity. Opening the page records nothing (mail scanners open
links). The form carries the browser's double-submit CSRF token (`Visit.csrf`, which works
before sign-in). An answer already given shows when (409 after a second sending), a forged
link gets 403, an expired one 410, each with a page saying so; a rating off the scale or a
comment too long gets the form again (422) with the reason beside the field. The pages are
never cached and never send the token as a referrer. The page speaks the language the link
was made in, unless the visitor chose another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from portal.adapters.services import Unavailable
from portal.adapters.web import LANGUAGE_COOKIE, Visit, Web, bounded

MAX_TOKEN = 1000  # a survey token is about 250 characters
MAX_COMMENT = 4000  # as intake's survey API accepts
NO_REFERRER = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
FACES = {1: "😠", 2: "🙁", 3: "😐", 4: "🙂", 5: "😀"}  # a five-point scale's faces


def survey_router(web: Web) -> APIRouter:
    """The survey's pages (see module)."""
    router = APIRouter(include_in_schema=False)

    def shown(v: Visit, template: str, status: int = 200, **values: Any) -> Response:
        response = web.page(v, template, status, **values)
        response.headers.update(NO_REFERRER)
        return response

    def notice(v: Visit, message: str, status: int, **params: str) -> Response:
        return shown(v, "survey_notice.html", status, message=message, params=params)

    def speak_as_link(v: Visit, survey: dict[str, Any]) -> None:
        """The link's language, unless the visitor chose one."""
        chosen = v.request.query_params.get("lang") or v.request.cookies.get(LANGUAGE_COOKIE)
        if chosen not in ("fr", "en") and survey.get("language") in ("fr", "en"):
            v.language = str(survey["language"])

    async def survey_of(v: Visit, token: str) -> dict[str, Any] | Response:
        """The survey the token names, or the page saying why there is none."""
        if len(token) > MAX_TOKEN or bounded(token, MAX_TOKEN) != token:
            return notice(v, "survey.forged", 403)
        try:
            answer = await web.services.without_identity(
                "intake", "GET", f"/surveys/{quote(token, safe='')}"
            )
        except Unavailable:
            return notice(v, "survey.unavailable", 503)
        return refused(v, answer.status_code, answer.json()) if answer.is_error else answer.json()

    def refused(v: Visit, status: int, body: dict[str, Any]) -> Response:
        if status == 410:
            speak_as_link(v, body)
            return notice(v, "survey.expired", 410, date=day(v, body.get("expired_at")))
        return notice(v, "survey.forged", 403)

    def day(v: Visit, instant: str | None) -> str:
        return datetime.fromisoformat(instant).strftime("%Y-%m-%d") if instant else ""

    def form(
        v: Visit, token: str, survey: dict[str, Any], status: int = 200, **values: Any
    ) -> Response:
        return shown(
            v, "survey.html", status, token=token, survey=survey, faces=faces(survey), **values
        )

    def faces(survey: dict[str, Any]) -> list[tuple[int, str]]:
        scale = int(survey["scale"])
        return [(n, FACES[n] if scale == 5 else str(n)) for n in range(1, scale + 1)]

    def already(v: Visit, survey: dict[str, Any], when: str | None, status: int) -> Response:
        return notice(v, "survey.already", status, request=str(survey["key"]), date=day(v, when))

    @router.get("/survey/{token}")
    async def survey_page(request: Request, token: str) -> Response:
        v = await web.visit(request)
        survey = await survey_of(v, token)
        if isinstance(survey, Response):
            return survey
        speak_as_link(v, survey)
        if survey["answered"]:
            return already(v, survey, survey["answered_at"], 200)
        return form(v, token, survey)

    @router.post("/survey/{token}")
    async def answer_survey(
        request: Request,
        token: str,
        rating: Annotated[str, Form(max_length=10)] = "",
        comment: Annotated[str, Form(max_length=MAX_COMMENT * 16)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        v = await web.visit(request)
        survey = await survey_of(v, token)
        if isinstance(survey, Response):
            return survey
        speak_as_link(v, survey)
        typed = bounded(comment, MAX_COMMENT)
        kept = {"chosen": rating, "comment": typed if typed is not None else comment[:MAX_COMMENT]}
        if not v.csrf_ok(csrf):
            return form(v, token, survey, 403, error="survey.csrf", **kept)
        if survey["answered"]:
            return already(v, survey, survey["answered_at"], 409)
        scale = int(survey["scale"])
        chosen = int(rating) if rating.isascii() and rating.isdigit() else 0
        if not 1 <= chosen <= scale:
            return form(v, token, survey, 422, field="rating", **kept)
        if typed is None:
            return form(v, token, survey, 422, field="comment", **kept)
        try:
            sent = await web.services.without_identity(
                "intake", "POST", f"/surveys/{quote(token, safe='')}",
                json={"rating": chosen, "comment": typed or None},
            )  # fmt: skip
        except Unavailable:
            return notice(v, "survey.unavailable", 503)
        if sent.status_code == 201:
            return notice(v, "survey.thanks", 200, request=survey["key"], rating=str(chosen),
                          scale=str(scale))  # fmt: skip
        if sent.status_code == 409:
            return already(v, survey, sent.json().get("answered_at"), 409)
        if sent.status_code in (403, 410):
            return refused(v, sent.status_code, sent.json())
        return form(v, token, survey, 422, field="comment", **kept)

    return router
