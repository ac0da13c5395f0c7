"""The requester's pages about requests: the lists ("my requests", "my organisation's"), one
request (its details, people, files, clocks, activity newest first) and what the person may do
on it now (comment or reply with files, confirm or dispute a resolution, reopen, escalate, turn
their mail about it off or on), each a POST form with CSRF and the ETag the page was rendered
with (`If-Match`).

Everything shown comes from the services, asked as the person: workflow's lists and request,
its desks (`GET /desks`, what the actions are computed from: `portal.domain.request_actions`),
sla's clocks when it serves them to this person. A request workflow does not show the person
(another organisation's, or none) is the same 404 page. Pages work without JavaScript; htmx
replaces the list in place with the same partial."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse

from portal.adapters.services import Unavailable
from portal.adapters.uploads import read_files, stored
from portal.adapters.web import Visit, Web, bounded
from portal.catalogue import catalogue
from portal.domain.request_actions import acting_role, actions_now

PAGE_SIZE = 25
HISTORY_PAGE = 20
MAX_COMMENT = 100_000
KEY = re.compile(r"[A-Za-z][A-Za-z0-9²]{0,19}-[0-9]{1,12}")
SORTS = ("updated", "created", "key", "priority", "status")
STATES = ("open", "closed", "all")
TABS = ("mine", "organisation")
COMMANDS = {  # the action forms -> workflow's command and the form field its text goes to
    "confirm": ("confirm-resolution", "comment"),
    "dispute": ("dispute-resolution", "comment"),
    "reopen": ("reopen", "comment"),
    "escalate": ("escalate-by-requester", "reason"),
    "mute": ("mute-notifications", None),
    "unmute": ("unmute-notifications", None),
}
FILES_REFUSED = {"too_many_files": "request.files_too_many"}  # else: too large
PAGE = re.compile(r"[1-9][0-9]{0,3}")  # ASCII digits only: "²".isdigit() is true
VERSION = re.compile(r"[1-9][0-9]{0,8}")
ETAG = re.compile(r'"[0-9]{1,10}"')  # what workflow's ETag is: the request's version, quoted


@dataclass(frozen=True)
class ListChoice:
    """What a list shows: which tab, which requests, sorted how, searched for what, which page."""

    tab: str = "mine"
    state: str = "open"
    sort: str = "updated"
    order: str = "desc"
    q: str = ""
    page: int = 1

    def link(self, **changed: Any) -> str:
        """This list's address with `changed` values (back to page 1 unless a page is named)."""
        values = {**self.__dict__, "page": 1, **changed}
        return "/requests?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})

    def sorted_by(self, column: str) -> str:
        """The aria-sort value of `column`'s header."""
        if column != self.sort:
            return "none"
        return "descending" if self.order == "desc" else "ascending"

    def sort_link(self, column: str) -> str:
        """The header link of `column`: sorted by it, the other way when it already is."""
        order = "asc" if column == self.sort and self.order == "desc" else "desc"
        return self.link(sort=column, order=order)


def list_choice(params: Mapping[str, str]) -> ListChoice:
    """The list asked for; an unknown value falls back to the default (a bookmark survives)."""

    def pick(name: str, allowed: Sequence[str], default: str) -> str:
        value = params.get(name, default)
        return value if value in allowed else default

    page = params.get("page", "1")
    return ListChoice(
        tab=pick("tab", TABS, "mine"),
        state=pick("state", STATES, "open"),
        sort=pick("sort", SORTS, "updated"),
        order=pick("order", ("desc", "asc"), "desc"),
        q=params.get("q", "")[:1000],
        page=int(page) if PAGE.fullmatch(page) else 1,
    )


def label(labels: Mapping[str, str] | None, language: str, fallback: str = "") -> str:
    """The label in `language` (English, then the fallback, when missing)."""
    if not labels:
        return fallback
    return str(labels.get(language) or labels.get("en") or fallback)


def status_of(desk: Mapping[str, Any] | None, status_id: str) -> Mapping[str, Any]:
    """The desk's description of a status (an empty one when the desk does not tell it)."""
    for status in (desk or {}).get("statuses", ()):
        if status["id"] == status_id:
            return dict(status)
    return {}


def role_label(desk: Mapping[str, Any] | None, role: str | None, language: str) -> str:
    """Who a role is, in `language`: the desk's label; '' for none ("support" is for the
    template to say)."""
    for found in (desk or {}).get("roles", ()):
        if found["id"] == role:
            return label(found["labels"], language, role or "")
    return ""


def history_key(event_type: str) -> str:
    """The catalogue key of a history entry's text (a neutral one for a type not known)."""
    key = f"history.{event_type}"
    return key if key in catalogue("en") else "history.other"


