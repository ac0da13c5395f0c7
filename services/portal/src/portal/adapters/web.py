"""The portal's pages for who-is-who: sign-in (password, mailed link, single sign-on),
registration, activation, reset, profile, API tokens (server-rendered, French and English).

Sessions live in HttpOnly, SameSite=Lax cookies (Secure when the portal is served over
HTTPS) holding a random secret whose digest is the session's key. Every form that changes
something carries a CSRF token checked against the session's (or, before sign-in, against a
random cookie of the browser's own: the double-submit pattern). Every form value is bounded
and checked before use; a bad one re-renders the form with the reason beside it, keeping what
was typed (but never a password).
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from desk_contracts import directory as d
from desk_contracts.identity import Identity, Scope, Via
from desk_contracts.inputs import address
from desk_platform.blobs import BlobStore
from desk_policies.model import DeskPolicy
from portal.adapters.services import Services
from portal.application import credentials as c
from portal.application import people
from portal.application.directory import account
from portal.catalogue import negotiate, text
from portal.domain.accounts import Account
from portal.domain.requests_new import DEFAULT_UPLOADS, UploadLimits

SESSION_COOKIE = "desk_session"
FORM_COOKIE = "desk_form"  # the double-submit CSRF secret of a browser not signed in
LANGUAGE_COOKIE = "desk_lang"
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
TEMPLATES = Environment(
    loader=PackageLoader("portal", "templates"), autoescape=select_autoescape(("html",))
)


MAX_NEXT = 2000  # characters of the page to go to after sign-in
_NOT_IN_A_PATH = re.compile(r"[\x00-\x20\x7f\\\ud800-\udfff]")  # spaces, controls, backslash


def local_path(target: str | None) -> str:
    """`target` when it is a page of this site: a path starting with a single `/` (not `//`),
    no scheme or host, no backslash, space or control character, at most `MAX_NEXT`
    characters; `/` otherwise (so a sign-in link cannot send anyone elsewhere)."""
    if not target or len(target) > MAX_NEXT or _NOT_IN_A_PATH.search(target):
        return "/"
    if not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


# the regions of the IANA zones a profile offers (a zone of another kind is kept when held)
ZONE_REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
                "Europe", "Indian", "Pacific")  # fmt: skip
ZoneGroups = list[tuple[str, tuple[str, ...]]]


@cache
def _zones_by_region() -> tuple[tuple[str, tuple[str, ...]], ...]:
    zones = d.time_zones()
    return tuple(
        (region, tuple(sorted(z for z in zones if z.startswith(f"{region}/"))))
        for region in ZONE_REGIONS
    )


def zone_groups(current: str) -> ZoneGroups:
    """The time zones the profile form offers, by region (UTC first), `current` among them."""
    groups: ZoneGroups = [("UTC", ("UTC",)), *_zones_by_region()]
    if not any(current in zones for _, zones in groups):
        groups.insert(0, ("other", (current,)))
    return groups


def bounded(value: str, limit: int) -> str | None:
    """`value` stripped, or None when longer than `limit` or holding control characters."""
    value = value.strip()
    if len(value) > limit or _UNSAFE.search(value):
        return None
    return value


@dataclass(frozen=True)
class Portal:
    """What the pages need: the store, the desks, the clock, the mail, the cookies' scope, the
    attachments' store and bounds."""

    pool: asyncpg.Pool
    policies: Mapping[str, DeskPolicy]
    clock: Callable[[], datetime]
    send: people.Send
    secure_cookies: bool
    blobs: BlobStore
    sso: bool = False
    uploads: UploadLimits = DEFAULT_UPLOADS


@dataclass
class Visit:
    """Who looks at a page: their session (None: not signed in), account and language."""

    request: Request
    session_secret: str | None
    session: c.Session | None
    person: Account | None
    language: str
    form_secret: str

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else self.form_secret

    def csrf_ok(self, sent: str) -> bool:
        return bool(sent) and hmac.compare_digest(sent.encode(), self.csrf.encode())

    def identity(self) -> Identity:
        """Who the page is for, as the services are told (a signed-in visit: `signed_in`)."""
        if self.person is None or self.session is None:
            raise ValueError("not signed in")
        return self.person.identity(session_via(self.session), frozenset(("read", "write")))


