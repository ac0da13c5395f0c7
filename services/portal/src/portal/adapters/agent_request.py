"""The console's page of one request, agent side (`/console/requests/{key}`): everything the
requester sees, and the internal notes (marked), the whole history with who did what and when,
the clocks with their due instants, warnings and pending timers, the participants and who
muted, the attachments, the linked requests; then every command the desk's policy allows this
staff member now, as forms (`portal.domain.console_commands`), each a POST with CSRF, the
page's ETag (`If-Match`) and the version it was rendered at.

A command refused (409, 422) shows the page again with the policy's or workflow's reason; a
stale page (412: someone acted first) shows it again with the history entries since the
version the form was rendered at, keeping what the agent typed. Canned replies of the desk in
the request's language fill the reply or the note: without JavaScript through the page itself
(`?canned=<id>`, `&into=note`), with htmx by swapping only the textarea
(`/console/requests/{key}/canned`).

**A past view** (`?as_of=<datetime-local>`, in the person's time zone): the request as it was at
that instant, as workflow folds it (`GET /requests/{key}?as_of=`) with its clocks as they
stood then (sla's `?as_of=`), under a banner that says it is a past view; no command is offered
(no one acts on the past). An instant that is not one, or before the request existed, shows the
request as it is now with the reason beside the instant's field. The page links to the request's
audit (`portal.adapters.audit_pages`).

Everything comes from the services, asked as the person: workflow's request (read by the
support side: internal notes included) and desks, sla's clocks (the page goes on without them
when sla does not answer). A bad key, a request workflow does not show, or one of a desk the
person does not work at, is the same 404 page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from desk_contracts.inputs import MAX_YEAR, MIN_YEAR
from desk_policies.audience import Audience, entry_seen_by
from portal.adapters.console import Console, StaffVisit
from portal.adapters.request_pages import ETAG, KEY, VERSION, history_key, label, role_label
from portal.adapters.services import Unavailable
from portal.adapters.web import bounded
from portal.application import canned
from portal.application.desk_staff import staff_of
from portal.application.directory import account
from portal.domain import console_commands as cc
from portal.domain.canned import CannedReply, fill
from portal.domain.console import role_for

HISTORY_PAGE = 30
TEXTAREAS = {"comment": "reply-body", "note": "note-body"}  # the element contract's ids
FIELDS = ("comment", "body", "assignee_id", "group_id", "party", "scheduled_for", "responsible",
          "target", "resolution_code", "confirmation_version", "priority", "reason",
          "linked_key", "participant_id")  # fmt: skip
Typed = dict[str, dict[str, str]]  # form name -> field -> what was typed
Found = tuple[dict[str, Any], dict[str, Any], str]  # a request, its desk, its ETag
# a form's field, bounded by the body's size only: a value too long gets the form again with
# the reason beside the field (`console_commands.check`), not a bare refusal
Field_ = Annotated[str, Form()]
COMMAND_BYTES = cc.MAX_BODY * 12 + 256 * 1024  # a note at its longest, every byte %-encoded


def field_id(form: str, name: str) -> str:
    """A field's element id: the reply's and the note's are `#reply-body` and `#note-body`."""
    return TEXTAREAS.get(form, "") if name == "body" else f"{form}-{name}"


def past_instant(typed: str, time_zone: str) -> datetime | None:
    """The instant of a past view: a `datetime-local` value in `time_zone`, in UTC; None when it
    is not one, or out of the years the services read (`desk_contracts.inputs`)."""
    found = cc.local_instant(typed, time_zone)
    if found is None or not MIN_YEAR <= found.year <= MAX_YEAR:
        return None
    return found.astimezone(UTC)


def refusal_of(answer: Any) -> tuple[str, str | None]:
    """The reason workflow gives for a refused command, and the body field it names (a 422),
    if any."""
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        return "", None
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
        first = detail[0]
        loc = list(first.get("loc") or ())
        named = str(loc[-1]) if len(loc) >= 2 and loc[0] == "body" else None
        return str(first.get("msg", "")), named
    return "", None


