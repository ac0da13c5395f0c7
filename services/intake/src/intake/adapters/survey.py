"""The satisfaction survey's web pages: `GET /survey/{token}` shows the form, `POST` records it.

Opening the link (what a mail scanner does) only shows the five-face form with a comment box
and records nothing; submitting it records the rating once (a second submission gets 409 and a
page saying so). A forged link gets 403, an expired one 410, each with a page saying why; a
rating off the scale, a comment too long or a field the form does not have gets 422 and the
form again, saying which. The token is the only credential (signed, expiring:
`desk_platform.survey_tokens`); the pages are never cached and never leak it as a referrer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import parse_qs

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from desk_contracts.inputs import quoted
from desk_platform.survey_tokens import ExpiredToken, InvalidToken, SurveyClaim, read_token
from desk_policies.model import DeskPolicy
from intake.application.survey import AlreadyAnswered, previous_answer, record_answer

FACES = {1: "😠", 2: "🙁", 3: "😐", 4: "🙂", 5: "😀"}
MAX_COMMENT = 4000
MAX_FORM_BYTES = 64 * 1024  # a form is small: a larger body is refused (413) before it is read
FIELDS = ("rating", "comment")  # what the form sends
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}

WORDS = {
    "fr": {
        "title": "Votre avis sur la demande {key}",
        "question": "Êtes-vous satisfait du traitement de la demande {key} ?",
        "scale": "De 1 (pas du tout satisfait) à {scale} (très satisfait)",
        "comment": "Un commentaire (facultatif)",
        "send": "Envoyer mon avis",
        "note": "Ouvrir cette page n'enregistre rien : seul l'envoi du formulaire compte.",
        "thanks": "Merci ! Votre note de {rating} sur {scale} pour {key} est enregistrée.",
        "already": "Un avis a déjà été donné pour {key} le {date} ; il ne peut pas être modifié.",
        "bad_rating": "Choisissez une note de 1 à {scale}.",
        "long": "Le commentaire est trop long ({max} caractères au plus).",
        "unknown": "Le formulaire n'a pas de champ {name} (seulement : {fields}).",
    },
    "en": {
        "title": "Your opinion on request {key}",
        "question": "How satisfied are you with the handling of request {key}?",
        "scale": "From 1 (not at all satisfied) to {scale} (very satisfied)",
        "comment": "A comment (optional)",
        "send": "Send my rating",
        "note": "Opening this page records nothing: only sending the form does.",
        "thanks": "Thank you! Your rating of {rating} out of {scale} for {key} is recorded.",
        "already": "{key} was already rated on {date}; the rating cannot be changed.",
        "bad_rating": "Choose a rating from 1 to {scale}.",
        "long": "The comment is too long ({max} characters at most).",
        "unknown": "The form has no field {name} (only: {fields}).",
    },
}
FORGED = (
    "Ce lien d'enquête n'est pas valide (il a été modifié ou ne vient pas de nous). / "
    "This survey link is not valid (it was altered or does not come from us)."
)
EXPIRED = "Ce lien d'enquête a expiré le {date}. / This survey link expired on {date}."


def _page(title: str, body: str, language: str = "en", status: int = 200) -> HTMLResponse:
    html = (
        f'<!DOCTYPE html>\n<html lang="{language}">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em}"
        ".faces label{font-size:2.2em;margin-right:.3em;cursor:pointer}"
        ".faces input{margin-right:.1em}textarea{width:100%}</style></head>\n"
        f"<body>\n<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _words(claim: SurveyClaim) -> dict[str, str]:
    return WORDS.get(claim.language, WORDS["en"])


def _form(claim: SurveyClaim, scale: int, error: str | None = None) -> str:
    w = _words(claim)
    faces = "\n".join(
        f'<label title="{n}/{scale}"><input type="radio" name="rating" value="{n}" required>'
        f"{FACES.get(n, str(n)) if scale == 5 else n}</label>"
        for n in range(1, scale + 1)
    )
    problem = f'<p role="alert"><strong>{escape(error)}</strong></p>' if error else ""
    return (
        f'{problem}<form method="post">\n'
        f"<fieldset><legend>{escape(w['question'].format(key=claim.key))}</legend>\n"
        f"<p>{escape(w['scale'].format(scale=scale))}</p>\n"
        f'<div class="faces">\n{faces}\n</div></fieldset>\n'
        f"<p><label>{escape(w['comment'])}<br>"
        f'<textarea name="comment" rows="5" maxlength="{MAX_COMMENT}"></textarea></label></p>\n'
        f'<p><button type="submit">{escape(w["send"])}</button></p>\n</form>\n'
        f"<p><small>{escape(w['note'])}</small></p>"
    )


def _page_answers(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of answers that are a page (HTML)."""
    html = {"text/html": {"schema": {"type": "string"}}}
    return {status: {"description": text, "content": html} for status, text in descriptions.items()}


