"""The leads' pages of the agents' console: a desk's dashboard, and its policy shown read-only
with its workflow drawn as a diagram.

- `GET /console/dashboard/{desk}?month=YYYY-MM`: the desk's open requests by status and by who
  is expected to act, today's SLA warnings and breaches, the month's SLA compliance per
  priority, its satisfaction ratings; each as a chart drawn on the server
  (`portal.domain.charts`) with the same figures beside it in a table. The month is the current
  one (UTC: the month the compliance report counts requests in) unless `month` names another,
  from `FIRST_MONTH` to the current one (a 422 page with the form marked invalid otherwise).
- `GET /console/admin/desks/{desk}`: the desk's roles (side, whether it administers the desk),
  statuses (category, who is expected to act, what they do to the SLA clocks), transitions
  (action, from, to, roles, condition), reopening rules, escalations, priorities and resolution
  codes, and the diagram of its statuses and transitions (`portal.domain.policy_diagram`).

The dashboard works without script; with htmx its figures are asked again every two minutes
(the same page, its `#dash-live` part swapped in place).

For the desk's leads only (`StaffVisit.leads`, from `portal.domain.console.led_desks`): other
staff get a 403 page, an unknown desk a 404 page (asked first: the desks are no secret, every
console page names them). What the pages show comes from the owners, asked as the person:
workflow's desk description (`GET /desks`) and its `GET /desks/{desk}/summary` (open requests,
ratings), sla's `GET /desks/{desk}/summary` (warnings, breaches, compliance); each service decides
again that the person reads the desk's support side. A service that does not answer leaves its
sections saying so; the page shows the others. Two facts the description does not tell are read
from the desk's policy the portal loads (the same files): which roles administer the desk, and
what each status does to the clocks.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from markupsafe import Markup

from portal.adapters.console import Console, StaffVisit
from portal.adapters.request_pages import label
from portal.adapters.services import Unavailable
from portal.adapters.web import bounded
from portal.catalogue import catalogue, text
from portal.domain.charts import Bar, Share, bar_chart, compliance_chart
from portal.domain.policy_diagram import StatusBox, Workflow, diagram, workflow_of

MONTH = re.compile(r"20[0-9]{2}-(0[1-9]|1[0-2])")
FIRST_MONTH = "2000-01"
CATEGORIES = ("open", "waiting", "closed")
NONE = "\u2013"  # what a cell shows for nothing
CLOCK_FLAGS = ("pauses_sla", "stops_response", "starts_resolution", "stops_resolution")


def month_choice(asked: str | None, now: datetime) -> str | None:
    """The month a dashboard shows: `asked` (YYYY-MM, from `FIRST_MONTH` to the month of `now`
    in UTC), that current month when nothing is asked; None for anything else."""
    current = now.astimezone(UTC).strftime("%Y-%m")
    if not asked:
        return current
    if len(asked) != 7 or not MONTH.fullmatch(asked):
        return None
    return asked if FIRST_MONTH <= asked <= current else None


def next_month(month: str, step: int = 1) -> str:
    """The month `step` months after `month` (YYYY-MM; before it when `step` is negative)."""
    count = int(month[:4]) * 12 + int(month[5:7]) - 1 + step
    return f"{count // 12:04d}-{count % 12 + 1:02d}"


def percent(share: float | None, language: str) -> str:
    """A share (0 to 1) as a percentage with at most one decimal, as `language` writes it
    (a dash for none)."""
    if share is None:
        return NONE
    text = f"{100 * share:.1f}".removesuffix(".0")
    return f"{text.replace('.', ',')}\u00a0%" if language == "fr" else f"{text}%"


def decimal(value: float, language: str) -> str:
    """A number with at most two decimals, as `language` writes it."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if language == "fr" else text


@dataclass
class Row:
    """A table's row: its key (the `data-key` tests and scripts find it by), its header cell
    and its cells."""

    key: str
    head: str
    cells: list[str]


@dataclass
class Panel:
    """One part of a page: a heading, its charts, and the table of the same figures."""

    id: str
    title: str
    caption: str
    columns: list[str]
    rows: list[Row]
    charts: list[Markup] = field(default_factory=list)
    total: Row | None = None
    notes: list[str] = field(default_factory=list)


