"""The console's queues: a desk's queues (`portal.domain.queues`) with their counts, one queue's
requests the most urgent first (sla's `GET /queue`, sorted by business time left), each row with
its clocks' states and why, the time left and when it is due in the agent's time zone; and the
bulk actions on a selection of them (assign, change the priority, close), each applied request by
request through workflow's own commands, a refusal for one reported while the others go on.

- `GET /console/queues/{desk}?queue=<id>&page=<n>`: the page (404 page for a desk the person
  does not work at; an unknown queue is the person's default one).
- `GET /console/queues/{desk}/live?...&since=<fingerprint>&keys=...`: what the page polls
  every 10 s (htmx): 204 while the queue shows the same, else the queue's region again with the
  boxes the agent had checked (sent as `keys`) still checked, and the queues' counts (out of
  band). Without JavaScript the page has a refresh link.
- `POST /console/queues/{desk}/bulk`: the selection (`keys`, at most 100 request keys) and the
  action (`assign` with `assignee_id`, one of the desk's staff; `priority` with `priority` and a
  `reason`, required when lowering; `close` with a `resolution_code` of the desk); a result page
  lists each key, done or refused with workflow's reason. A bad selection is a 4xx page, never
  a 500.

Every call is made as the person (their token); each command carries `X-Actor-Role`, the first
of their roles the desk allows it from the request's status (`portal.domain.console.role_for`),
so that workflow decides on the role the action was offered for.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response

from portal.adapters.console import Console, StaffVisit
from portal.adapters.request_pages import KEY, label, role_label, status_of
from portal.adapters.services import Unavailable
from portal.adapters.web import bounded
from portal.application.desk_staff import StaffMember, staff_of
from portal.catalogue import text
from portal.domain.console import Desk, role_for
from portal.domain.queues import Queue, chosen_queue, duration, queues_of

PAGE_SIZE = 25
MAX_SELECTED = 100
MAX_REASON = 500
PAGE = re.compile(r"[1-9][0-9]{0,3}")  # ASCII digits only
MAX_PAGE = 4000  # sla serves a queue up to its 100,000th row: a deeper page shows the last one
ACTIONS = ("assign", "priority", "close")
CONCURRENT = 4  # requests of a bulk action handled at once
CLOCK_STATES = {"running", "paused", "stopped", "not started"}


@dataclass(frozen=True)
class QueueView:
    """What one queue page shows: the desk, its queues and counts, the queue, its rows."""

    desk_id: str
    desk: Desk
    queues: tuple[Queue, ...]
    counts: dict[str, int | None]
    queue: Queue
    page: int
    total: int
    rows: list[dict[str, Any]]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    def fingerprint(self) -> str:
        """A short digest of everything the queue's region and counts show: the page polls
        with it and is answered 204 while it is the same."""
        shown = [self.queue.id, self.page, self.total, self.counts, self.rows]
        return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]

    def link(self, page: int | None = None) -> str:
        """The address of this queue (at `page`, this page when None)."""
        query = {"queue": self.queue.id, "page": page or self.page}
        return f"/console/queues/{self.desk_id}?{urlencode(query)}"

    def live(self) -> str:
        """The address the page polls (see the module)."""
        query = {"queue": self.queue.id, "page": self.page, "since": self.fingerprint()}
        return f"/console/queues/{self.desk_id}/live?{urlencode(query)}"


def clock_view(clock: Mapping[str, Any] | None, status_label: str) -> dict[str, Any]:
    """One clock of a row: its state (a catalogue key), why, and when it is due. A running or
    paused clock is so because of the status the request is in (`status_label`); a stopped one
    says what stopped it in sla's words (English: `why_lang`)."""
    clock = clock or {}
    state = clock.get("state")
    if state not in CLOCK_STATES:
        return {"state": None, "why": "", "why_lang": None, "due": None}
    if state in ("running", "paused"):
        why, why_lang = status_label, None
    elif state == "stopped":
        why, why_lang = str(clock.get("reason") or ""), "en"
    else:
        why, why_lang = "", None
    return {
        "state": "queue.clock." + state.replace(" ", "_"),
        "why": why,
        "why_lang": why_lang,
        "due": clock.get("due"),
    }


