"""The agents' console: the staff side of the portal, under `/console`. This module is its
door (who may come in, the layout every console page shares) and its first page, the desks the
person works at with their queues, search, dashboards and administration.

Only staff come in: a visitor not signed in is sent to sign in first; a signed-in person who
holds no support-side role at any desk gets a 403 page (`portal.domain.console`). Each console
page then asks the services as the person, whose token says their roles: the services decide
what they may read and do, the console only offers what the policies say they may."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from portal.adapters.request_pages import label
from portal.adapters.services import Unavailable
from portal.adapters.web import Visit, Web
from portal.domain.console import StaffDesks, led_desks, staff_desks


@dataclass
class StaffVisit:
    """A visit of a staff member: who (the visit), where they work and which desks they lead."""

    visit: Visit
    desks: StaffDesks
    leads: frozenset[str]

    def roles_at(self, desk_id: str) -> tuple[str, ...]:
        """The person's support-side roles at `desk_id` (none: not their desk)."""
        return self.desks.get(desk_id, ())


class Console:
    """The console pages' common steps: the staff check, the layout, the desks as told."""

    def __init__(self, web: Web) -> None:
        self.web = web

    async def staff(self, request: Request) -> StaffVisit | Response:
        """The staff visit, or the response to send instead (sign in first; 403 for a person
        who works at no desk)."""
        v = await self.web.visit(request)
        if v.person is None:
            return self.web.sign_in_first(v)
        policies = self.web.portal.policies.values()
        desks = staff_desks(v.person.roles, policies)
        if not desks:
            return self.web.page(v, "notice.html", 403, error="console.staff_only",
                                 title="console.title")  # fmt: skip
        return StaffVisit(v, desks, led_desks(v.person.roles, policies))

    def page(self, s: StaffVisit, template: str, status: int = 200, **values: Any) -> Response:
        """A console page: `template` (extending `console/base.html`) with the console's
        navigation (the person's desks, which they lead)."""
        names = {p.id: p.name for p in self.web.portal.policies.values()}
        return self.web.page(
            s.visit, template, status, staff=s, desk_names=names,
            label=lambda labels, fallback="": label(labels, s.visit.language, fallback),
            **values,
        )  # fmt: skip

    async def desks(self, s: StaffVisit) -> dict[str, dict[str, Any]]:
        """The person's desks as workflow tells them (whole, to their support side), by id."""
        told = await self.web.services.desks(s.visit.identity())
        return {d["id"]: d for d in told if d["id"] in s.desks}

    def unavailable(self, s: StaffVisit) -> Response:
        """The page for a service that does not answer: try again in a moment."""
        return self.web.page(
            s.visit, "notice.html", 503, error="request.unavailable", title="console.title"
        )


def console_router(console: Console) -> APIRouter:
    """The console's first page (see the module)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/console")
    async def console_home(request: Request) -> Response:
        s = await console.staff(request)
        if isinstance(s, Response):
            return s
        try:
            desks = await console.desks(s)
        except Unavailable:
            return console.unavailable(s)
        return console.page(s, "console/home.html", desks=desks)

    return router