def when(person: Account | None, instant: datetime | str | None) -> str:
    """`instant` (or its ISO text) in the person's date format and time zone, to the minute
    ('' for none); UTC and ISO dates for a visitor not signed in."""
    if instant is None or instant == "":
        return ""
    moment = instant if isinstance(instant, datetime) else datetime.fromisoformat(instant)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    fmt, zone = (person.date_format, person.time_zone) if person else ("%Y-%m-%d", "UTC")
    try:
        local = moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local = moment.astimezone(UTC)
    return local.strftime(f"{fmt} %H:%M")


def session_via(session: c.Session) -> Via:
    """How the person of `session` proved who they are."""
    return "sso" if session.via == "sso" else "password" if session.via == "password" else "link"


class Web:
    """The pages' common steps: who visits, rendering, cookies, opening a session."""

    def __init__(self, portal: Portal, services: Services) -> None:
        self.portal = portal
        self.services = services

    async def visit(self, request: Request) -> Visit:
        """Who looks at the page, in which language."""
        portal = self.portal
        secret = request.cookies.get(SESSION_COOKIE, "")[:100]
        session = person = None
        if secret:
            async with portal.pool.acquire() as conn:
                session = await c.find_session(conn, secret, portal.clock())
                if session is not None:
                    person = await account(conn, session.email)
                    if person is None or not person.may_sign_in:
                        session = person = None
        chosen = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
        language = negotiate(
            chosen, person.language if person else None, request.headers.get("accept-language")
        )
        form = request.cookies.get(FORM_COOKIE, "")[:100] or secrets.token_urlsafe(32)
        return Visit(request, secret if session else None, session, person, language, form)

    def page(self, v: Visit, template: str, status: int = 200, **values: Any) -> Response:
        """`template` rendered for `v` (its language, its CSRF token)."""

        def t(key: str, **named: str) -> str:
            return text(v.language, key, **named)

        def in_language(code: str) -> str:  # this page in another language, as it is
            query = [(k, val) for k, val in v.request.query_params.multi_items() if k != "lang"]
            return "?" + urlencode([*query, ("lang", code)])

        html = TEMPLATES.get_template(template).render(
            t=t, lang=v.language, csrf=v.csrf, person=v.person, sso=self.portal.sso,
            in_language=in_language, when=lambda instant: when(v.person, instant), **values,
        )  # fmt: skip
        return self.finish(v, HTMLResponse(html, status))

    def requires_sign_in(self, v: Visit) -> Response | None:
        """None when `v` is signed in; else `sign_in_first(v)`."""
        return None if v.person is not None else self.sign_in_first(v)

    def sign_in_first(self, v: Visit) -> Response:
        """The redirect to `/sign-in?next=<this page>` (the page asked for when it was a GET,
        the home page otherwise), after which the person lands back here."""
        url = v.request.url
        here = url.path + (f"?{url.query}" if url.query else "")
        back = local_path(here) if v.request.method in ("GET", "HEAD") else "/"
        target = "/sign-in" if back == "/" else f"/sign-in?next={quote(back, safe='/')}"
        return self.finish(v, RedirectResponse(target, 303))

    def finish(self, v: Visit, response: Response) -> Response:
        """`response` with the cookies the visit needs and no caching."""
        response.headers["Cache-Control"] = "no-store"
        if v.session is None and v.request.cookies.get(FORM_COOKIE) != v.form_secret:
            self.cookie(response, FORM_COOKIE, v.form_secret, timedelta(hours=12), "strict")
        if (chosen := v.request.query_params.get("lang")) in ("fr", "en"):
            self.cookie(response, LANGUAGE_COOKIE, str(chosen), timedelta(days=365))
        return response

    def cookie(
        self, response: Response, name: str, value: str, lifetime: timedelta, samesite: str = "lax"
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(lifetime.total_seconds()),
            httponly=True,
            secure=self.portal.secure_cookies,
            samesite=samesite,  # type: ignore[arg-type]
            path="/",
        )

    async def signed_in(self, v: Visit, person: Account, via: str, to: str = "/") -> Response:
        """Open a session for `person` (closing the visit's) and go to `to`."""
        async with self.portal.pool.acquire() as conn:
            if v.session_secret:
                await c.close_session(conn, v.session_secret)
            secret, _ = await c.open_session(conn, person.email, via, self.portal.clock())
        response = RedirectResponse(to, 303)
        self.cookie(response, SESSION_COOKIE, secret, c.SESSION_LIFETIME)
        response.delete_cookie(FORM_COOKIE, path="/")
        return response