SHOWN = _page_answers(
    {403: "a forged link: a page says so", 410: "an expired link: a page says when it expired"}
)
SENT = {
    **SHOWN,
    **_page_answers(
        {
            409: "already answered: a page says when",
            422: "a rating off the scale, a comment too long or a field the form does not "
            "have: the form again, saying which",
        }
    ),
    413: {"description": "a body larger than a form", "content": {"text/plain": {}}},
}


def survey_router(
    pool: asyncpg.Pool,
    policies: dict[str, DeskPolicy],
    secret: str,
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter(tags=["survey"])

    def claim_of(token: str) -> SurveyClaim | HTMLResponse:
        try:
            return read_token(secret, token, clock())
        except ExpiredToken as expired:
            date = f"{expired.claim.expires_at:%Y-%m-%d}"
            return _page(
                "Lien expiré / Link expired", f"<p>{EXPIRED.format(date=date)}</p>", status=410
            )
        except InvalidToken:
            return _page("Lien non valide / Invalid link", f"<p>{escape(FORGED)}</p>", status=403)

    def scale_of(claim: SurveyClaim) -> int:
        policy = policies.get(claim.policy_id)
        return policy.survey.scale if policy else 5

    def already(claim: SurveyClaim, answer: AlreadyAnswered, status: int) -> HTMLResponse:
        w = _words(claim)
        text = w["already"].format(key=claim.key, date=f"{answer.answered_at:%Y-%m-%d}")
        return _page(
            w["title"].format(key=claim.key), f"<p>{escape(text)}</p>", claim.language, status
        )

    @router.get("/survey/{token}", response_class=HTMLResponse, responses=SHOWN)
    async def show(token: str) -> HTMLResponse:
        """The form; records nothing (mail scanners open links)."""
        claim = claim_of(token)
        if isinstance(claim, HTMLResponse):
            return claim
        answer = await previous_answer(pool, claim.ticket_id)
        if answer is not None:
            return already(claim, answer, 200)
        title = _words(claim)["title"].format(key=claim.key)
        return _page(title, _form(claim, scale_of(claim)), claim.language)

    @router.post(
        "/survey/{token}",
        response_class=HTMLResponse,
        max_body_size=MAX_FORM_BYTES,
        responses=SENT,
    )
    async def submit(token: str, request: Request) -> HTMLResponse:
        """Record the rating (and comment) once; a second submission gets 409."""
        claim = claim_of(token)
        if isinstance(claim, HTMLResponse):
            return claim
        w, scale = _words(claim), scale_of(claim)
        title = w["title"].format(key=claim.key)
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            error = w["unknown"].format(name=quoted(unknown[0]), fields=", ".join(FIELDS))
            return _page(title, _form(claim, scale, error), claim.language, 422)
        raw = (fields.get("rating") or [""])[0].strip()
        comment = (fields.get("comment") or [""])[0].replace("\x00", "").strip() or None
        rating = int(raw) if re.fullmatch(r"[0-9]{1,2}", raw) else 0
        if not 1 <= rating <= scale:
            error = w["bad_rating"].format(scale=scale)
            return _page(title, _form(claim, scale, error), claim.language, 422)
        if comment is not None and len(comment) > MAX_COMMENT:
            error = w["long"].format(max=MAX_COMMENT)
            return _page(title, _form(claim, scale, error), claim.language, 422)
        outcome = await record_answer(pool, claim, rating, comment, clock())
        if isinstance(outcome, AlreadyAnswered):
            return already(claim, outcome, 409)
        thanks = w["thanks"].format(rating=rating, scale=scale, key=claim.key)
        return _page(title, f"<p>{escape(thanks)}</p>", claim.language)

    return router
