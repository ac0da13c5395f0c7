"""The home page, the new-request form and attachments' download (server-rendered).

Home (`/`, `?desk=<id>` to choose among the desks the person belongs to): the desk's guide
(announcements, when to open a request, contacts), its request types the person may create
and its priorities, each with its meaning, and the way to a new request. A person awaiting
their organisation sees only that.

New request (`/requests/new?desk=<id>[&references=<KEY>]`): the form carries a random
`Idempotency-Key` made when it is rendered, so a double click or a re-sent form makes one
request (intake answers the retry with the first one). Uploaded files are bounded (count, each
one's size, all together; the body's declared length is checked before it is read) and stored
in the blob store by sha256 before intake is asked; intake's refusals are shown beside their
field, everything typed kept (files must be chosen again: the page says so). Success goes to
`/requests/{key}?done=created` (once workflow shows it, a few seconds at most).

Download (`/requests/{key}/attachments/{sha256}`): only for a person workflow shows the request
to, and only a file some entry they see names; served as an opaque download.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Mapping
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from desk_contracts.identity import Identity
from desk_contracts.inputs import address
from desk_platform.blobs import is_sha256
from portal.adapters.services import Unavailable
from portal.adapters.uploads import File, read_files, stored
from portal.adapters.web import Visit, Web, bounded
from portal.domain import requests_new as n

IDEMPOTENCY = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
# a new request reaches workflow by Kafka: how long the form waits for it, at most (seconds)
ARRIVAL_POLLS, ARRIVAL_PAUSE = 50, 0.1


def _desk_of(desks: list[Mapping[str, Any]], chosen: str | None) -> Mapping[str, Any] | None:
    return next((d for d in desks if d.get("id") == chosen), desks[0] if desks else None)


def _announcements(desk: Mapping[str, Any], today: str) -> list[Mapping[str, Any]]:
    shown = [a for a in desk.get("guide", {}).get("announcements", ()) if a["since"] <= today]
    return sorted(shown, key=lambda a: a["since"], reverse=True)


def new_request_router(web: Web) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    portal, page, finish = web.portal, web.page, web.finish

    async def desks_of(identity: Identity) -> list[Mapping[str, Any]]:
        return n.member_desks(identity, portal.policies, await web.services.desks(identity))

    def roles_at(identity: Identity, desk: Mapping[str, Any]) -> tuple[str, ...]:
        return n.desk_roles(identity, portal.policies[str(desk["id"])])

    @router.get("/")
    async def home(request: Request, desk: str | None = None) -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        if v.person.awaits_organisation:
            return page(v, "home.html")
        async with portal.pool.acquire() as conn:
            organisation = await conn.fetchval(
                "SELECT name FROM organisations WHERE organisation_id = $1",
                v.person.organisation_id,
            )
        identity = v.identity()
        try:
            desks = await desks_of(identity)
        except Unavailable:
            return page(
                v, "home.html", 503, error="home.unavailable", desks=[], organisation=organisation
            )
        chosen = _desk_of(desks, (desk or "")[:100])
        values: dict[str, Any] = {"desks": desks, "desk": chosen, "organisation": organisation}
        if chosen is not None:
            values["types"] = n.creatable_types(chosen, roles_at(identity, chosen))
            values["announcements"] = _announcements(chosen, portal.clock().date().isoformat())
        fmt = v.person.date_format
        values["day"] = lambda iso: date.fromisoformat(iso).strftime(fmt)
        return page(v, "home.html", **values)

    async def form_page(
        v: Visit, desks: list[Mapping[str, Any]], desk: Mapping[str, Any] | None,
        form: Mapping[str, Any], status: int = 200, **values: Any,
    ) -> Response:  # fmt: skip
        if desk is None:
            return page(v, "new_request.html", status or 404, desks=desks, desk=None, form=form)
        identity = v.identity()
        return page(
            v, "new_request.html", status, desks=desks, desk=desk, form=form,
            types=n.creatable_types(desk, roles_at(identity, desk)), limits=portal.uploads,
            staff=v.person is not None and v.person.organisation_id is None,
            mebibytes=lambda size: f"{size / 1024 / 1024:.0f}", **values,
        )  # fmt: skip

    @router.get("/requests/new")
    async def new_page(
        request: Request, desk: str | None = None, references: str | None = None
    ) -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        try:
            desks = await desks_of(v.identity()) if not v.person.awaits_organisation else []
        except Unavailable:
            return page(v, "notice.html", 503, error="home.unavailable", title="new.title")
        referenced = references if references and n.REQUEST_KEY.match(references) else ""
        form = {"references": referenced, "idempotency": secrets.token_urlsafe(24),
                "requester": v.person.email}  # fmt: skip
        chosen = _desk_of(desks, (desk or "")[:100])
        return await form_page(v, desks, chosen, form, 200 if chosen else 404)

    @router.post("/requests/new", max_body_size=portal.uploads.body)
    async def new_request(request: Request) -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        limits = portal.uploads
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > limits.body:
            return page(v, "notice.html", 413, error="new.body_too_large", title="new.title")
        try:
            received = await request.form(max_files=limits.files + 1, max_fields=40)
        except HTTPException:
            return page(v, "notice.html", 413, error="new.too_many_files", title="new.title")
        form = typed(received)
        try:
            desks = await desks_of(v.identity())
        except Unavailable:
            return page(v, "notice.html", 503, error="home.unavailable", title="new.title")
        desk = next((d for d in desks if d.get("id") == form["desk"]), None)
        if desk is None:
            return await form_page(v, desks, None, form, 404)
        if not v.csrf_ok(str(received.get("csrf", ""))[:100]):
            return await form_page(v, desks, desk, form, 403, error="csrf")
        files, problem = await read_files(received.getlist("attachments"), limits)
        if problem is not None:
            return await form_page(
                v, desks, desk, form, 413, errors={"attachments": f"new.error.{problem}"},
                files_lost=True,
            )  # fmt: skip
        errors = local_errors(form, desk, roles_at(v.identity(), desk))
        if errors:
            return await form_page(v, desks, desk, form, 422, errors=errors, files_lost=bool(files))
        return await submit(v, desks, desk, form, files)

    def typed(received: FormData) -> dict[str, Any]:
        """What the person typed, each value bounded ('' when over its bound)."""

        def value(name: str, limit: int) -> str:
            raw = received.get(name)
            return (bounded(raw, limit) or "") if isinstance(raw, str) else ""

        form = {name: value(name, limit) for name, limit in n.LIMITS.items()}
        for name in ("desk", "request_type", "priority"):
            form[name] = value(name, 100)
        form["idempotency"] = value("idempotency", 100)
        if not IDEMPOTENCY.match(form["idempotency"]):
            form["idempotency"] = secrets.token_urlsafe(24)
        if not n.REQUEST_KEY.match(form["references"]):
            form["references"] = ""
        return form

    def local_errors(
        form: Mapping[str, Any], desk: Mapping[str, Any], roles: tuple[str, ...]
    ) -> dict[str, str]:
        """The form's own checks (intake checks again): catalogue keys by field."""
        errors: dict[str, str] = {}
        if form["request_type"] not in {t["id"] for t, _ in n.creatable_types(desk, roles)}:
            errors["request_type"] = "new.error.request_type"
        if form["priority"] not in desk.get("priorities", ()):
            errors["priority"] = "new.error.priority"
        if len(form["subject"]) < 3:
            errors["subject"] = "new.error.subject"
        if not form["description"]:
            errors["description"] = "new.error.description"
        for participant in n.participants_of(form["participants"]):
            try:
                address(participant)
            except ValueError:
                errors["participants"] = "new.error.participants"
        return errors

    async def submit(
        v: Visit, desks: list[Mapping[str, Any]], desk: Mapping[str, Any],
        form: dict[str, Any], files: list[File],
    ) -> Response:  # fmt: skip
        identity = v.identity()
        assert v.person is not None
        role = dict((t["id"], r) for t, r in n.creatable_types(desk, roles_at(identity, desk)))
        attachments = await stored(files, portal.blobs)
        staff = v.person.organisation_id is None
        body = {
            "policy_id": desk["id"], "request_type": form["request_type"],
            "priority": form["priority"], "subject": form["subject"],
            "description": form["description"],
            "organisation_id": form["organisation_id"] if staff else v.person.organisation_id,
            "requester": form["requester"] if staff else v.person.email,
            "participants": n.participants_of(form["participants"]),
            "language": v.language, "references": form["references"] or None,
            "attachments": attachments,
            **{name: form[name] or None for name in n.COMPLEMENTARY},
        }  # fmt: skip
        headers = {"Idempotency-Key": form["idempotency"],
                   "X-Actor-Role": role[form["request_type"]]}  # fmt: skip
        try:
            answer = await web.services.call(
                identity, "intake", "POST", "/requests", json=body, headers=headers
            )
        except Unavailable:
            return await form_page(v, desks, desk, form, 503, error="home.unavailable",
                                   files_lost=bool(files))  # fmt: skip
        if answer.status_code in (200, 201):
            key = str(answer.json()["key"])
            await arrived(identity, key)
            return finish(v, RedirectResponse(f"/requests/{key}?done=created", 303))
        lost = bool(files)
        if answer.status_code == 422:
            errors = n.refused_fields(answer.json())
            shown = n.shown_fields(staff=v.person.organisation_id is None)
            elsewhere = [reason for field, reason in errors.items() if field not in shown]
            return await form_page(
                v, desks, desk, form, 422, errors=errors, files_lost=lost,
                error="new.refused" if elsewhere else None, refusal="; ".join(elsewhere),
            )  # fmt: skip
        if answer.status_code == 409:
            form["idempotency"] = secrets.token_urlsafe(24)
        error = {403: "new.forbidden", 409: "new.conflict", 429: "new.flooded"}.get(
            answer.status_code, "new.refused"
        )
        return await form_page(v, desks, desk, form, answer.status_code, error=error,
                               files_lost=lost)  # fmt: skip

    async def arrived(identity: Identity, key: str) -> None:
        """Until workflow has opened the request intake just recorded (it travels by Kafka),
        for a few seconds at most: the page it leads to then shows it."""
        for _ in range(ARRIVAL_POLLS):
            try:
                shown = await web.services.read(identity, "workflow", f"/requests/{key}",
                                                history_limit=1)  # fmt: skip
            except Unavailable:
                return
            if shown.status_code != 404:
                return
            await asyncio.sleep(ARRIVAL_PAUSE)

    @router.get("/requests/{key}/attachments/{sha256}")
    async def download(request: Request, key: str, sha256: str) -> Response:
        v = await web.visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        missing = page(v, "notice.html", 404, error="new.attachment_missing", title="new.file")
        if not n.REQUEST_KEY.match(key) or not is_sha256(sha256):
            return missing
        try:
            attachment = await attachment_seen(v.identity(), key, sha256)
        except Unavailable:
            return page(v, "notice.html", 503, error="home.unavailable", title="new.file")
        data = await portal.blobs.get(sha256) if attachment is not None else None
        if attachment is None or data is None:
            return missing
        name = n.safe_filename(str(attachment.get("filename", "")))
        return Response(
            data,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": n.content_disposition(name),
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )

    async def attachment_seen(
        identity: Identity, key: str, sha256: str
    ) -> Mapping[str, Any] | None:
        """The attachment `sha256` as the request `key` shows it to `identity` (None: it may
        not read the request, or sees no such file): workflow lists the files of every entry
        the reader sees."""
        answer = await web.services.read(identity, "workflow", f"/requests/{key}", history_limit=1)
        return n.attachment_named(answer.json(), sha256) if answer.status_code == 200 else None

    return router
