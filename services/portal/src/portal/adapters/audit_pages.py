"""The console's audit pages: who changed what on requests, when, and why, as workflow's audit
tells it (`GET /requests/{key}/audit`, `GET /desks/{desk}/audit`), each with its CSV download.

- `/console/requests/{key}/audit` (and `.../audit.csv`): every field change of one request
  (status, priority, assignee, group, participants, resolution, the qualification it was filed
  with), oldest first, with who, when and the reason or comment. For the support side of the
  request's desk; anything workflow does not show is the console's 404 page.
- `/console/audit/{desk}?from=&to=` (and `/console/audit/{desk}/audit.csv?from=&to=`): the
  changes made on the desk's requests in a period, for the desk's leads (the roles its policy
  marks `administers`: 403 page for anyone else). `from` and `to` are `datetime-local` values in
  the person's time zone; the page shows the first `PAGE_ROWS` changes and says when there are
  more, the CSV holds up to workflow's bound (and says in its file name which period).

The CSV comes from workflow as it is (UTF-8, each cell safe to open in a spreadsheet), sent as
an attachment and never cached.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from portal.adapters.agent_request import past_instant
from portal.adapters.console import Console, StaffVisit
from portal.adapters.request_pages import KEY, label, role_label
from portal.adapters.services import Unavailable
from portal.domain import console_commands as cc

PAGE_ROWS = 500  # changes a desk's audit page shows (the CSV holds more)
FIELDS = ("status", "priority", "assignee_id", "group_id", "participants", "resolution_code",
          "product_version", "company", "contact", "error_message")  # fmt: skip


def period_of(
    start: str, end: str, time_zone: str
) -> tuple[datetime | None, datetime | None, dict[str, str]]:
    """The period typed (two `datetime-local` values in `time_zone`) in UTC, and the errors by
    field (`from`, `to`) when a value is not an instant or the period ends before it starts."""
    since = past_instant(start[:40], time_zone) if start else None
    until = past_instant(end[:40], time_zone) if end else None
    errors: dict[str, str] = {}
    if start and since is None:
        errors["from"] = "audit.error.instant"
    if end and until is None:
        errors["to"] = "audit.error.instant"
    if since is not None and until is not None and until <= since:
        errors["to"] = "audit.error.reversed"
    return since, until, errors


def audit_pages_router(console: Console) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    web = console.web

    def csv_answer(s: StaffVisit, answer: Any) -> Response:
        """Workflow's CSV as a download (its file name kept)."""
        disposition = answer.headers.get("content-disposition") or 'attachment; filename="a.csv"'
        headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
        more = answer.headers.get("x-more-rows")
        if more:
            headers["X-More-Rows"] = more
        response = Response(answer.content, media_type="text/csv; charset=utf-8", headers=headers)
        return web.finish(s.visit, response)

    def namers(s: StaffVisit, desk: dict[str, Any]) -> dict[str, Any]:
        """How the page names a desk's statuses, priorities, codes and roles."""
        language = s.visit.language

        def value(field: str, item: str | None) -> str:
            if item is None:
                return "\u2013"  # an en dash: no value
            items = {"status": "statuses", "priority": "priority_levels",
                     "resolution_code": "resolution_codes"}.get(field)  # fmt: skip
            if items is None:
                return item
            return label(cc.labels_of(desk.get(items, ()), item), language, item)

        return {
            "value_name": value,
            "role_label": lambda r: role_label(desk, r, language) or r,
        }

    async def request_audit(s: StaffVisit, key: str, as_csv: bool) -> Response:
        identity = s.visit.identity()
        found = await web.services.read(identity, "workflow", f"/requests/{key}", history_limit=1)
        if found.status_code != 200:
            return console.page(s, "console/request_missing.html", 404, key=key[:40])
        request = found.json()
        desk = (await console.desks(s)).get(request.get("policy_id", ""))
        if desk is None:
            return console.page(s, "console/request_missing.html", 404, key=key[:40])
        answer = await web.services.read(
            identity, "workflow", f"/requests/{key}/audit", format="csv" if as_csv else None
        )
        if answer.status_code != 200:
            return console.page(s, "console/request_missing.html", 404, key=key[:40])
        if as_csv:
            return csv_answer(s, answer)
        return console.page(
            s, "console/audit.html", current_desk=desk["id"], request=request, desk=desk,
            rows=answer.json(), more=False, fields=FIELDS,
            csv_link=f"/console/requests/{key}/audit.csv", **namers(s, desk),
        )  # fmt: skip

    async def request_audit_answer(request: Request, key: str, as_csv: bool) -> Response:
        """A request's audit as its page or its CSV, for the staff who may read it."""
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if not KEY.fullmatch(key):
            return console.page(s, "console/request_missing.html", 404, key=key[:40])
        try:
            return await request_audit(s, key, as_csv=as_csv)
        except Unavailable:
            return console.unavailable(s)

    @router.get("/console/requests/{key}/audit")
    async def request_audit_page(request: Request, key: str) -> Response:
        return await request_audit_answer(request, key, as_csv=False)

    @router.get("/console/requests/{key}/audit.csv")
    async def request_audit_csv(request: Request, key: str) -> Response:
        return await request_audit_answer(request, key, as_csv=True)

    async def desk_audit(
        s: StaffVisit, desk_id: str, start: str, end: str, as_csv: bool
    ) -> Response:
        if desk_id not in s.leads:
            return web.page(s.visit, "notice.html", 403, error="audit.leads_only",
                            title="console.title")  # fmt: skip
        assert s.visit.person is not None
        desk = (await console.desks(s)).get(desk_id)
        if desk is None:
            return web.page(s.visit, "notice.html", 404, error="audit.no_desk",
                            title="console.title")  # fmt: skip
        since, until, errors = period_of(start, end, s.visit.person.time_zone)
        rows: list[dict[str, Any]] = []
        more = False
        status = 422 if errors else 200
        if since is not None and until is not None and not errors:
            params = {"from": since.isoformat(), "to": until.isoformat()}
            if as_csv:
                params["format"] = "csv"
            else:
                params["limit"] = str(PAGE_ROWS)
            answer = await web.services.read(
                s.visit.identity(), "workflow", f"/desks/{desk_id}/audit", **params
            )
            if answer.status_code == 200 and as_csv:
                return csv_answer(s, answer)
            if answer.status_code == 200:
                rows = answer.json()
                more = answer.headers.get("x-more-rows") == "true"
            elif answer.status_code == 422:
                errors["to"] = "audit.error.period"
                status = 422
            else:
                return web.page(s.visit, "notice.html", 403, error="audit.leads_only",
                                title="console.title")  # fmt: skip
        elif as_csv:
            errors.setdefault("from", "audit.error.period")
            status = 422
        query = urlencode({"from": start[:40], "to": end[:40]})
        return console.page(
            s, "console/audit.html", status, current_desk=desk_id, desk=desk, rows=rows,
            more=more, fields=FIELDS, typed={"from": start[:40], "to": end[:40]},
            errors=errors, asked=since is not None and until is not None and not errors,
            csv_link=f"/console/audit/{desk_id}/audit.csv?{query}", **namers(s, desk),
        )  # fmt: skip

    async def desk_audit_answer(request: Request, desk_id: str, as_csv: bool) -> Response:
        """A desk's audit over the period asked (`from`, `to`) as its page or its CSV."""
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        start = request.query_params.get("from", "")
        end = request.query_params.get("to", "")
        try:
            return await desk_audit(s, desk_id[:100], start, end, as_csv=as_csv)
        except Unavailable:
            return console.unavailable(s)

    @router.get("/console/audit/{desk_id}")
    async def desk_audit_page(request: Request, desk_id: str) -> Response:
        return await desk_audit_answer(request, desk_id, as_csv=False)

    @router.get("/console/audit/{desk_id}/audit.csv")
    async def desk_audit_csv(request: Request, desk_id: str) -> Response:
        return await desk_audit_answer(request, desk_id, as_csv=True)

    return router
