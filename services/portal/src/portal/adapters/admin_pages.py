"""The console's administration of who is who, for the desks' leads: the people they may manage
(customers, and the staff of the desks they administer) with search and paging, one person's
desk roles, organisation, status and history, the forms that invite, grant, revoke, link,
unlink, deactivate and reactivate, and the organisations (changed by who administers every
desk, read by the other leads).

Every decision is the rules' (`portal.domain.accounts`), taken by the same calls the JSON API
makes (`portal.application.people`): the pages offer a form only when the rule lets it pass,
and say the rule's reason when it does not (a lead's own account, another desk's staff...). A
change the rules refuse comes back as the page again, the reason beside its form (403, 409 or
422), what was typed kept; a change done is a 303 to the page with a notice. Every form carries
the session's CSRF token and every value is bounded before use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from desk_contracts import directory as d
from desk_contracts.inputs import address
from desk_policies.model import DeskPolicy
from portal.adapters.api import OrganisationForm
from portal.adapters.console import Console, StaffVisit
from portal.adapters.web import bounded
from portal.application import directory, people
from portal.catalogue import catalogue, text
from portal.domain.accounts import (
    Account,
    Refused,
    administered_desks,
    check_administers,
    check_administers_all,
    check_grant,
    check_manages,
    may_read,
)

PAGE_SIZE = 25
MAX_FORM = 1000  # characters a single-line field may bring before it is bounded
MAX_DOMAINS_FORM = 20_000
PAGE = re.compile(r"[1-9][0-9]{0,3}")
DONE = ("invited", "granted", "revoked", "linked", "unlinked", "deactivated", "reactivated")
# which field of the invitation form a refusal is about (the others are about the whole form)
INVITE_FIELD = {
    "admin.refused.has_account": "email",
    "admin.refused.no_organisation": "organisation",
    "admin.refused.no_desk": "role",
    "admin.refused.not_your_desk": "role",
    "admin.refused.not_a_role": "role",
}
# which field of the organisation form a bad value is in, and the text saying what it takes
ORGANISATION_FIELD = {
    "organisation_id": ("organisation_id", "admin.invalid_organisation_id"),
    "name": ("name", "admin.invalid_organisation_name"),
    "domains": ("domains", "admin.invalid_domains"),
}


@dataclass(frozen=True)
class Said:
    """A refusal or a bad value as a page shows it: which form, which field, the text."""

    form: str
    text: str
    field: str = ""


@dataclass(frozen=True)
class Choice:
    """A desk and the roles at it a form offers (the ones the rules let pass)."""

    desk: str
    name: str
    roles: list[tuple[str, str]] = field(default_factory=list)  # (role id, label)


def said(language: str, error: Refused) -> str:
    """The refusal's reason in `language` (its catalogue text, the message when none)."""
    if error.key in catalogue("en"):
        return text(language, error.key, **error.values)
    return str(error)


def role_label(policies: Mapping[str, DeskPolicy], desk: str, role: str, language: str) -> str:
    """A role as the desk's policy names it in `language` (its id when unknown)."""
    policy = policies.get(desk)
    found = policy.role(role) if policy is not None else None
    return found.labels.get(language) if found is not None else role


def allowed(check: Any, *args: Any) -> Refused | None:
    """None when the rule `check(*args)` lets the change pass; its refusal otherwise."""
    try:
        check(*args)
    except Refused as error:
        return error
    return None