class Texts:
    """The person's texts: catalogue keys and the desk's labels, in their language."""

    def __init__(
        self,
        language: str,
        text: Callable[..., str],
        desk: Mapping[str, Any],
        date_format: str = "%Y-%m-%d",
    ) -> None:
        self.language = language
        self.t = text
        self.desk = desk
        self.date_format = date_format

    def day(self, iso: str) -> str:
        """A day (YYYY-MM-DD) in the person's date format (as told when it is not a day)."""
        try:
            return date.fromisoformat(iso).strftime(self.date_format)
        except ValueError:
            return iso

    def of(self, kind: str, wanted: str | None) -> str:
        """The label of a status (`statuses`), role (`roles`) or priority
        (`priority_levels`) of the desk; the id itself when the desk does not name it."""
        for found in self.desk.get(kind, ()):
            if found.get("id") == wanted:
                return label(found.get("labels"), self.language, str(wanted))
        return NONE if wanted is None else str(wanted)

    def action(self, action: str) -> str:
        """An action's name (its id when the catalogue has none)."""
        key = f"dash.action.{action}"
        return self.t(key) if key in catalogue("en") else action


def open_panels(texts: Texts, figures: Mapping[str, Any]) -> list[Panel]:
    """The open requests by status and by expected actor (workflow's summary `open`)."""
    t = texts.t
    total = str(figures.get("total", 0))
    by_status = [
        Row(str(r["status"]), texts.of("statuses", r["status"]), [str(r["count"])])
        for r in figures.get("by_status", ())
    ]
    by_actor = [
        Row(
            str(r["expected_actor"] or ""),
            texts.of("roles", r["expected_actor"]) if r["expected_actor"] else t("dash.nobody"),
            [str(r["count"])],
        )
        for r in figures.get("by_expected_actor", ())
    ]
    panels = []
    for name, rows, column in (
        ("by-status", by_status, "dash.column.status"),
        ("by-actor", by_actor, "dash.column.actor"),
    ):
        title = t(f"dash.open.{name.replace('-', '_')}")
        bars = [Bar(r.head, int(r.cells[0]), r.cells[0]) for r in rows]
        panels.append(
            Panel(
                id=f"dash-{name}",
                title=title,
                caption=t("dash.open.caption", total=total),
                columns=[t(column), t("dash.column.requests")],
                rows=rows,
                charts=[Markup(bar_chart(f"dash-{name}-chart", title, bars))],
                total=Row("total", t("dash.total"), [total]),
            )
        )
    return panels


def today_panel(texts: Texts, today: Mapping[str, Any]) -> Panel:
    """Today's SLA warnings and breaches, by priority (sla's summary `today`)."""
    t = texts.t
    warned, breached = today["warnings"]["total"], today["breaches"]["total"]
    title = t("dash.today.title")
    bars = [
        Bar(t("dash.column.warnings"), warned, str(warned)),
        Bar(t("dash.column.breaches"), breached, str(breached)),
    ]
    return Panel(
        id="dash-today",
        title=title,
        caption=t(
            "dash.today.caption", day=texts.day(str(today["date"])), zone=str(today["time_zone"])
        ),
        columns=[t("dash.column.priority"), t("dash.column.warnings"), t("dash.column.breaches")],
        rows=[
            Row(
                str(r["priority"]),
                texts.of("priority_levels", r["priority"]),
                [str(r["warnings"]), str(r["breaches"])],
            )
            for r in today.get("by_priority", ())
        ],
        charts=[Markup(bar_chart("dash-today-chart", title, bars))],
        total=Row("total", t("dash.total"), [str(warned), str(breached)]),
        notes=[
            t(
                "dash.today.clocks",
                response=str(today["warnings"]["response"]),
                resolution=str(today["warnings"]["resolution"]),
                breached_response=str(today["breaches"]["response"]),
                breached_resolution=str(today["breaches"]["resolution"]),
            )
        ],
    )