def left_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The business time left on the row's most urgent clock: a catalogue key and the
    duration (None: no clock counts)."""
    left = row.get("business_time_left_s")
    if not isinstance(left, int):
        return {"key": None, "time": "", "due": None}
    paused = row.get("next_due") is None
    key = "queue.left.breached" if left < 0 else "queue.left.paused" if paused else "queue.left"
    return {"key": key, "time": duration(left), "due": row.get("next_due")}


def row_view(
    desk: Desk, row: Mapping[str, Any], language: str, names: Mapping[str, str]
) -> dict[str, Any]:
    """A row of sla's queue as the table shows it, in `language` (`names`: the desk's staff
    by address)."""
    status = status_of(desk, str(row.get("status")))
    status_label = label(status.get("labels"), language, str(row.get("status")))
    priority: Mapping[str, Any] = next(
        (p for p in desk.get("priority_levels", ()) if p.get("id") == row.get("priority")), {}
    )
    assignee = row.get("assignee_id")
    actor = row.get("expected_actor")
    return {
        "key": row.get("key"),
        "subject": row.get("subject") or "",
        "priority": label(priority.get("labels"), language, str(row.get("priority"))),
        "status": status_label,
        "actor": role_label(desk, actor, language) or actor or "",
        "assignee": names.get(assignee, assignee) if assignee else None,
        "clocks": {
            "response": clock_view(row.get("response"), status_label),
            "resolution": clock_view(row.get("resolution"), status_label),
        },
        "left": left_view(row),
    }


def refusal_of(answer: Any) -> str:
    """Workflow's reason for refusing a command (409/403/412: a sentence; 422: the fields'
    messages), bounded."""
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(str(d.get("msg", "")) for d in detail if isinstance(d, dict))
    return str(detail or "")[:500]


def selected(values: Sequence[str]) -> list[str] | None:
    """The request keys of a selection, once each, in order; None when one is not a key."""
    keys: list[str] = []
    for value in values:
        if not isinstance(value, str) or not KEY.fullmatch(value):
            return None
        if value not in keys:
            keys.append(value)
    return keys


@dataclass(frozen=True)
class Outcome:
    """What became of one request of a bulk action: done, or refused and why (workflow's
    words in `reason`, or a catalogue key in `why`)."""

    key: str
    done: bool
    reason: str = ""
    why: str | None = None


class QueuePages:
    """The queue pages' steps: ask sla and workflow as the person, render."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.services = console.web.services

    async def staff(self, desk_id: str, desk: Desk) -> list[StaffMember]:
        """Who works at the desk (the assignees offered)."""
        support = {r["id"] for r in desk.get("roles", ()) if r.get("side") == "support"}
        async with self.console.web.portal.pool.acquire() as conn:
            return await staff_of(conn, desk_id, support)

    async def view(
        self,
        s: StaffVisit,
        desk_id: str,
        desk: Desk,
        asked: str | None,
        page: int,
        staff: Sequence[StaffMember] | None = None,
    ) -> QueueView | None:
        """The queue asked for as sla serves it to the person now (None: sla refused);
        assignees are named from `staff` (the desk's, read when not given)."""
        assert s.visit.person is not None
        me = s.visit.person.email
        queues = queues_of(desk, me)
        queue = chosen_queue(queues, asked, s.roles_at(desk_id))
        identity = s.visit.identity()
        params: dict[str, Any] = {"policy_id": desk_id, "limit": PAGE_SIZE,
                                  "offset": (page - 1) * PAGE_SIZE}  # fmt: skip
        statuses = [value for name, value in queue.params if name == "status"]
        params.update({name: value for name, value in queue.params if name != "status"})
        if statuses:
            params["status"] = statuses
        answer, told = await asyncio.gather(
            self.services.read(identity, "sla", "/queue", **params),
            self.services.read(identity, "sla", "/queue/counts", policy_id=desk_id, assignee=me),
        )
        if answer.status_code != 200:
            return None
        counts = told.json() if told.status_code == 200 else {}
        if staff is None:
            staff = await self.staff(desk_id, desk)
        names = {p.email: p.name for p in staff}
        language = s.visit.language
        return QueueView(
            desk_id=desk_id,
            desk=desk,
            queues=queues,
            counts={q.id: q.count(counts) for q in queues},
            queue=queue,
            page=page,
            total=int(answer.headers.get("x-total-count", "0") or 0),
            rows=[row_view(desk, r, language, names) for r in answer.json()],
        )

    def render(
        self,
        s: StaffVisit,
        template: str,
        view: QueueView,
        status: int = 200,
        checked: Sequence[str] = (),
        **values: Any,
    ) -> Response:
        shown = {row["key"] for row in view.rows}
        return self.console.page(
            s, template, status, view=view, desk_id=view.desk_id, desk=view.desk,
            checked=set(checked), kept=[k for k in checked if k not in shown],
            queue_name=lambda q: self.queue_name(s, q), **values,
        )  # fmt: skip

    @staticmethod
    def queue_name(s: StaffVisit, queue: Queue) -> str:
        if queue.kind == "actor":
            return label(queue.labels, s.visit.language, queue.role or "")
        return text(s.visit.language, f"queue.name.{queue.kind}")

    async def bulk_one(
        self, s: StaffVisit, desk_id: str, desk: Desk, key: str, action: str, form: dict[str, str]
    ) -> Outcome:
        """Apply `action` to request `key` as workflow's command, in the role the desk allows
        it from the request's status."""
        identity = s.visit.identity()
        try:
            found = await self.services.read(
                identity, "workflow", f"/requests/{key}", history_limit=1
            )
            if found.status_code != 200:
                return Outcome(key, False, why="queue.bulk.missing")
            request = found.json()
            if request.get("policy_id") != desk_id:
                return Outcome(key, False, why="queue.bulk.other_desk")
            roles = s.roles_at(desk_id)
            status = str((request.get("status") or {}).get("id", ""))
            if action == "assign":
                path, body = "assign", {"assignee_id": form["assignee_id"]}
                role = role_for(desk, roles, action="assign", status=status)
            elif action == "close":
                path, body = "close", {"resolution_code": form["resolution_code"]}
                role = role_for(desk, roles, action="close", status=status)
            else:
                order = list(desk.get("priorities", ()))
                new, now = form["priority"], request.get("priority")
                lowering = now in order and order.index(new) < order.index(now)
                if lowering and not form["reason"]:
                    return Outcome(key, False, why="queue.bulk.reason_needed")
                path = "change-priority"
                body = {"priority": new, **({"reason": form["reason"]} if form["reason"] else {})}
                role = role_for(desk, roles, permission="change_priority")
            headers = {"X-Actor-Role": role or roles[0]}  # none allowed: workflow says why
            etag = found.headers.get("etag")
            if etag:
                headers["If-Match"] = etag
            answer = await self.services.call(
                identity, "workflow", "POST", f"/requests/{key}/{path}", json=body,
                headers=headers,
            )  # fmt: skip
        except Unavailable:
            return Outcome(key, False, why="queue.bulk.unavailable")
        if answer.status_code < 300:
            return Outcome(key, True)
        if answer.status_code == 404:
            return Outcome(key, False, why="queue.bulk.missing")
        if answer.status_code == 412:
            return Outcome(key, False, why="queue.bulk.changed")
        return Outcome(key, False, reason=refusal_of(answer), why="queue.bulk.refused")


