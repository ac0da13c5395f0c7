"""The console's editor of a desk's canned replies, for the desk's leads: the replies by
language, a form that creates one or changes one (language, title, text naming the request's
fields `{key}`, `{subject}`, `{requester}`, `{agent}`, `{desk}`), a preview of the text filled
with example values (live with htmx, a button without JavaScript), and a form that deletes one.

Only a lead of the desk (one of their roles there `administers` it: `StaffVisit.leads`) comes
in; another member of staff gets a 403 page, a desk that is not one a 404 page. A title or text
`portal.domain.canned.problem` refuses, or a title another reply of the desk has in that
language, comes back beside its field with what was typed; a change done is a 303 to the list
with a notice."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from desk_policies.model import DeskPolicy
from portal.adapters.console import Console, StaffVisit
from portal.application import canned
from portal.catalogue import text
from portal.domain.canned import FIELDS, MAX_BODY, MAX_TITLE, CannedReply, fill, problem

LANGUAGES = (("fr", "Français"), ("en", "English"))
REPLY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DONE = ("created", "saved", "deleted")
EXAMPLE_NUMBER = 1042
# the form's fields, bounded before they are read (then checked: `portal.domain.canned.problem`)
Text = Annotated[str, Form(max_length=MAX_BODY * 2)]
Line = Annotated[str, Form(max_length=MAX_TITLE * 10)]
Short = Annotated[str, Form(max_length=100)]


def reply_id_of(typed: str) -> uuid.UUID | None:
    """The reply id a path names (lower-case hexadecimal groups), or None."""
    return uuid.UUID(typed) if REPLY_ID.fullmatch(typed) else None


def examples(policy: DeskPolicy, agent: str, language: str) -> dict[str, str]:
    """The example values the preview fills a text with: a request of the desk's first type."""
    return {
        "key": f"{policy.request_types[0].prefix}-{EXAMPLE_NUMBER}",
        "subject": text(language, "canned.example_subject"),
        "requester": text(language, "canned.example_requester"),
        "agent": agent,
        "desk": policy.name,
    }


class CannedPages:
    """The editor's steps: the desk and lead checks, the page."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.portal = console.web.portal

    async def lead_of(
        self, request: Request, desk: str
    ) -> tuple[StaffVisit, DeskPolicy] | Response:
        """The visit of a lead of `desk` and its policy; else the page to answer (sign in
        first, 404 for a desk that is not one, 403 for who does not lead it)."""
        s = await self.console.staff(request)
        if isinstance(s, Response):
            return s
        policy = self.portal.policies.get(desk)
        if policy is None:
            reason = text(s.visit.language, "canned.no_desk", desk=desk[:64])
            return self.console.page(s, "console/admin_refused.html", 404, reason=reason,
                                     heading="admin.missing_title")  # fmt: skip
        if desk not in s.leads:
            reason = text(s.visit.language, "canned.not_lead", desk=policy.name)
            return self.console.page(s, "console/admin_refused.html", 403, reason=reason)
        return s, policy

    async def page(
        self,
        s: StaffVisit,
        policy: DeskPolicy,
        status: int = 200,
        form: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> Response:
        """The desk's replies and the form (`form`: what it holds; a new reply when None)."""
        async with self.portal.pool.acquire() as conn:
            replies = await canned.replies_of(conn, policy.id)
        by_language: dict[str, list[CannedReply]] = {}
        for reply in replies:
            by_language.setdefault(reply.language, []).append(reply)
        shown = dict(form or {"reply_id": "", "language": s.visit.language, "title": "",
                              "body": ""})  # fmt: skip
        assert s.visit.person is not None
        example = examples(policy, s.visit.person.name, s.visit.language)
        template = values.pop("template", "console/replies.html")
        return self.console.page(
            s, template, status, desk=policy.id, desk_name=policy.name,
            by_language=by_language, languages=LANGUAGES, form=shown, fields=FIELDS,
            examples=example, preview=fill(str(shown.get("body", "")), example),
            max_title=MAX_TITLE, max_body=MAX_BODY, **values,
        )  # fmt: skip