class RequestPages:
    """The pages' steps: ask the services as the person, render."""

    def __init__(self, web: Web) -> None:
        self.web = web

    async def desks(self, v: Visit) -> dict[str, dict[str, Any]]:
        """The desks as workflow tells them to the person, by id."""
        return {d["id"]: d for d in await self.web.services.desks(v.identity())}

    async def list_page(self, v: Visit, choice: ListChoice) -> Response:
        assert v.person is not None
        values: dict[str, Any] = {"choice": choice, "rows": [], "total": 0}
        q = bounded(choice.q, 200)
        if q is None:
            return self.render_list(v, 422, error="list.search_invalid", **values)
        params: dict[str, Any] = {
            "state": choice.state, "sort": choice.sort, "order": choice.order, "q": q or None,
            "limit": PAGE_SIZE, "offset": (choice.page - 1) * PAGE_SIZE,
        }  # fmt: skip
        if choice.tab == "mine" or not v.person.organisation_id:
            params["involving"] = "me"
        else:
            params["organisation_id"] = v.person.organisation_id
        answer = await self.web.services.read(v.identity(), "workflow", "/requests", **params)
        if answer.status_code == 422:
            return self.render_list(v, 422, error="list.search_invalid", **values)
        if answer.status_code != 200:
            return self.render_list(v, answer.status_code, error="list.refused", **values)
        desks = await self.desks(v)
        values["rows"] = [self.row(v, desks.get(r["policy_id"]), r) for r in answer.json()]
        values["total"] = int(answer.headers.get("x-total-count", "0"))
        return self.render_list(v, 200, **values)

    def row(
        self, v: Visit, desk: Mapping[str, Any] | None, row: Mapping[str, Any]
    ) -> dict[str, Any]:
        status = status_of(desk, row["status"])
        return {
            **row,
            "status_label": label(status.get("labels"), v.language, row["status"]),
            "actor": row.get("expected_actor"),
            "actor_label": role_label(desk, row.get("expected_actor"), v.language),
        }

    def render_list(self, v: Visit, status: int, **values: Any) -> Response:
        choice: ListChoice = values["choice"]
        total = values["total"]
        first = (choice.page - 1) * PAGE_SIZE + 1 if values["rows"] else 0
        pages = max(1, math.ceil(total / PAGE_SIZE))
        paging = {"first": first, "last": first + len(values["rows"]) - 1 if first else 0,
                  "pages": pages}  # fmt: skip
        partial = v.request.headers.get("hx-request") == "true"
        template = "request_list_part.html" if partial else "request_list.html"
        return self.web.page(v, template, status, paging=paging, **values)

    async def request_page(
        self, v: Visit, key: str, status: int = 200, before: int | None = None, **values: Any
    ) -> Response:
        """The request `key` as the person reads it (404 page when workflow shows it none)."""
        identity = v.identity()
        read = self.web.services.read
        answer = await read(
            identity, "workflow", f"/requests/{key}", history_limit=HISTORY_PAGE,
            before_version=before,
        )  # fmt: skip
        if answer.status_code != 200:
            return self.web.page(v, "request_missing.html", 404, key=key)
        request = answer.json()
        desks = await self.desks(v)
        desk = desks.get(request["policy_id"], {})
        assert v.person is not None
        roles = v.person.roles.get(request["policy_id"], ())
        role = acting_role(desk, tuple(roles), customer=bool(v.person.organisation_id))
        clocks = await self.clocks(v, key)
        return self.web.page(
            v,
            "request.html",
            status,
            request=request,
            desk=desk,
            etag=answer.headers.get("etag", ""),
            actions=actions_now(desk, request, v.person.email, role),
            clocks=clocks,
            status_label=label(request["status"].get("labels"), v.language),
            role_label=lambda r: role_label(desk, r, v.language),
            label=lambda labels, fallback="": label(labels, v.language, fallback),
            type_label=self.type_label(desk, request["request_type"], v.language),
            history_key=history_key,
            **values,
        )

    async def clocks(self, v: Visit, key: str) -> Any:
        """The request's clocks when sla serves them to the person now; None otherwise (the
        page goes on without them)."""
        try:
            answer = await self.web.services.read(v.identity(), "sla", f"/requests/{key}/clocks")
        except Unavailable:
            return None
        return answer.json() if answer.status_code == 200 else None

    @staticmethod
    def type_label(desk: Mapping[str, Any], request_type: str, language: str) -> str:
        for kind in desk.get("request_types", ()):
            if kind["id"] == request_type:
                return label(kind["labels"], language, request_type)
        return request_type

    async def command(
        self, v: Visit, key: str, path: str, body: dict[str, Any], etag: str
    ) -> tuple[int, str]:
        """Send a command as the person; its status and, when refused, the reason."""
        headers = {"If-Match": etag} if ETAG.fullmatch(etag) else {}  # else unconditional
        answer = await self.web.services.call(
            v.identity(), "workflow", "POST", f"/requests/{key}/{path}", json=body, headers=headers
        )
        if answer.status_code < 300:
            return answer.status_code, ""
        try:
            detail = answer.json().get("detail")
        except ValueError:
            detail = None
        return answer.status_code, detail if isinstance(detail, str) else ""