def compliance_panel(texts: Texts, compliance: Mapping[str, Any], month_name: str) -> Panel:
    """The month's SLA compliance per priority (sla's summary `compliance`)."""
    t, language = texts.t, texts.language
    rows, charts = [], []
    priorities = list(compliance.get("priorities", ()))
    for r in priorities:
        rows.append(
            Row(
                str(r["priority"]),
                texts.of("priority_levels", r["priority"]),
                [
                    str(r["requests"]),
                    percent(r["response_kept"], language),
                    percent(r["resolution_kept"], language),
                ],
            )
        )
    scale = (percent(0, language), percent(0.5, language), percent(1, language))
    for clock in ("response", "resolution"):
        title = t(f"dash.compliance.{clock}", month=month_name)
        shares = [
            Share(
                texts.of("priority_levels", r["priority"]),
                r[f"{clock}_kept"],
                percent(r[f"{clock}_kept"], language) if r["requests"] else t("dash.no_request"),
            )
            for r in priorities
        ]
        chart = compliance_chart(f"dash-compliance-{clock}-chart", title, shares, scale=scale)
        charts.append(Markup(chart))
    return Panel(
        id="dash-compliance",
        title=t("dash.compliance.title", month=month_name),
        caption=t("dash.compliance.caption", month=month_name),
        columns=[t("dash.column.priority"), t("dash.column.requests"),
                 t("dash.column.response_kept"), t("dash.column.resolution_kept")],
        rows=rows,
        charts=charts,
        notes=[t("dash.compliance.rule")],
    )  # fmt: skip


def satisfaction_panel(texts: Texts, ratings: Mapping[str, Any], month_name: str) -> Panel:
    """The month's satisfaction ratings (workflow's summary `satisfaction`)."""
    t, language = texts.t, texts.language
    title = t("dash.satisfaction.title", month=month_name)
    rows = [
        Row(str(r["rating"]), t("dash.rating", rating=str(r["rating"]),
                                scale=str(ratings["scale"])), [str(r["count"])])
        for r in ratings.get("by_rating", ())
    ]  # fmt: skip
    average = ratings.get("average")
    notes = [
        t("dash.satisfaction.average", average=decimal(average, language),
          scale=str(ratings["scale"]), answers=str(ratings["answers"]))
        if average is not None else t("dash.satisfaction.none")
    ]  # fmt: skip
    if not ratings.get("enabled"):
        notes.insert(0, t("dash.satisfaction.disabled"))
    bars = [Bar(r.head, int(r.cells[0]), r.cells[0]) for r in rows]
    return Panel(
        id="dash-satisfaction",
        title=title,
        caption=t("dash.satisfaction.caption", month=month_name),
        columns=[t("dash.column.rating"), t("dash.column.answers")],
        rows=rows,
        charts=[Markup(bar_chart("dash-satisfaction-chart", title, bars))],
        total=Row("total", t("dash.total"), [str(ratings["answers"])]),
        notes=notes,
    )


def status_boxes(texts: Texts, desk: Mapping[str, Any]) -> tuple[list[StatusBox], Workflow]:
    """The desk's statuses as the diagram draws them (label, who is expected to act, the
    actions that keep the status), and its workflow (`workflow_of`)."""
    t = texts.t
    drawn = workflow_of(desk)
    boxes = []
    for status in drawn.statuses:
        actor = status.get("expected_actor")
        lines = [t("dash.policy.expects", role=texts.of("roles", actor)) if actor else
                 t("dash.policy.expects_nobody")]  # fmt: skip
        kept = drawn.kept.get(str(status["id"]))
        if kept:
            lines.append(t("dash.policy.keeps", actions=", ".join(texts.action(a) for a in kept)))
        if status["id"] == desk.get("initial_status"):
            lines.append(t("dash.policy.initial"))
        boxes.append(
            StatusBox(
                str(status["id"]),
                texts.of("statuses", status["id"]),
                str(status.get("category", "")),
                tuple(lines),
            )
        )
    return boxes, drawn


def month_name(t: Callable[..., str], month: str) -> str:
    """`month` (YYYY-MM) as a person reads it, e.g. "mars 2026"."""
    return t("dash.month_name", month=t(f"dash.month.{int(month[5:7])}"), year=month[:4])


