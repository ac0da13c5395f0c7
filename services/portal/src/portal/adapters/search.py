"""The console's search (`GET /console/search`): every request of the person's desks found by
key or by words of its subject, description and comments (internal ones too: staff only),
filtered by desk, status, priority, organisation, assignee (or unassigned), open or closed,
creation dates; one page of results at a time, each linking to the request's console page.
Workflow answers at most the 1,000 most recently changed matches; the page says when more do.

The form is a GET form, so a search is a link (bookmarked, shared, paged) and works without
JavaScript. What is typed is checked here first (`read_search`): a value that is not one the
person may ask for (a desk they do not work at, a status the desk does not have, a date that
is none, control characters...) is answered with the form again, status 422, the reason beside
the field. Workflow searches (`GET /search`, as the person: the support side of their desks
only), in the person's time zone for the dates and their language for the extracts."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from portal.adapters.console import Console, StaffVisit
from portal.adapters.request_pages import label, status_of
from portal.adapters.services import Unavailable
from portal.adapters.web import bounded

PAGE_SIZE = 25
MATCHES = 1_000  # the requests workflow's search answers at most: the newest matches
MAX_PAGE = MATCHES // PAGE_SIZE
STATES = ("all", "open", "closed")
PAGE = re.compile(r"[1-9][0-9]{0,3}")  # ASCII digits only
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
COUNT = re.compile(r"[0-9]{1,9}")
EARLIEST, LATEST = date(1970, 1, 1), date(9998, 12, 31)
ECHO = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # never written back into the page
Desk = Mapping[str, Any]  # one desk of workflow's `GET /desks`, as JSON


@dataclass(frozen=True)
class SearchForm:
    """The search as typed (the form's values, shown back as they are) and the page asked."""

    q: str = ""
    desk: str = ""
    status: str = ""
    priority: str = ""
    organisation: str = ""
    assignee: str = ""
    unassigned: bool = False
    created_from: str = ""
    created_to: str = ""
    state: str = "all"
    page: int = 1

    def link(self, **changed: Any) -> str:
        """This search's address with `changed` values (page 1 unless a page is named)."""
        values = {**asdict(self), "page": 1, **changed}
        values["unassigned"] = "1" if values["unassigned"] else ""
        values["from"], values["to"] = values.pop("created_from"), values.pop("created_to")
        if values["page"] == 1:
            del values["page"]
        if values["state"] == "all":
            del values["state"]
        return "/console/search?" + urlencode({k: v for k, v in values.items() if v != ""})


def choices(desks: Mapping[str, Desk], chosen: str, kind: str) -> list[tuple[str, Any]]:
    """The statuses (`kind` "statuses") or priorities ("priority_levels") the form offers:
    the chosen desk's, or those of every desk of the person (each once, in desk order), as
    (id, labels)."""
    seen: dict[str, Any] = {}
    for desk_id, desk in desks.items():
        if chosen and desk_id != chosen:
            continue
        for entry in desk.get(kind, ()):
            seen.setdefault(entry["id"], entry.get("labels"))
    return list(seen.items())


def _day(text: str) -> date | None:
    """`text` as a day (YYYY-MM-DD, 1970 to 9998), or None when it is none."""
    if not DATE.fullmatch(text):
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    return day if EARLIEST <= day <= LATEST else None


def read_search(
    params: Mapping[str, str], desks: Mapping[str, Desk]
) -> tuple[SearchForm, dict[str, str]]:
    """The search asked in `params` (the query string) by a person working at `desks`, and the
    fields refused, each with the catalogue key of why (none: the search may be made)."""

    def echo(name: str, limit: int) -> str:
        return ECHO.sub("", params.get(name, ""))[:limit].strip()

    form = SearchForm(
        q=echo("q", 300), desk=echo("desk", 100), status=echo("status", 100),
        priority=echo("priority", 100), organisation=echo("organisation", 300),
        assignee=echo("assignee", 300), unassigned=params.get("unassigned", "") == "1",
        created_from=echo("from", 20), created_to=echo("to", 20),
        state=echo("state", 10) or "all",
    )  # fmt: skip
    page = params.get("page", "1")
    form = replace(form, page=min(int(page), MAX_PAGE) if PAGE.fullmatch(page) else 1)
    errors: dict[str, str] = {}
    if bounded(params.get("q", ""), 200) is None:
        errors["q"] = "search.q_invalid"
    if form.desk and form.desk not in desks:
        errors["desk"] = "search.desk_invalid"
    chosen = form.desk if form.desk in desks else ""
    if form.status and form.status not in dict(choices(desks, chosen, "statuses")):
        errors["status"] = "search.status_invalid"
    if form.priority and form.priority not in dict(choices(desks, chosen, "priority_levels")):
        errors["priority"] = "search.priority_invalid"
    if bounded(params.get("organisation", ""), 200) is None:
        errors["organisation"] = "search.organisation_invalid"
    if bounded(params.get("assignee", ""), 254) is None:
        errors["assignee"] = "search.assignee_invalid"
    elif form.assignee and form.unassigned:
        errors["assignee"] = "search.assignee_or_unassigned"
    for name, value in (("created_from", form.created_from), ("created_to", form.created_to)):
        if value and _day(value) is None:
            errors[name] = "search.date_invalid"
    start, end = _day(form.created_from), _day(form.created_to)
    if start and end and start > end:
        errors["created_to"] = "search.dates_reversed"
    if form.state not in STATES:
        errors["state"] = "search.state_invalid"
    return form, errors


def workflow_params(form: SearchForm, zone: str, language: str) -> dict[str, Any]:
    """What workflow's `GET /search` is asked for `form` (None: not sent)."""
    return {
        "q": form.q or None,
        "policy_id": form.desk or None,
        "status": form.status or None,
        "priority": form.priority or None,
        "organisation_id": form.organisation or None,
        "assignee_id": form.assignee.lower() or None,
        "unassigned": "true" if form.unassigned else None,
        "state": form.state,
        "created_from": form.created_from or None,
        "created_to": form.created_to or None,
        "zone": zone,
        "snippets": "true" if form.q else None,
        "language": language,
        "limit": PAGE_SIZE,
        "offset": (form.page - 1) * PAGE_SIZE,
    }


def shown(
    row: Mapping[str, Any], desks: Mapping[str, Desk], names: Mapping[str, str], language: str
) -> dict[str, Any]:
    """One row of workflow's answer with what the results table shows: the desk's name, the
    status and the priority in the person's language."""
    desk_id = row["policy_id"]
    status = status_of(desks.get(desk_id), row["status"])
    priorities = dict(choices(desks, desk_id, "priority_levels"))
    return {
        **row,
        "desk_name": names.get(desk_id, desk_id),
        "status_label": label(status.get("labels"), language, row["status"]),
        "priority_label": label(priorities.get(row["priority"]), language, row["priority"]),
    }


def search_router(console: Console) -> APIRouter:
    """The route described in the module docstring."""
    router = APIRouter(include_in_schema=False)

    def render(
        s: StaffVisit,
        status: int,
        form: SearchForm,
        desks: Mapping[str, Desk],
        **values: Any,
    ) -> Response:
        chosen = form.desk if form.desk in desks else ""
        total = values.pop("total", 0)
        rows = values.pop("rows", [])
        first = (form.page - 1) * PAGE_SIZE + 1 if rows else 0
        paging = {
            "first": first,
            "last": first + len(rows) - 1 if rows else 0,
            "total": total,
            "pages": max(1, math.ceil(total / PAGE_SIZE)),
        }
        return console.page(
            s, "console/search.html", status, form=form, rows=rows, paging=paging,
            statuses=choices(desks, chosen, "statuses"),
            priorities=choices(desks, chosen, "priority_levels"), max_page=MAX_PAGE,
            **values,
        )  # fmt: skip

    @router.get("/console/search")
    async def search_page(request: Request) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        try:
            desks = await console.desks(s)
            form, errors = read_search(request.query_params, desks)
            if errors:
                return render(s, 422, form, desks, errors=errors, error="search.refused")
            person = s.visit.person
            assert person is not None
            params = workflow_params(form, person.time_zone, s.visit.language)
            answer = await console.web.services.read(
                s.visit.identity(), "workflow", "/search", **params
            )
        except Unavailable:
            return console.unavailable(s)
        if answer.status_code != 200:
            why = "search.not_allowed" if answer.status_code == 403 else "search.refused_by_desk"
            return render(s, answer.status_code, form, desks, error=why)
        names = {p.id: p.name for p in console.web.portal.policies.values()}
        rows = [shown(row, desks, names, s.visit.language) for row in answer.json()]
        told = answer.headers.get("x-total-count", "0")
        total = int(told) if COUNT.fullmatch(told) else len(rows)
        more = answer.headers.get("x-more-matches") == "true"
        return render(s, 200, form, desks, rows=rows, total=total, more=more, searched=True)

    return router