class AgentRequest:
    """The page's steps: read the request, its desk, clocks, staff and canned replies; render;
    send a command."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.web = console.web

    async def read(
        self, s: StaffVisit, key: str, before: int | None = None, as_of: datetime | None = None
    ) -> Found | None:
        """The request as workflow shows it to the person (as it was at `as_of`, when given),
        its desk and its ETag; None when workflow shows none, or it is of a desk the person
        does not work at."""
        answer = await self.web.services.read(
            s.visit.identity(), "workflow", f"/requests/{key}", history_limit=HISTORY_PAGE,
            before_version=before, as_of=None if as_of is None else as_of.isoformat(),
        )  # fmt: skip
        if answer.status_code != 200:
            return None
        request = answer.json()
        desk = (await self.console.desks(s)).get(request.get("policy_id", ""))
        if desk is None:
            return None
        return request, desk, answer.headers.get("etag", "")

    def forms(
        self, s: StaffVisit, desk: Mapping[str, Any], request: Mapping[str, Any],
        staff: list[cc.Person],
    ) -> list[cc.CommandForm]:  # fmt: skip
        """The forms the person may send now."""
        assert s.visit.person is not None
        return cc.forms_now(
            desk, request, s.visit.person.email, s.roles_at(desk["id"]), staff,
            self.web.portal.clock(),
        )  # fmt: skip

    async def staff(self, s: StaffVisit, desk: Mapping[str, Any], request: Any) -> list[cc.Person]:
        """The desk's people, when the person may assign the request now (else none needed)."""
        status = request["status"]["id"]
        if role_for(desk, s.roles_at(desk["id"]), action="assign", status=status) is None:
            return []
        support = {r["id"] for r in desk.get("roles", ()) if r.get("side") == "support"}
        async with self.web.portal.pool.acquire() as conn:
            found = await staff_of(conn, desk["id"], support)
        return [cc.Person(member.email, member.name) for member in found]

    async def clocks(self, s: StaffVisit, key: str, as_of: datetime | None = None) -> Any:
        """The request's clocks as sla tells them (as they stood at `as_of`, when given); None
        when it does not (the page goes on)."""
        at = None if as_of is None else as_of.isoformat()
        try:
            answer = await self.web.services.read(
                s.visit.identity(), "sla", f"/requests/{key}/clocks", as_of=at
            )
        except Unavailable:
            return None
        return answer.json() if answer.status_code == 200 else None

    async def language(self, s: StaffVisit, key: str, request: Mapping[str, Any]) -> str | None:
        """The request's language, as its creation tells it (read when not on the page)."""
        for entry in request.get("history", ()):
            if entry["type"] == "TicketCreated":
                return str(entry["data"].get("language") or "") or None
        answer = await self.web.services.read(
            s.visit.identity(), "workflow", f"/requests/{key}", history_limit=1, before_version=2
        )
        if answer.status_code != 200:
            return None
        created = answer.json().get("history") or [{}]
        return str(created[0].get("data", {}).get("language") or "") or None

    async def replies(
        self, s: StaffVisit, key: str, desk_id: str, request: Mapping[str, Any]
    ) -> tuple[list[CannedReply], bool]:
        """The desk's canned replies in the request's language, or all of them (grouped by
        language: the second value) when the request tells none or none is in its language."""
        language = await self.language(s, key, request)
        async with self.web.portal.pool.acquire() as conn:
            found = await canned.replies_of(conn, desk_id, language) if language else []
            if found:
                return found, False
            return await canned.replies_of(conn, desk_id), True

    async def filled(
        self, s: StaffVisit, desk: Mapping[str, Any], request: Mapping[str, Any], reply_id: str
    ) -> str | None:
        """The canned reply `reply_id` of the request's desk, filled with the request's
        fields; None when the desk has no such reply."""
        try:
            wanted = uuid.UUID(reply_id)
        except ValueError:
            return None
        assert s.visit.person is not None
        async with self.web.portal.pool.acquire() as conn:
            reply = await canned.reply(conn, desk["id"], wanted)
            if reply is None:
                return None
            requester = await account(conn, str(request.get("requester_id") or ""))
        values = {
            "key": str(request["key"]),
            "subject": str(request.get("subject") or ""),
            "requester": requester.name if requester else str(request.get("requester_id") or ""),
            "agent": s.visit.person.name,
            "desk": str(desk.get("name") or desk["id"]),
        }
        return fill(reply.body, values)

    async def page(
        self,
        s: StaffVisit,
        key: str,
        status: int = 200,
        before: int | None = None,
        typed: Typed | None = None,
        found: Found | None = None,
        as_of: datetime | None = None,
        **values: Any,
    ) -> Response:
        """The request's page (404 page when the person may not see it here); `typed` keeps
        what was typed in forms, `found` is the request when just read, `as_of` the instant of
        a past view (`found` is then the request as it was), `values` are the page's notices
        and errors."""
        found = found or await self.read(s, key, before)
        if found is None:
            return self.missing(s, key)
        request, desk, etag = found
        staff = [] if as_of else await self.staff(s, desk, request)
        forms = [] if as_of else self.forms(s, desk, request, staff)
        typed = dict(typed or {})
        replies: list[CannedReply] = []
        grouped = False
        chosen = str(values.pop("canned", "") or "")
        into = "note" if values.pop("into", "") == "note" else "comment"
        if any(f.name in TEXTAREAS for f in forms):
            replies, grouped = await self.replies(s, key, desk["id"], request)
            text = await self.filled(s, desk, request, chosen) if chosen else None
            if text is not None:
                typed[into] = {**typed.get(into, {}), "body": text}
        policy = self.web.portal.policies.get(desk["id"])
        language = s.visit.language

        def named(items: Any, item_id: str) -> str:
            """A status's or a priority's label in the person's language."""
            return label(cc.labels_of(items, item_id), language, item_id)

        def seen(entry: Mapping[str, Any]) -> dict[str, Any] | None:
            """What the customer side sees of the entry (None: nothing, e.g. an internal note)."""
            if policy is None:
                return None
            return entry_seen_by(Audience.CUSTOMER, policy, entry["type"], entry.get("data", {}))

        def hidden_fields(entry: Mapping[str, Any]) -> set[str]:
            """The entry's fields the customer side does not see (e.g. an escalation's comment)."""
            return set(entry.get("data", {})) - set(seen(entry) or {})

        return self.console.page(
            s,
            "console/request.html",
            status,
            current_desk=desk["id"],
            request=request,
            desk=desk,
            etag=etag if ETAG.fullmatch(etag) else "",
            forms=forms,
            typed=typed,
            clocks=await self.clocks(s, key, as_of),
            as_of=as_of,
            replies=replies,
            grouped=grouped,
            internal=lambda entry: seen(entry) is None,
            hidden_fields=hidden_fields,
            field_id=field_id,
            history_key=history_key,
            status_name=lambda sid: named(desk.get("statuses", ()), sid),
            role_label=lambda r: role_label(desk, r, language),
            priority_name=lambda p: named(desk.get("priority_levels", ()), p),
            code_name=lambda c: named(desk.get("resolution_codes", ()), c),
            **values,
        )

    def missing(self, s: StaffVisit, key: str) -> Response:
        """The 404 page of a request the person may not see here."""
        return self.console.page(s, "console/request_missing.html", 404, key=key[:40])

    def textarea(self, s: StaffVisit, form: str, text: str) -> Response:
        """Only the reply's or the note's textarea, holding `text` (htmx swaps it in)."""
        return self.web.page(
            s.visit, "console/request_textarea.html", form=form, text=text, field_id=field_id
        )