def client_of(request: Request) -> str:
    """The network address a request came from (the counting key of its client)."""
    return request.client.host if request.client else "unknown"


def web_router(web: Web) -> APIRouter:
    """The routes described in the module docstring."""
    router = APIRouter(include_in_schema=False)
    portal = web.portal
    visit, page, finish, now = web.visit, web.page, web.finish, web.portal.clock

    # --- pages ---------------------------------------------------------------------------

    @router.get("/sign-in")
    async def sign_in_page(request: Request, next: str = "") -> Response:
        v = await visit(request)
        then = local_path(next)
        if v.person is not None:  # already signed in: straight to the page asked for
            return finish(v, RedirectResponse(then, 303))
        return page(v, "sign_in.html", next=then)

    @router.post("/sign-in")
    async def sign_in(
        request: Request,
        email: Annotated[str, Form(max_length=400)] = "",
        password: Annotated[str, Form(max_length=400)] = "",
        next: Annotated[str, Form(max_length=MAX_NEXT * 3)] = "/",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        v = await visit(request)
        then = local_path(next)
        if not v.csrf_ok(csrf):
            return page(v, "sign_in.html", 403, error="csrf", next=then)
        typed = bounded(email, 320) or ""
        async with portal.pool.acquire() as conn:
            outcome = await people.sign_in(conn, typed, password, client_of(request), now())
        if outcome == "locked":
            return page(v, "sign_in.html", 429, error="locked", email=typed, next=then)
        if outcome == "refused":
            return page(v, "sign_in.html", 401, error="refused", email=typed, next=then)
        return await web.signed_in(v, outcome, "password", then)

    @router.post("/sign-out")
    async def sign_out(
        request: Request, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        v = await visit(request)
        if v.session_secret and v.csrf_ok(csrf):
            async with portal.pool.acquire() as conn:
                await c.close_session(conn, v.session_secret)
        response = RedirectResponse("/sign-in", 303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/register")
    async def register_page(request: Request) -> Response:
        return page(await visit(request), "register.html", form={})

    @router.post("/register")
    async def register(
        request: Request,
        name: Annotated[str, Form(max_length=400)] = "",
        email: Annotated[str, Form(max_length=400)] = "",
        language: Annotated[str, Form(max_length=10)] = "en",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        v = await visit(request)
        form = {"name": bounded(name, 200) or "", "email": bounded(email, 320) or ""}
        if not v.csrf_ok(csrf):
            return page(v, "register.html", 403, error="csrf", form=form)
        if not form["name"]:
            return page(v, "register.html", 422, error="invalid_name", field="name", form=form)
        try:
            checked = address(form["email"])
        except ValueError:
            return page(v, "register.html", 422, error="invalid_email", field="email", form=form)
        profile = d.Profile(
            name=form["name"], language=language if language in ("fr", "en") else "en"
        )
        async with portal.pool.acquire() as conn:
            allowed = await people.may_mail(conn, checked, client_of(request), now())
            if allowed == "client":
                return page(v, "register.html", 429, error="too_many", form=form)
            if allowed == "yes":
                await people.register(conn, checked, profile, now(), portal.send)
        return page(v, "notice.html", notice="check_mail", title="register")

    async def choose_page(
        v: Visit, token: str, purposes: tuple[c.Purpose, ...], action: str, title: str
    ) -> Response:
        async with portal.pool.acquire() as conn:
            valid = await c.link_is_valid(conn, token[:100], purposes, portal.clock())
        if valid is None:
            return page(v, "notice.html", 410, error="link_dead", title="set_password_title")
        return page(v, "choose_password.html", token=token, action=action, title=title)

    @router.get("/activate")
    async def activate_page(request: Request, token: str = "") -> Response:
        v = await visit(request)
        return await choose_page(
            v, token, ("activate", "confirm"), "/activate", "set_password_title"
        )

    async def choose(
        request: Request, token: str, password: str, csrf: str, action: str, title: str
    ) -> Response:
        """A password chosen from a mailed link (activation, confirmation or reset): spent,
        and the person signed in; the form again with the reason, or the link is dead."""
        v = await visit(request)
        values = {"token": token, "action": action, "title": title}
        if not v.csrf_ok(csrf):
            return page(v, "choose_password.html", 403, error="csrf", **values)
        if problem := c.password_problem(password):
            return page(v, "choose_password.html", 422, error=problem, **values)
        spend = people.activate if action == "/activate" else people.reset
        async with portal.pool.acquire() as conn:
            person = await spend(conn, token, password, now())
        if person is None:
            return page(v, "notice.html", 410, error="link_dead", title=title)
        return await web.signed_in(v, person, "link" if action == "/activate" else "password")

    @router.post("/activate")
    async def activate(
        request: Request,
        token: Annotated[str, Form(max_length=100)] = "",
        password: Annotated[str, Form(max_length=400)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        return await choose(request, token, password, csrf, "/activate", "set_password_title")

    @router.get("/reset")
    async def reset_page(request: Request) -> Response:
        v = await visit(request)
        return page(v, "ask_mail.html", title="reset_title", intro="reset_intro", action="/reset")

    @router.post("/reset")
    async def reset_request(
        request: Request,
        email: Annotated[str, Form(max_length=400)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        return await ask_mail(request, email, csrf, "reset")

    @router.get("/sign-in/link")
    async def link_page(request: Request, token: str = "", next: str = "") -> Response:
        v = await visit(request)
        then = local_path(next)
        if (
            token
        ):  # the mailed link: a button signs in (a GET alone, e.g. a mail scanner's, does not)
            async with portal.pool.acquire() as conn:
                valid = await c.link_is_valid(conn, token[:100], ("sign-in",), now())
            if valid is None:
                return page(v, "notice.html", 410, error="link_dead", title="link_title")
            return page(v, "use_link.html", token=token, next=then)
        return page(
            v, "ask_mail.html", title="link_title", intro="link_intro", action="/sign-in/link",
            next=then,
        )  # fmt: skip

    @router.post("/sign-in/link/use")
    async def use_link(
        request: Request,
        token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=MAX_NEXT * 3)] = "/",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        v = await visit(request)
        then = local_path(next)
        if not v.csrf_ok(csrf):
            return page(v, "use_link.html", 403, error="csrf", token=token, next=then)
        async with portal.pool.acquire() as conn:
            person = await people.sign_in_by_link(conn, token, now())
        if person is None:
            return page(v, "notice.html", 410, error="link_dead", title="link_title")
        return await web.signed_in(v, person, "link", then)

    @router.post("/sign-in/link")
    async def link_request(
        request: Request,
        email: Annotated[str, Form(max_length=400)] = "",
        next: Annotated[str, Form(max_length=MAX_NEXT * 3)] = "/",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        return await ask_mail(request, email, csrf, "sign-in", local_path(next))

    async def ask_mail(
        request: Request, email: str, csrf: str, kind: str, then: str = "/"
    ) -> Response:
        v = await visit(request)
        typed = bounded(email, 320) or ""
        values = (
            {"title": "reset_title", "intro": "reset_intro", "action": "/reset"}
            if kind == "reset"
            else {"title": "link_title", "intro": "link_intro", "action": "/sign-in/link",
                  "next": then}
        )  # fmt: skip
        if not v.csrf_ok(csrf):
            return page(v, "ask_mail.html", 403, error="csrf", email=typed, **values)
        try:
            checked = address(typed)
        except ValueError:
            return page(v, "ask_mail.html", 422, error="invalid_email", email=typed, **values)
        async with portal.pool.acquire() as conn:
            allowed = await people.may_mail(conn, checked, client_of(request), now())
            if allowed == "client":
                return page(v, "ask_mail.html", 429, error="too_many", email=typed, **values)
            if allowed == "yes":
                if kind == "reset":
                    await people.request_reset(conn, checked, now(), portal.send)
                else:
                    await people.request_sign_in_link(conn, checked, now(), portal.send, then)
        return page(v, "notice.html", notice="check_mail", title=values["title"])

    @router.get("/reset/choose")
    async def reset_choose_page(request: Request, token: str = "") -> Response:
        v = await visit(request)
        return await choose_page(v, token, ("reset",), "/reset/choose", "reset_title")

    @router.post("/reset/choose")
    async def reset_choose(
        request: Request,
        token: Annotated[str, Form(max_length=100)] = "",
        password: Annotated[str, Form(max_length=400)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        return await choose(request, token, password, csrf, "/reset/choose", "reset_title")

    # --- the signed-in person's own pages ----------------------------------------------

    def example(date_format: str) -> str:
        return datetime(2026, 12, 31).strftime(date_format)

    @router.get("/profile")
    async def profile_page(request: Request) -> Response:
        v = await visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        return page(
            v, "profile.html", form=v.person, date_formats=d.DATE_FORMATS, example=example,
            zones=zone_groups(v.person.time_zone),
        )  # fmt: skip

    @router.post("/profile")
    async def profile(
        request: Request,
        name: Annotated[str, Form(max_length=400)] = "",
        phone: Annotated[str, Form(max_length=100)] = "",
        language: Annotated[str, Form(max_length=10)] = "en",
        date_format: Annotated[str, Form(max_length=20)] = "%Y-%m-%d",
        time_zone: Annotated[str, Form(max_length=400)] = "",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        v = await visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        zone = bounded(time_zone, d.MAX_TIME_ZONE) if time_zone else v.person.time_zone
        form = {"name": bounded(name, 200), "phone": bounded(phone, 40), "language": language,
                "date_format": date_format, "time_zone": zone}  # fmt: skip
        values: dict[str, Any] = {"form": form, "date_formats": d.DATE_FORMATS, "example": example,
                                  "zones": zone_groups(v.person.time_zone)}  # fmt: skip
        if not v.csrf_ok(csrf):
            return page(v, "profile.html", 403, error="csrf", **values)
        if not form["name"]:
            return page(v, "profile.html", 422, error="invalid_name", **values)
        if form["phone"] is None:
            return page(v, "profile.html", 422, error="invalid_phone", **values)
        if zone is None or zone not in d.time_zones():
            values["form"] = {**form, "time_zone": v.person.time_zone}
            return page(v, "profile.html", 422, error="profile.invalid_time_zone",
                        field="time_zone", **values)  # fmt: skip
        chosen = d.Profile(
            name=form["name"],
            phone=form["phone"] or None,
            language=language if language in ("fr", "en") else v.person.language,
            date_format=date_format if date_format in d.DATE_FORMATS else v.person.date_format,
            time_zone=zone,
        )
        async with portal.pool.acquire() as conn:
            await people.change_profile(conn, v.person, chosen, portal.clock())
            v.person = await account(conn, v.person.email)
        v.language = chosen.language
        values["form"] = chosen
        return page(v, "profile.html", notice="profile_saved", **values)

    def date_of(v: Visit) -> Callable[[datetime], str]:
        fmt = v.person.date_format if v.person else "%Y-%m-%d"
        return lambda instant: instant.strftime(fmt)

    @router.get("/tokens")
    async def tokens_page(request: Request) -> Response:
        v = await visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        async with portal.pool.acquire() as conn:
            tokens = await c.tokens_of(conn, v.person.email)
        return page(v, "tokens.html", tokens=tokens, date=date_of(v))

    @router.post("/tokens")
    async def create_token(
        request: Request,
        label: Annotated[str, Form(max_length=400)] = "",
        scope: Annotated[str, Form(max_length=10)] = "read",
        days: Annotated[str, Form(max_length=10)] = "90",
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> Response:
        v = await visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        async with portal.pool.acquire() as conn:
            tokens = await c.tokens_of(conn, v.person.email)
            if not v.csrf_ok(csrf):
                return page(v, "tokens.html", 403, error="csrf", tokens=tokens, date=date_of(v))
            named = bounded(label, 100)
            valid_days = int(days) if re.fullmatch(r"[0-9]{1,3}", days) else None
            valid_days = valid_days if valid_days and valid_days <= 365 else None
            if not named or valid_days is None:
                return page(
                    v,
                    "tokens.html",
                    422,
                    error="invalid_token_form",
                    tokens=tokens,
                    date=date_of(v),
                )
            granted: tuple[Scope, ...] = ("read", "write") if scope == "write" else ("read",)
            secret, _ = await c.create_token(
                conn, v.person.email, named, granted, timedelta(days=valid_days), portal.clock()
            )
            tokens = await c.tokens_of(conn, v.person.email)
        return page(v, "tokens.html", 201, tokens=tokens, secret=secret, date=date_of(v))

    @router.post("/tokens/{token_id}/revoke")
    async def revoke_token(
        request: Request, token_id: uuid.UUID, csrf: Annotated[str, Form(max_length=100)] = ""
    ) -> Response:
        v = await visit(request)
        if v.person is None:
            return web.sign_in_first(v)
        if v.csrf_ok(csrf):
            async with portal.pool.acquire() as conn:
                await c.revoke_token(conn, v.person.email, token_id, portal.clock())
        return finish(v, RedirectResponse("/tokens", 303))

    return router