class AdminPages:
    """The administration pages' steps: who may come in, what the rules let each form do."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.portal = console.web.portal

    @property
    def policies(self) -> Mapping[str, DeskPolicy]:
        return self.portal.policies

    async def lead(self, request: Request) -> StaffVisit | Response:
        """The visit of a lead (someone who administers a desk); else the page to answer."""
        s = await self.console.staff(request)
        if isinstance(s, Response):
            return s
        assert s.visit.person is not None
        if (refused := allowed(check_administers, s.visit.person, self.policies)) is not None:
            return self.refused_page(s, refused.status, said(s.visit.language, refused))
        return s

    def refused_page(self, s: StaffVisit, status: int, reason: str) -> Response:
        """A page saying only why the visit goes no further (403, 404)."""
        return self.console.page(s, "console/admin_refused.html", status, reason=reason)

    def missing(self, s: StaffVisit, email: str) -> Response:
        """The 404 page of an address the directory does not know."""
        reason = text(s.visit.language, "admin.refused.no_account", email=email[:320])
        return self.refused_page(s, 404, reason)

    def grantable(
        self, admin: Account, to: str | None, language: str
    ) -> tuple[list[Choice], Refused | None]:
        """The desks and roles `admin` may grant (to the address `to`, when known) as the rule
        decides, named in `language`, and, when there is none, the rule's reason for refusing
        one it would grant to someone else (e.g. the lead's own account)."""
        choices: list[Choice] = []
        why: Refused | None = None
        for policy in self.policies.values():
            choice = Choice(policy.id, policy.name)
            for role in policy.roles:
                refused = allowed(check_grant, admin, self.policies, policy.id, role.id, to)
                if refused is None:
                    choice.roles.append((role.id, role.labels.get(language)))
                elif (
                    why is None
                    and to is not None
                    and allowed(check_grant, admin, self.policies, policy.id, role.id) is None
                ):
                    why = refused
            if choice.roles:
                choices.append(choice)
        return choices, (why if not choices else None)

    def roles_of(self, person: Account, language: str) -> list[dict[str, str]]:
        """A person's desk roles, named (desk, then role, as the directory holds them)."""
        rows = []
        for desk, roles in person.roles.items():
            policy = self.policies.get(desk)
            for role in roles:
                rows.append({
                    "desk": desk, "desk_name": policy.name if policy else desk, "role": role,
                    "label": role_label(self.policies, desk, role, language),
                })  # fmt: skip
        return rows

    # --- the people -------------------------------------------------------------------

    async def people_page(
        self, s: StaffVisit, q: str, page: int, status: int = 200, **values: Any
    ) -> Response:
        """The people the lead may manage (see module), a page of them, and the invitation."""
        person = s.visit.person
        assert person is not None
        words = bounded(q, 200)
        found: list[Account] = []
        total = 0
        async with self.portal.pool.acquire() as conn:
            if words is not None:
                desks = administered_desks(person, self.policies.values())
                found, total = await directory.people_of(
                    conn, desks, words, PAGE_SIZE, (page - 1) * PAGE_SIZE
                )
            organisations = await directory.organisations(conn)
        if words is None:
            status = 422
            values["search_error"] = "admin.search_invalid"
        language = s.visit.language
        choices, _ = self.grantable(person, None, language)
        rows = [
            {"person": p, "roles": self.roles_of(p, language)} for p in found
        ]  # fmt: skip
        first = (page - 1) * PAGE_SIZE + 1 if found else 0
        pages = max(1, -(-total // PAGE_SIZE))

        def link(to_page: int) -> str:
            return "/console/admin/people?" + urlencode(
                {k: v for k, v in (("q", words or ""), ("page", to_page)) if v}
            )

        values.setdefault("form", {})
        return self.console.page(
            s, "console/admin_people.html", status, rows=rows, total=total,
            q=q[:200], page=page, pages=pages, first=first, last=first + len(found) - 1,
            link=link, choices=choices, organisations=organisations,
            org_names={o.organisation_id: o.name for o in organisations}, **values,
        )  # fmt: skip

    async def person_page(
        self, s: StaffVisit, target: Account, status: int = 200, **values: Any
    ) -> Response:
        """One person: their entry, what the lead may change of it, their history."""
        admin = s.visit.person
        assert admin is not None
        language = s.visit.language
        choices, grant_why = self.grantable(admin, target.email, language)
        roles = self.roles_of(target, language)
        for row in roles:
            refused = allowed(check_grant, admin, self.policies, row["desk"], row["role"],
                              target.email)  # fmt: skip
            row["revocable"] = "yes" if refused is None else ""
        manage_why = allowed(check_manages, admin, target, self.policies)
        async with self.portal.pool.acquire() as conn:
            organisations = await directory.organisations(conn)
            changes = await directory.history(conn, target.email)
        names = {o.organisation_id: o.name for o in organisations}
        return self.console.page(
            s, "console/admin_person.html", status, target=target, roles=roles,
            choices=choices, organisations=organisations,
            org_names=names,
            grant_why=said(language, grant_why) if grant_why else "",
            manage_why=said(language, manage_why) if manage_why else "",
            history=[self.change(c, language, names) for c in reversed(changes)], **values,
        )  # fmt: skip

    def change(
        self, entry: Mapping[str, Any], language: str, names: Mapping[str, str]
    ) -> dict[str, Any]:
        """One entry of a person's history as the page tells it: when, who, what."""
        data = entry.get("data", {})
        desk = str(data.get("desk_id", ""))
        policy = self.policies.get(desk)
        organisation = str(data.get("organisation_id") or "")
        key = f"admin.change.{entry['change']}"
        named = {
            "desk": policy.name if policy else desk,
            "role": role_label(self.policies, desk, str(data.get("role", "")), language),
            "organisation": names.get(organisation, organisation),
        }
        told = text(language, key if key in catalogue("en") else "admin.change.other", **named)
        return {"at": entry.get("at"), "by": entry.get("by") or "", "text": told,
                "change": entry["change"]}  # fmt: skip

    async def target(self, s: StaffVisit, email: str) -> Account | Response:
        """The person an address in the path names, or the 404 page."""
        checked = bounded(email, 320)
        if not checked:
            return self.missing(s, email[:320])
        async with self.portal.pool.acquire() as conn:
            found = await directory.account(conn, checked)
        admin = s.visit.person
        if (
            found is None
            or admin is None
            or not may_read(admin, found, self.portal.policies.values())
        ):
            return self.missing(s, checked)  # another desk's staff: as if unknown
        return found

    # --- the organisations ------------------------------------------------------------

    async def organisations_page(
        self, s: StaffVisit, status: int = 200, edit: str = "", **values: Any
    ) -> Response:
        """The organisations, and the form that records one for who administers every desk."""
        admin = s.visit.person
        assert admin is not None
        async with self.portal.pool.acquire() as conn:
            organisations = await directory.organisations(conn)
        why = allowed(check_administers_all, admin, self.policies)
        if "form" not in values:
            editing = next((o for o in organisations if o.organisation_id == edit), None)
            values["form"] = (
                {"organisation_id": editing.organisation_id, "name": editing.name,
                 "domains": "\n".join(editing.domains), "editing": "yes"}
                if editing else {}
            )  # fmt: skip
        return self.console.page(
            s, "console/admin_organisations.html", status,
            organisations=organisations, change_why=said(s.visit.language, why) if why else "",
            **values,
        )  # fmt: skip


def person_url(email: str, done: str = "") -> str:
    """The page of the person `email` (with the notice of what was just done)."""
    return f"/console/admin/people/{quote(email, safe='@')}" + (f"?done={done}" if done else "")


def split_domains(typed: str) -> list[str]:
    """The mail domains typed in the form (one per line, or separated by commas or spaces)."""
    return [part for part in re.split(r"[\s,;]+", typed) if part]


def admin_pages_router(console: Console) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    pages = AdminPages(console)
    portal = console.web.portal
    finish = console.web.finish

    # --- the people -------------------------------------------------------------------

    @router.get("/console/admin/people")
    async def people_list(request: Request, q: str = "", page: str = "1") -> Response:
        s = await pages.lead(request)
        if isinstance(s, Response):
            return s
        number = int(page) if PAGE.fullmatch(page) else 1
        return await pages.people_page(s, q[:1000], number)

    @router.post("/console/admin/people")
    async def invite(
        request: Request,
        name: Annotated[str, Form(max_length=MAX_FORM)] = "",
        email: Annotated[str, Form(max_length=MAX_FORM)] = "",
        language: Annotated[str, Form(max_length=10)] = "",
        organisation: Annotated[str, Form(max_length=MAX_FORM)] = "",
        role: Annotated[str, Form(max_length=MAX_FORM)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        s = await pages.lead(request)
        if isinstance(s, Response):
            return s
        admin = s.visit.person
        assert admin is not None
        lang = s.visit.language
        form = {"name": bounded(name, 200) or "", "email": bounded(email, 320) or "",
                "language": language, "organisation": bounded(organisation, 100) or "",
                "role": bounded(role, 200) or ""}  # fmt: skip

        async def again(status: int, key: str, at: str = "") -> Response:
            wrong = Said("invite", text(lang, key), at)
            return await pages.people_page(s, "", 1, status, form=form, said=wrong)

        if not s.visit.csrf_ok(csrf):
            return await again(403, "csrf")
        if not form["name"]:
            return await again(422, "admin.invalid_name", "name")
        try:
            checked = address(form["email"])
        except ValueError:
            return await again(422, "admin.invalid_email", "email")
        if language not in ("fr", "en"):
            return await again(422, "admin.invalid_language", "language")
        if bounded(organisation, 100) is None or bounded(role, 200) is None:
            return await again(422, "admin.invalid_choice", "organisation")
        desk, _, role_id = form["role"].partition(":")
        try:
            if form["role"]:
                check_grant(admin, portal.policies, desk, role_id, checked)
            async with portal.pool.acquire() as conn:
                profile = d.Profile(name=form["name"], language=language)
                invited = await people.invite(
                    conn, admin, portal.policies, checked, profile, form["organisation"] or None,
                    portal.clock(), portal.send,
                )  # fmt: skip
                if form["role"]:
                    await people.grant(
                        conn, admin, portal.policies, invited.email, desk, role_id, portal.clock()
                    )
        except Refused as error:
            status = 422 if error.status == 404 else error.status
            wrong = Said("invite", said(lang, error), INVITE_FIELD.get(error.key, ""))
            return await pages.people_page(s, "", 1, status, form=form, said=wrong)
        return finish(s.visit, RedirectResponse(person_url(invited.email, "invited"), 303))

    @router.get("/console/admin/people/{email}")
    async def person(request: Request, email: str, done: str = "") -> Response:
        s = await pages.lead(request)
        if isinstance(s, Response):
            return s
        target = await pages.target(s, email)
        if isinstance(target, Response):
            return target
        notice = f"admin.done.{done}" if done in DONE else None
        return await pages.person_page(s, target, notice=notice)

    async def change(
        request: Request,
        email: str,
        csrf: str,
        form: str,
        done: str,
        step: Any,
        typed: Mapping[str, str] | None = None,
    ) -> Response:
        """A change to one person: the CSRF check, the change (`step(conn, admin, target)`)
        as the rules allow it, then the page with the notice or the refusal beside `form`."""
        s = await pages.lead(request)
        if isinstance(s, Response):
            return s
        admin = s.visit.person
        assert admin is not None
        target = await pages.target(s, email)
        if isinstance(target, Response):
            return target
        kept = dict(typed or {})
        if not s.visit.csrf_ok(csrf):
            wrong = Said(form, text(s.visit.language, "csrf"))
            return await pages.person_page(s, target, 403, said=wrong, typed=kept)
        try:
            async with portal.pool.acquire() as conn:
                await step(conn, admin, target)
        except Refused as error:
            status = 422 if error.status == 404 else error.status
            wrong = Said(form, said(s.visit.language, error))
            return await pages.person_page(s, target, status, said=wrong, typed=kept)
        return finish(s.visit, RedirectResponse(person_url(target.email, done), 303))

    def desk_role(desk: str, role: str) -> tuple[str, str] | None:
        checked = bounded(desk, 64), bounded(role, 64)
        return None if None in checked else (str(checked[0]), str(checked[1]))

    async def grant_or_revoke(
        request: Request, email: str, desk: str, role: str, csrf: str, revoke: bool
    ) -> Response:
        form, done = ("revoke", "revoked") if revoke else ("grant", "granted")
        chosen = desk_role(desk, role) or ("", "")

        async def step(conn: Any, admin: Account, target: Account) -> None:
            if not all(chosen):
                raise Refused("choose a desk and a role", 422, "admin.invalid_choice")
            await people.grant(
                conn, admin, portal.policies, target.email, chosen[0], chosen[1],
                portal.clock(), revoke=revoke,
            )  # fmt: skip

        typed = {"desk": chosen[0], "role": chosen[1]}
        return await change(request, email, csrf, form, done, step, typed)

    @router.post("/console/admin/people/{email}/grant")
    async def grant(
        request: Request,
        email: str,
        desk: Annotated[str, Form(max_length=MAX_FORM)] = "",
        role: Annotated[str, Form(max_length=MAX_FORM)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        return await grant_or_revoke(request, email, desk, role, csrf, revoke=False)

    @router.post("/console/admin/people/{email}/revoke")
    async def revoke(
        request: Request,
        email: str,
        desk: Annotated[str, Form(max_length=MAX_FORM)] = "",
        role: Annotated[str, Form(max_length=MAX_FORM)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        return await grant_or_revoke(request, email, desk, role, csrf, revoke=True)

    @router.post("/console/admin/people/{email}/link")
    async def link(
        request: Request,
        email: str,
        organisation: Annotated[str, Form(max_length=MAX_FORM)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        chosen = bounded(organisation, 100)

        async def step(conn: Any, admin: Account, target: Account) -> None:
            if not chosen:
                raise Refused("choose an organisation", 422, "admin.invalid_choice")
            await people.link(conn, admin, portal.policies, target.email, chosen, portal.clock())

        typed = {"organisation": chosen or ""}
        return await change(request, email, csrf, "organisation", "linked", step, typed)

    @router.post("/console/admin/people/{email}/unlink")
    async def unlink(
        request: Request, email: str, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        async def step(conn: Any, admin: Account, target: Account) -> None:
            await people.link(conn, admin, portal.policies, target.email, None, portal.clock())

        return await change(request, email, csrf, "organisation", "unlinked", step)

    @router.post("/console/admin/people/{email}/deactivate")
    async def deactivate(
        request: Request, email: str, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        async def step(conn: Any, admin: Account, target: Account) -> None:
            await people.deactivate(conn, admin, portal.policies, target.email, portal.clock())

        return await change(request, email, csrf, "status", "deactivated", step)

    @router.post("/console/admin/people/{email}/reactivate")
    async def reactivate(
        request: Request, email: str, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        async def step(conn: Any, admin: Account, target: Account) -> None:
            await people.deactivate(
                conn, admin, portal.policies, target.email, portal.clock(), again=True
            )

        return await change(request, email, csrf, "status", "reactivated", step)

    # --- the organisations ------------------------------------------------------------

    @router.get("/console/admin/organisations")
    async def organisations(request: Request, edit: str = "", done: str = "") -> Response:
        s = await pages.lead(request)
        if isinstance(s, Response):
            return s
        notice = "admin.done.organisation" if done == "organisation" else None
        return await pages.organisations_page(s, edit=edit[:100], notice=notice)

    @router.post("/console/admin/organisations")
    async def record_organisation(
        request: Request,
        organisation_id: Annotated[str, Form(max_length=MAX_FORM)] = "",
        name: Annotated[str, Form(max_length=MAX_FORM)] = "",
        domains: Annotated[str, Form(max_length=MAX_DOMAINS_FORM)] = "",
        editing: Annotated[str, Form(max_length=10)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        s = await pages.lead(request)
        if isinstance(s, Response):
            return s
        admin = s.visit.person
        assert admin is not None
        lang = s.visit.language
        form = {"organisation_id": bounded(organisation_id, 100) or "",
                "name": bounded(name, 200) or "", "domains": domains[:MAX_DOMAINS_FORM],
                "editing": "yes" if editing == "yes" else ""}  # fmt: skip

        async def again(status: int, wrong: Said) -> Response:
            return await pages.organisations_page(s, status, form=form, said=wrong)

        if not s.visit.csrf_ok(csrf):
            return await again(403, Said("organisation", text(lang, "csrf")))
        if (refused := allowed(check_administers_all, admin, portal.policies)) is not None:
            return await again(refused.status, Said("organisation", said(lang, refused)))
        if bounded(domains, MAX_DOMAINS_FORM) is None:  # never an edit that wipes them
            at, key = ORGANISATION_FIELD["domains"]
            return await again(422, Said("organisation", text(lang, key), at))
        typed_domains = split_domains(domains)
        try:
            typed = {"organisation_id": form["organisation_id"], "name": form["name"],
                     "domains": typed_domains}  # fmt: skip
            checked = OrganisationForm.model_validate(typed)
        except ValidationError as error:
            where = str(error.errors()[0]["loc"][0]) if error.errors() else "name"
            at, key = ORGANISATION_FIELD.get(where, ORGANISATION_FIELD["name"])
            return await again(422, Said("organisation", text(lang, key), at))
        async with portal.pool.acquire() as conn:
            known = await directory.organisation_exists(conn, checked.organisation_id)
            if known and not form["editing"]:
                wrong = Said("organisation", text(lang, "admin.organisation_exists",
                                                  organisation=checked.organisation_id),
                             "organisation_id")  # fmt: skip
                return await again(409, wrong)
            try:
                await people.record_organisation(
                    conn, admin, portal.policies, checked.model_dump(), portal.clock()
                )
            except Refused as error:
                return await again(error.status, Said("organisation", said(lang, error)))
        done = RedirectResponse("/console/admin/organisations?done=organisation", 303)
        return finish(s.visit, done)

    return router