def agent_request_router(console: Console) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    pages = AgentRequest(console)
    web = console.web

    @router.get("/console/requests/{key}")
    async def request_page(
        request: Request, key: str, before: str = "", done: str = "", canned: str = "",
        into: str = "", as_of: str = "",
    ) -> Response:  # fmt: skip
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if not KEY.fullmatch(key):
            return pages.missing(s, key)
        older = int(before) if VERSION.fullmatch(before) else None
        notice = f"agent.done.{done}" if done in cc.NAMES else None
        try:
            if as_of:
                return await past(s, key, older, as_of[:40])
            return await pages.page(
                s, key, before=older, notice=notice, canned=canned[:40], into=into[:10]
            )
        except Unavailable:
            return console.unavailable(s)

    async def past(s: StaffVisit, key: str, older: int | None, typed: str) -> Response:
        """The request as it was at the instant `typed` (a `datetime-local` value in the
        person's time zone), or as it is now with the reason when there is no such view."""
        assert s.visit.person is not None
        at = past_instant(typed, s.visit.person.time_zone)
        if at is None:
            return await pages.page(s, key, 422, as_of_error="agent.as_of.invalid",
                                    as_of_typed=typed)  # fmt: skip
        found = await pages.read(s, key, older, at)
        if found is None:  # not yet created then (or not theirs: the page now says which)
            return await pages.page(s, key, 404, as_of_error="agent.as_of.before",
                                    as_of_typed=typed)  # fmt: skip
        return await pages.page(s, key, found=found, as_of=at, as_of_typed=typed)

    @router.post("/console/requests/{key}/canned", max_body_size=COMMAND_BYTES)
    async def canned_text(
        request: Request,
        key: str,
        canned: Annotated[str, Form(max_length=100)] = "",
        into: Annotated[str, Form(max_length=20)] = "",
        body: Field_ = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        """The reply's (or the note's) textarea with the canned reply added to what it holds
        (htmx swaps it in; the page itself does without JavaScript)."""
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if not KEY.fullmatch(key):
            return pages.missing(s, key)
        form = "note" if into == "note" else "comment"
        if not s.visit.csrf_ok(csrf):
            return web.page(s.visit, "notice.html", 403, error="csrf", title="console.title")
        current = bounded(body, cc.MAX_BODY)
        if current is None:  # htmx swaps no 4xx in: the draft stays as typed
            return web.finish(s.visit, Response(status_code=422))
        try:
            found = await pages.read(s, key)
            if found is None:
                return pages.missing(s, key)
            text = await pages.filled(s, found[1], found[0], canned[:40])
        except Unavailable:
            return console.unavailable(s)
        if text is None:
            text = current
        elif current:
            text = f"{current}\n\n{text}"
        return pages.textarea(s, form, text[: cc.MAX_BODY])

    @router.post("/console/requests/{key}/command/{name}", max_body_size=COMMAND_BYTES)
    async def command(
        request: Request,
        key: str,
        name: str,
        csrf: Field_ = "",
        etag: Field_ = "",
        version: Field_ = "",
        comment: Field_ = "",
        body: Field_ = "",
        assignee_id: Field_ = "",
        group_id: Field_ = "",
        party: Field_ = "",
        scheduled_for: Field_ = "",
        responsible: Field_ = "",
        target: Field_ = "",
        resolution_code: Field_ = "",
        confirmation_version: Field_ = "",
        priority: Field_ = "",
        reason: Field_ = "",
        linked_key: Field_ = "",
        participant_id: Field_ = "",
    ) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if not KEY.fullmatch(key) or name not in cc.NAMES:
            return pages.missing(s, key)
        sent = {
            "comment": comment, "body": body, "assignee_id": assignee_id, "group_id": group_id,
            "party": party, "scheduled_for": scheduled_for, "responsible": responsible,
            "target": target, "resolution_code": resolution_code,
            "confirmation_version": confirmation_version, "priority": priority,
            "reason": reason, "linked_key": linked_key, "participant_id": participant_id,
        }  # fmt: skip
        rendered = int(version) if VERSION.fullmatch(version) else None
        if rendered is None and ETAG.fullmatch(etag):
            rendered = int(etag.strip('"'))
        try:
            return await act(s, key, name, sent, etag, rendered, csrf)
        except Unavailable:
            return console.unavailable(s)

    async def act(
        s: StaffVisit, key: str, name: str, sent: dict[str, str], etag: str,
        rendered: int | None, csrf: str,
    ) -> Response:  # fmt: skip
        """Check the form against the request as it is now, send it, answer with a page."""
        kept = {name: {k: v[:200_000] for k, v in sent.items()}}
        if not s.visit.csrf_ok(csrf):
            return await pages.page(s, key, 403, typed=kept, problem="csrf", failed=name)
        found = await pages.read(s, key)
        if found is None:
            return pages.missing(s, key)
        request, desk, _ = found
        staff = await pages.staff(s, desk, request) if name == "assign" else []
        form = next((f for f in pages.forms(s, desk, request, staff) if f.name == name), None)
        if form is None:
            if rendered is not None and rendered != request["version"]:
                return await stale(s, key, name, rendered, kept)
            return await pages.page(s, key, 409, typed=kept, found=found, problem="agent.refused",
                                    refusal_key="agent.not_offered", failed=name)  # fmt: skip
        assert s.visit.person is not None
        checked = cc.check(form, sent, desk, request, s.visit.person.time_zone)
        kept = {name: checked.typed}
        if checked.errors:
            first = next(iter(checked.errors.values()))  # the reason atop, each beside its field
            return await pages.page(s, key, 422, typed=kept, found=found, problem="agent.refused",
                                    refusal_key=first, field_errors=checked.errors,
                                    failed=name)  # fmt: skip
        headers = {"X-Actor-Role": form.role}
        if ETAG.fullmatch(etag):
            headers["If-Match"] = etag
        elif rendered is not None:
            headers["If-Match"] = f'"{rendered}"'
        answer = await web.services.call(
            s.visit.identity(), "workflow", "POST", f"/requests/{key}/{form.path}",
            json=checked.body, headers=headers,
        )  # fmt: skip
        if answer.status_code < 300:
            return web.finish(
                s.visit, RedirectResponse(f"/console/requests/{key}?done={name}", 303)
            )
        if answer.status_code == 404:
            return pages.missing(s, key)
        if answer.status_code == 412:
            return await stale(s, key, name, rendered or 0, kept)
        reason, field = refusal_of(answer)
        errors = {field: "agent.error.refused"} if field in FIELDS else {}
        return await pages.page(
            s, key, answer.status_code if answer.status_code in (403, 409, 422) else 409,
            typed=kept, problem="agent.refused", refusal=reason, field_errors=errors,
            field_reason=reason, failed=name,
        )  # fmt: skip

    async def stale(s: StaffVisit, key: str, name: str, rendered: int, kept: Typed) -> Response:
        """The page again, saying someone acted first and what changed since `rendered`."""
        found = await pages.read(s, key)
        if found is None:
            return pages.missing(s, key)
        changes = cc.changes_since(found[0], rendered)
        return await pages.page(
            s, key, 412, typed=kept, found=found, problem="agent.stale", changes=changes,
            failed=name,
        )  # fmt: skip

    return router