def request_pages_router(web: Web) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    pages = RequestPages(web)

    def unavailable(v: Visit) -> Response:
        return web.page(v, "notice.html", 503, error="request.unavailable", title="request.title")

    @router.get("/requests")
    async def request_list(request: Request) -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        try:
            return await pages.list_page(v, list_choice(request.query_params))
        except Unavailable:
            return unavailable(v)

    @router.get("/requests/{key}")
    async def one_request(request: Request, key: str, before: str = "", done: str = "") -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        if not KEY.fullmatch(key):
            return web.page(v, "request_missing.html", 404, key=key[:40])
        older = int(before) if VERSION.fullmatch(before) else None
        try:
            notice = f"request.done.{done}" if done in (*COMMANDS, "comment", "created") else None
            return await pages.request_page(v, key, before=older, notice=notice)
        except Unavailable:
            return unavailable(v)

    # the comment form: its files within the deployment's bounds, its text, its fields
    @router.post("/requests/{key}/comment", max_body_size=web.portal.uploads.body)
    async def comment(
        request: Request,
        key: str,
        body: Annotated[str, Form(max_length=MAX_COMMENT + 1000)] = "",
        etag: Annotated[str, Form(max_length=40)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
        files: Annotated[list[UploadFile] | None, File()] = None,
    ) -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        if not KEY.fullmatch(key):
            return web.page(v, "request_missing.html", 404, key=key[:40])
        typed = bounded(body, MAX_COMMENT)
        try:
            if not v.csrf_ok(csrf):
                return await pages.request_page(v, key, 403, error="csrf", typed=body[:MAX_COMMENT])
            if not typed:
                return await pages.request_page(
                    v, key, 422, field_error="request.comment_invalid", typed=body[:MAX_COMMENT]
                )
            chosen, problem = await read_files(files or [], web.portal.uploads)
            if problem is not None:
                why = FILES_REFUSED.get(problem, "request.file_too_large")
                return await pages.request_page(v, key, 422, field_error=why, typed=typed)
            attached = await stored(chosen, web.portal.blobs)
            sent = {"body": typed, "public": True, "attachments": attached}
            status, reason = await pages.command(v, key, "add-comment", sent, etag)
            if status < 300:
                return web.finish(
                    v, RedirectResponse(f"/requests/{key}?done=comment#activity", 303)
                )
            return await refused(v, key, status, reason, typed=typed)
        except Unavailable:
            return unavailable(v)

    async def refused(v: Visit, key: str, status: int, reason: str, **values: Any) -> Response:
        """The page again with why the command was refused (412: someone changed it)."""
        if status == 404:
            return web.page(v, "request_missing.html", 404, key=key)
        if status == 412:
            return await pages.request_page(v, key, 412, error="request.changed", **values)
        return await pages.request_page(
            v, key, status, error="request.refused", refusal=reason, **values
        )

    @router.post("/requests/{key}/action/{name}")
    async def act(
        request: Request,
        key: str,
        name: str,
        text: Annotated[str, Form(max_length=10_000)] = "",
        etag: Annotated[str, Form(max_length=40)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        if not KEY.fullmatch(key) or name not in COMMANDS:
            return web.page(v, "request_missing.html", 404, key=key[:40])
        path, field = COMMANDS[name]
        typed = bounded(text, 5000)
        try:
            if not v.csrf_ok(csrf):
                return await pages.request_page(v, key, 403, error="csrf")
            if typed is None or (name == "dispute" and not typed):
                return await pages.request_page(
                    v, key, 422, action_error=name, field_error="request.reason_needed"
                )
            body: dict[str, Any] = {field: typed} if field and typed else {}
            if field is None:
                body = {"participant_id": v.person.email}
            status, reason = await pages.command(v, key, path, body, etag)
            if status < 300:
                return web.finish(v, RedirectResponse(f"/requests/{key}?done={name}", 303))
            return await refused(v, key, status, reason)
        except Unavailable:
            return unavailable(v)

    return router