def dashboard_router(console: Console) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    web = console.web

    def refused(s: StaffVisit, desk: str) -> Response | None:
        """The 404 page for an unknown desk, the 403 page for a person who does not lead it;
        None when they may see its leads' pages."""
        if desk not in web.portal.policies:
            return web.page(s.visit, "notice.html", 404, error="dash.unknown_desk",
                            title="console.title")  # fmt: skip
        if desk not in s.leads:
            return web.page(s.visit, "notice.html", 403, error="dash.not_lead",
                            title="console.title")  # fmt: skip
        return None

    def texts_for(s: StaffVisit, desk: Mapping[str, Any]) -> Texts:
        language = s.visit.language
        person = s.visit.person
        fmt = person.date_format if person is not None else "%Y-%m-%d"
        return Texts(language, lambda key, **v: text(language, key, **v), desk, fmt)

    async def summary(s: StaffVisit, service: str, desk: str, **params: Any) -> Any:
        """The desk's summary from `service`, or None when it does not give it now."""
        try:
            answer = await web.services.read(
                s.visit.identity(), service, f"/desks/{quote(desk, safe='')}/summary", **params
            )
        except Unavailable:
            return None
        return answer.json() if answer.status_code == 200 else None

    @router.get("/console/dashboard/{desk}")
    async def dashboard(request: Request, desk: str) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if (refusal := refused(s, desk)) is not None:
            return refusal
        asked = request.query_params.get("month")
        month = month_choice(asked, web.portal.clock())
        current = month_choice(None, web.portal.clock())
        values: dict[str, Any] = {
            "desk_id": desk, "current_month": current, "first_month": FIRST_MONTH,
        }  # fmt: skip
        if month is None:
            return console.page(s, "console/dashboard.html", 422, error="dash.month_invalid",
                                month=(bounded(asked or "", 20) or "")[:7], panels=[],
                                **values)  # fmt: skip
        try:
            desks = await console.desks(s)
        except Unavailable:
            return console.unavailable(s)
        texts = texts_for(s, desks.get(desk, {}))
        name = month_name(texts.t, month)
        after = next_month(month)
        flow, sla = await asyncio.gather(  # the month's ratings: days of the desk's time zone
            summary(s, "workflow", desk, since=f"{month}-01", until=f"{after}-01"),
            summary(s, "sla", desk, month=month),
        )
        panels: list[Panel] = []
        missing = []
        if flow is not None:
            panels += open_panels(texts, flow["open"])
        else:
            missing.append("dash.open.unavailable")
        if sla is not None:
            panels += [today_panel(texts, sla["today"]),
                       compliance_panel(texts, sla["compliance"], name)]  # fmt: skip
        else:
            missing.append("dash.sla.unavailable")
        if flow is not None:
            panels.append(satisfaction_panel(texts, flow["satisfaction"], name))
        return console.page(
            s, "console/dashboard.html", month=month, month_label=name, panels=panels,
            missing=missing, previous=next_month(month, -1) if month > FIRST_MONTH else None,
            following=after if month < (current or month) else None, **values,
        )  # fmt: skip

    @router.get("/console/admin/desks/{desk}")
    async def desk_policy(request: Request, desk: str) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        if (refusal := refused(s, desk)) is not None:
            return refusal
        try:
            desks = await console.desks(s)
        except Unavailable:
            return console.unavailable(s)
        described = desks.get(desk)
        if described is None:  # workflow told no such desk to this person now
            return console.unavailable(s)
        texts = texts_for(s, described)
        boxes, drawn = status_boxes(texts, described)
        legend = [(c, texts.t(f"dash.category.{c}")) for c in CATEGORIES]
        title = texts.t("dash.policy.diagram_title", desk=str(described.get("name", desk)))
        svg = diagram(
            "dash-policy-diagram", title, boxes, drawn.arrows, names=texts.action, legend=legend
        )
        policy = web.portal.policies[desk]
        administers = {r.id for r in policy.roles if r.administers}
        flags = {
            st.id: [f for f in CLOCK_FLAGS if getattr(st, f)] for st in policy.statuses
        }  # what each status does to the clocks (the description does not tell it)
        return console.page(
            s, "console/desk_policy.html", desk_id=desk, desk=described, diagram=Markup(svg),
            administers=administers, clock_flags=flags, names=texts, arrows=drawn.arrows,
        )  # fmt: skip

    return router