def canned_pages_router(console: Console) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    pages = CannedPages(console)
    portal = console.web.portal
    finish = console.web.finish

    def to_list(s: StaffVisit, desk: str, done: str) -> Response:
        return finish(s.visit, RedirectResponse(f"/console/replies/{desk}?done={done}", 303))

    @router.get("/console/replies/{desk}")
    async def replies(request: Request, desk: str, edit: str = "", done: str = "") -> Response:
        found = await pages.lead_of(request, desk)
        if isinstance(found, Response):
            return found
        s, policy = found
        notice = f"canned.done.{done}" if done in DONE else None
        form = None
        if (chosen := reply_id_of(edit[:40])) is not None:
            async with portal.pool.acquire() as conn:
                editing = await canned.reply(conn, policy.id, chosen)
            if editing is not None:
                form = {"reply_id": str(editing.reply_id), "language": editing.language,
                        "title": editing.title, "body": editing.body}  # fmt: skip
        return await pages.page(s, policy, form=form, notice=notice)

    async def save(
        request: Request,
        desk: str,
        reply: str | None,
        language: str,
        title: str,
        body: str,
        csrf: str,
        preview: bool = False,
    ) -> Response:
        """Create (`reply` None) or change a reply, or only preview the text (`preview`)."""
        found = await pages.lead_of(request, desk)
        if isinstance(found, Response):
            return found
        s, policy = found
        chosen = reply_id_of(reply[:40]) if reply is not None else None
        if reply is not None and chosen is None:
            return missing(s)
        typed_title = title.strip()
        typed_body = body.replace("\r\n", "\n")
        form = {"reply_id": str(chosen) if chosen else "", "language": language,
                "title": typed_title, "body": typed_body}  # fmt: skip
        if not s.visit.csrf_ok(csrf):
            return await pages.page(s, policy, 403, form, form_error="csrf")
        if preview:
            partial = request.headers.get("hx-request") == "true"
            template = "console/replies_preview.html" if partial else "console/replies.html"
            return await pages.page(s, policy, 200, form, template=template)
        if language not in dict(LANGUAGES):
            return await pages.page(s, policy, 422, form, field="language",
                                    field_error="canned.invalid_language")  # fmt: skip
        if (why := problem(typed_title, typed_body)) is not None:
            at = "title" if why == "canned.invalid_title" else "body"
            return await pages.page(s, policy, 422, form, field=at, field_error=why)
        assert s.visit.person is not None
        async with portal.pool.acquire() as conn:
            if chosen is not None and await canned.reply(conn, policy.id, chosen) is None:
                return missing(s)
            saved = await canned.save(
                conn, policy.id, language, typed_title, typed_body, s.visit.person.email,
                portal.clock(), chosen,
            )  # fmt: skip
        if saved is None:
            return await pages.page(s, policy, 409, form, field="title",
                                    field_error="canned.duplicate_title")  # fmt: skip
        return to_list(s, policy.id, "saved" if chosen else "created")

    def missing(s: StaffVisit) -> Response:
        reason = text(s.visit.language, "canned.no_reply")
        return console.page(s, "console/admin_refused.html", 404, reason=reason,
                            heading="admin.missing_title")  # fmt: skip

    @router.post("/console/replies/{desk}")
    async def create(
        request: Request, desk: str, language: Short = "", title: Line = "", body: Text = "",
        csrf: Short = "",
    ) -> Response:  # fmt: skip
        return await save(request, desk, None, language, title, body, csrf)

    @router.post("/console/replies/{desk}/preview")
    async def preview(
        request: Request, desk: str, language: Short = "", title: Line = "", body: Text = "",
        reply_id: Short = "", csrf: Short = "",
    ) -> Response:  # fmt: skip
        return await save(request, desk, reply_id or None, language, title, body, csrf, True)

    @router.post("/console/replies/{desk}/{reply}")
    async def change(
        request: Request, desk: str, reply: str, language: Short = "", title: Line = "",
        body: Text = "", csrf: Short = "",
    ) -> Response:  # fmt: skip
        return await save(request, desk, reply, language, title, body, csrf)

    @router.post("/console/replies/{desk}/{reply}/delete")
    async def delete(request: Request, desk: str, reply: str, csrf: Short = "") -> Response:
        found = await pages.lead_of(request, desk)
        if isinstance(found, Response):
            return found
        s, policy = found
        chosen = reply_id_of(reply[:40])
        if chosen is None:
            return missing(s)
        if not s.visit.csrf_ok(csrf):
            return await pages.page(s, policy, 403, form_error="csrf")
        async with portal.pool.acquire() as conn:
            gone = await canned.delete(conn, policy.id, chosen)
        return to_list(s, policy.id, "deleted") if gone else missing(s)

    return router