def queues_router(console: Console) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    pages = QueuePages(console)

    def missing(s: StaffVisit) -> Response:
        return console.page(s, "notice.html", 404, error="queue.no_desk", title="queue.missing")

    def page_of(text: str) -> int:
        return min(int(text), MAX_PAGE) if PAGE.fullmatch(text) else 1

    async def desk_of(s: StaffVisit, desk_id: str) -> Desk | None:
        """The desk's description when the person works there and workflow tells it."""
        return (await console.desks(s)).get(desk_id) if desk_id in s.desks else None

    @router.get("/console/queues/{desk_id}")
    async def queue_page(request: Request, desk_id: str) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if desk_id not in s.desks:
            return missing(s)
        asked = request.query_params.get("queue", "")[:100]
        try:
            desk = await desk_of(s, desk_id)
            if desk is None:
                return console.unavailable(s)
            at = page_of(request.query_params.get("page", ""))
            staff = await pages.staff(desk_id, desk)
            view = await pages.view(s, desk_id, desk, asked, at, staff)
            if view is None:
                return console.unavailable(s)
        except Unavailable:
            return console.unavailable(s)
        return pages.render(s, "console/queue.html", view, assignees=staff)

    @router.get("/console/queues/{desk_id}/live")
    async def live(request: Request, desk_id: str) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):  # signed out meanwhile: the whole page again
            return Response(status_code=200, headers={"HX-Refresh": "true"})
        query = request.query_params
        checked = selected(query.getlist("keys")[:MAX_SELECTED]) or []
        try:
            desk = await desk_of(s, desk_id)
            view = None
            if desk is not None:
                asked, at = query.get("queue", "")[:100], page_of(query.get("page", ""))
                view = await pages.view(s, desk_id, desk, asked, at)
        except Unavailable:
            view = None  # the page keeps what it shows
        if view is None or view.fingerprint() == query.get("since", "")[:16]:
            return console.web.finish(s.visit, Response(status_code=204))
        return pages.render(s, "console/queue_live_part.html", view, checked=checked)

    @router.post("/console/queues/{desk_id}/bulk")
    async def bulk(
        request: Request,
        desk_id: str,
        keys: Annotated[list[str] | None, Form()] = None,
        action: Annotated[str, Form(max_length=20)] = "",
        assignee_id: Annotated[str, Form(max_length=400)] = "",
        priority: Annotated[str, Form(max_length=100)] = "",
        reason: Annotated[str, Form(max_length=MAX_REASON * 4)] = "",
        resolution_code: Annotated[str, Form(max_length=100)] = "",
        queue: Annotated[str, Form(max_length=100)] = "",
        page: Annotated[str, Form(max_length=10)] = "1",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if desk_id not in s.desks:
            return missing(s)
        try:
            desk = await desk_of(s, desk_id)
            if desk is None:
                return console.unavailable(s)
            staff = await pages.staff(desk_id, desk)
            chosen = selected(keys or [])

            async def again(status: int, error: str, field: str | None = None) -> Response:
                """The queue page again, the selection kept, saying what is wrong."""
                view = await pages.view(s, desk_id, desk, queue, page_of(page), staff)
                if view is None:
                    return console.unavailable(s)
                return pages.render(
                    s, "console/queue.html", view, status, checked=(chosen or [])[:MAX_SELECTED],
                    assignees=staff, error=error, bulk_field=field,
                    typed={"action": action, "assignee_id": assignee_id, "priority": priority,
                           "reason": reason[:MAX_REASON], "resolution_code": resolution_code},
                )  # fmt: skip

            if not s.visit.csrf_ok(csrf):
                return await again(403, "csrf")
            if chosen is None:
                return await again(422, "queue.bulk.bad_keys")
            if not chosen:
                return await again(422, "queue.bulk.none_selected", "keys")
            if len(chosen) > MAX_SELECTED:
                return await again(422, "queue.bulk.too_many", "keys")
            if action not in ACTIONS:
                return await again(422, "queue.bulk.no_action", "action")
            typed_reason = bounded(reason, MAX_REASON)
            form = {"assignee_id": assignee_id.strip().lower(), "priority": priority,
                    "reason": typed_reason or "", "resolution_code": resolution_code}  # fmt: skip
            if action == "assign" and form["assignee_id"] not in {p.email for p in staff}:
                return await again(422, "queue.bulk.no_assignee", "assignee_id")
            if action == "priority" and priority not in desk.get("priorities", ()):
                return await again(422, "queue.bulk.no_priority", "priority")
            if action == "priority" and typed_reason is None:
                return await again(422, "queue.bulk.bad_reason", "reason")
            codes = {c.get("id") for c in desk.get("resolution_codes", ())}
            if action == "close" and resolution_code not in codes:
                return await again(422, "queue.bulk.no_resolution", "resolution_code")
        except Unavailable:
            return console.unavailable(s)

        gate = asyncio.Semaphore(CONCURRENT)

        async def one(key: str) -> Outcome:
            async with gate:
                return await pages.bulk_one(s, desk_id, desk, key, action, form)

        outcomes = await asyncio.gather(*(one(key) for key in chosen))
        query = urlencode({"queue": queue[:100], "page": page_of(page)})
        back = f"/console/queues/{desk_id}?{query}"
        return console.page(
            s, "console/queue_bulk.html", desk_id=desk_id, desk=desk, action=action,
            outcomes=outcomes, done=sum(o.done for o in outcomes), back=back,
        )  # fmt: skip

    return router
