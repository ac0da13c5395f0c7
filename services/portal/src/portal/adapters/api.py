"""The portal's JSON API: the public keys of the identity it signs, signed identity for a
service, the gateway to intake, workflow and sla, the person's API tokens, and the
administration of people (for staff who administer a desk).

Who calls is either a browser session (its cookie, plus the session's CSRF token in
`X-CSRF-Token` on anything but a read) or an API token (`Authorization: Bearer desk_...`,
scoped read or read-write, expiring, revocable). `/api/<service>/<path>` forwards a call to
intake, workflow or sla with a short-lived token the portal signs for that service alone
(`desk_platform.identity`): the services believe nothing else.
"""

import hmac
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from desk_contracts import directory as d
from desk_contracts.identity import Identity, Via
from desk_contracts.inputs import Address
from desk_platform.http import refusals
from desk_platform.identity import TOKEN_MINUTES, Signer, SigningKey, jwks
from portal.adapters.web import SESSION_COOKIE, Portal, session_via
from portal.application import credentials as c
from portal.application import directory, people
from portal.domain.accounts import Account, Refused, check_administers

# what the gateway passes on, each way (never cookies nor the caller's Authorization)
FORWARDED_REQUEST = (
    "content-type",
    "accept",
    "idempotency-key",
    "if-match",
    "x-actor-role",
    "x-correlation-id",
)
FORWARDED_ANSWER = ("content-type", "etag", "location", "retry-after")
READS = ("GET", "HEAD", "OPTIONS")
PROBES = ("health", "ready", "metrics")  # operators' endpoints, not the callers'


@dataclass(frozen=True)
class Caller:
    """A verified caller of the portal's API and how they proved it."""

    person: Account
    via: Via
    scope: frozenset[Literal["read", "write"]]
    csrf: str | None = None  # a session's CSRF token (None: an API token)

    def identity(self) -> Identity:
        return self.person.identity(self.via, self.scope)


class SignedIdentity(BaseModel):
    token: str = Field(description="a JWT for `audience`: `Authorization: Bearer <token>`")
    audience: str
    expires_in: int = Field(description="seconds")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    audience: Literal["intake", "workflow", "sla"]


class NewApiToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=100, pattern=r"\S")
    scope: Literal["read", "write"] = "read"
    days: int = Field(default=90, ge=1, le=365)


class CreatedApiToken(BaseModel):
    token_id: uuid.UUID
    token: str = Field(description="shown once: keep it secret")
    expires_at: datetime


class PersonView(BaseModel):
    """A person's entry as the directory holds it."""

    email: str
    name: str
    status: str
    organisation_id: str | None
    language: str
    date_format: str
    time_zone: str
    phone: str | None
    roles: dict[str, list[str]]


class Me(PersonView):
    csrf_token: str | None = Field(description="a session's: send it as X-CSRF-Token")


class Invitation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Address
    profile: d.Profile
    organisation_id: str | None = Field(default=None, max_length=100)


class Membership(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation_id: str | None = Field(max_length=100, description="None: unlink")


class Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    desk_id: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=64)


class OrganisationForm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation_id: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1, max_length=200)
    domains: tuple[d.MailDomain, ...] = Field(default=(), max_length=50)


def view(person: Account) -> PersonView:
    return PersonView(
        email=person.email,
        name=person.name,
        status=person.status,
        organisation_id=person.organisation_id,
        language=person.language,
        date_format=person.date_format,
        time_zone=person.time_zone,
        phone=person.phone,
        roles={desk: list(r) for desk, r in person.roles.items()},
    )


UNAUTHORISED = {401: "no session and no valid API token"}
FORBIDDEN = {403: "a read-only token, a missing CSRF token, or not an administrator"}


def api_router(
    portal: Portal,
    signer: Signer,
    keys: Callable[[], list[SigningKey]],
    services: Mapping[str, str],
    client: httpx.AsyncClient,
) -> APIRouter:
    """The routes described in the module docstring; `services` maps each audience to its URL."""
    router = APIRouter()

    async def caller(
        request: Request,
        authorization: Annotated[str | None, Header(max_length=200)] = None,
        x_csrf_token: Annotated[str | None, Header(max_length=100)] = None,
    ) -> Caller:
        now = portal.clock()
        async with portal.pool.acquire() as conn:
            if authorization and authorization.lower().startswith("bearer "):
                owner = await c.token_owner(conn, authorization[7:].strip(), now)
                person = await directory.account(conn, owner[0]) if owner else None
                if owner is None or person is None or not person.may_sign_in:
                    raise HTTPException(
                        401,
                        "API token unknown, expired or revoked",
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                return Caller(person, "api_token", frozenset(owner[1]))
            secret = request.cookies.get(SESSION_COOKIE, "")[:100]
            session = await c.find_session(conn, secret, now) if secret else None
            person = await directory.account(conn, session.email) if session else None
        if session is None or person is None or not person.may_sign_in:
            raise HTTPException(
                401, "sign in, or send an API token", headers={"WWW-Authenticate": "Bearer"}
            )
        if request.method not in READS and not (
            x_csrf_token and hmac.compare_digest(x_csrf_token.encode(), session.csrf.encode())
        ):
            raise HTTPException(403, "X-CSRF-Token is missing or is not the session's")
        return Caller(person, session_via(session), frozenset(("read", "write")), session.csrf)

    Who = Annotated[Caller, Depends(caller)]

    def writing(who: Caller) -> Caller:
        if "write" not in who.scope:
            raise HTTPException(403, "this API token is read-only")
        return who

    def session_only(who: Caller) -> Caller:
        if who.via == "api_token":
            raise HTTPException(403, "API tokens are created and revoked from a signed-in session")
        return who

    @router.get("/.well-known/jwks.json", tags=["identity"])
    async def published_keys() -> dict[str, Any]:
        """The public keys that verify the identity tokens the portal signs."""
        return jwks(keys())

    @router.get("/me", tags=["identity"], responses=refusals(UNAUTHORISED))
    async def me(who: Who) -> Me:
        """The caller's own account (and, with a session, the CSRF token its JSON calls send
        as `X-CSRF-Token`)."""
        return Me(**view(who.person).model_dump(), csrf_token=who.csrf)

    @router.post("/identity/token", tags=["identity"], responses=refusals(UNAUTHORISED))
    async def identity_token(body: TokenRequest, who: Who) -> SignedIdentity:
        """A token proving who the caller is to one service, valid a few minutes."""
        token = signer.token(who.identity(), body.audience, portal.clock())
        return SignedIdentity(token=token, audience=body.audience, expires_in=TOKEN_MINUTES * 60)

    @router.api_route(
        "/api/{service}/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        tags=["gateway"],
        responses=refusals(
            {**UNAUTHORISED, **FORBIDDEN, 404: "no such service", 502: "no answer from it"}
        ),
    )
    async def gateway(service: str, path: str, request: Request, who: Who) -> Response:
        """Forward the call to intake, workflow or sla as the caller (see module)."""
        if service not in services:
            raise HTTPException(404, f"no service {service[:40]!r}: {', '.join(services)}")
        if path.split("/", 1)[0] in PROBES:
            raise HTTPException(404, "the services' probes are not served to callers")
        # the path as the caller wrote it (still encoded: a %23 in a key stays one)
        raw = request.scope.get("raw_path", b"").decode("latin-1")
        forwarded = raw.split("/", 3)[3] if raw.count("/") >= 3 else path
        if request.method not in READS:
            writing(who)
        token = signer.token(who.identity(), service, portal.clock())
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_REQUEST}
        headers["authorization"] = f"Bearer {token}"
        try:
            answer = await client.request(
                request.method,
                f"{services[service]}/{forwarded}",
                params=request.query_params,
                content=await request.body(),
                headers=headers,
            )
        except httpx.HTTPError:
            raise HTTPException(502, f"{service} did not answer: try again") from None
        kept = {k: v for k, v in answer.headers.items() if k.lower() in FORWARDED_ANSWER}
        return Response(answer.content, answer.status_code, kept)

    # --- the person's API tokens --------------------------------------------------------

    @router.post(
        "/me/tokens",
        status_code=201,
        tags=["tokens"],
        responses=refusals({**UNAUTHORISED, **FORBIDDEN}),
    )
    async def new_token(body: NewApiToken, who: Who) -> CreatedApiToken:
        """Create an API token for yourself (shown once)."""
        session_only(who)
        scope: tuple[Literal["read", "write"], ...] = (
            ("read", "write") if body.scope == "write" else ("read",)
        )
        now = portal.clock()
        async with portal.pool.acquire() as conn:
            secret, token_id = await c.create_token(
                conn, who.person.email, body.label.strip(), scope, timedelta(days=body.days), now
            )
        return CreatedApiToken(
            token_id=token_id, token=secret, expires_at=now + timedelta(days=body.days)
        )

    @router.get("/me/tokens", tags=["tokens"], responses=refusals(UNAUTHORISED))
    async def my_tokens(who: Who) -> list[dict[str, Any]]:
        """Your API tokens (never their secrets)."""
        async with portal.pool.acquire() as conn:
            return [t.__dict__ for t in await c.tokens_of(conn, who.person.email)]

    @router.delete(
        "/me/tokens/{token_id}",
        status_code=204,
        tags=["tokens"],
        responses=refusals({**UNAUTHORISED, **FORBIDDEN, 404: "no such token of yours"}),
    )
    async def revoke(token_id: uuid.UUID, who: Who) -> Response:
        """Revoke one of your API tokens."""
        session_only(who)
        async with portal.pool.acquire() as conn:
            if not await c.revoke_token(conn, who.person.email, token_id, portal.clock()):
                raise HTTPException(404, "no such token of yours")
        return Response(status_code=204)

    # --- administration -----------------------------------------------------------------

    ADMIN = refusals({**UNAUTHORISED, **FORBIDDEN, 409: "refused: `detail` says why"})

    async def administer(who: Caller, change: Callable[[Any], Any]) -> Any:
        writing(who)
        async with portal.pool.acquire() as conn:
            try:
                return await change(conn)
            except Refused as error:
                raise HTTPException(error.status, str(error)) from None

    @router.post("/admin/organisations", status_code=204, tags=["administration"], responses=ADMIN)
    async def record_organisation(body: OrganisationForm, who: Who) -> Response:
        """Create or change an organisation."""
        await administer(
            who,
            lambda conn: people.record_organisation(
                conn, who.person, portal.policies, body.model_dump(), portal.clock()
            ),
        )
        return Response(status_code=204)

    @router.post("/admin/people", status_code=201, tags=["administration"], responses=ADMIN)
    async def invite(body: Invitation, who: Who) -> PersonView:
        """Invite a person: their account, and the activation mail (seed 004)."""
        person = await administer(
            who,
            lambda conn: people.invite(
                conn,
                who.person,
                portal.policies,
                body.email,
                body.profile,
                body.organisation_id,
                portal.clock(),
                portal.send,
            ),
        )
        return view(person)

    async def admin_reader(who: Caller) -> None:
        try:
            check_administers(who.person, portal.policies)
        except Refused as error:
            raise HTTPException(error.status, str(error)) from None

    @router.get("/admin/people", tags=["administration"], responses=ADMIN)
    async def list_people(who: Who, organisation_id: str | None = None) -> list[PersonView]:
        """The people (of one organisation)."""
        await admin_reader(who)
        async with portal.pool.acquire() as conn:
            return [view(p) for p in await directory.accounts(conn, organisation_id)]

    @router.get("/admin/people/{email}/history", tags=["administration"], responses=ADMIN)
    async def person_history(email: str, who: Who) -> list[dict[str, Any]]:
        """Every change of a person's entry: what, when, by whom."""
        await admin_reader(who)
        async with portal.pool.acquire() as conn:
            return await directory.history(conn, email[:320].lower())

    @router.put("/admin/people/{email}/organisation", tags=["administration"], responses=ADMIN)
    async def set_organisation(email: str, body: Membership, who: Who) -> PersonView:
        """Link a person to an organisation (or unlink them: `null`)."""
        return view(
            await administer(
                who,
                lambda conn: people.link(
                    conn,
                    who.person,
                    portal.policies,
                    email[:320],
                    body.organisation_id,
                    portal.clock(),
                ),
            )
        )

    @router.post("/admin/people/{email}/roles", tags=["administration"], responses=ADMIN)
    async def grant_role(email: str, body: Grant, who: Who) -> PersonView:
        """Grant a desk role (to staff)."""
        return view(
            await administer(
                who,
                lambda conn: people.grant(
                    conn,
                    who.person,
                    portal.policies,
                    email[:320],
                    body.desk_id,
                    body.role,
                    portal.clock(),
                ),
            )
        )

    @router.delete(
        "/admin/people/{email}/roles/{desk_id}/{role}", tags=["administration"], responses=ADMIN
    )
    async def revoke_role(email: str, desk_id: str, role: str, who: Who) -> PersonView:
        """Revoke a desk role."""
        return view(
            await administer(
                who,
                lambda conn: people.grant(
                    conn,
                    who.person,
                    portal.policies,
                    email[:320],
                    desk_id[:64],
                    role[:64],
                    portal.clock(),
                    revoke=True,
                ),
            )
        )

    @router.post("/admin/people/{email}/deactivate", tags=["administration"], responses=ADMIN)
    async def deactivate(email: str, who: Who) -> PersonView:
        """Deactivate a person: signed out everywhere, their API tokens revoked."""
        return view(
            await administer(
                who,
                lambda conn: people.deactivate(
                    conn, who.person, portal.policies, email[:320], portal.clock()
                ),
            )
        )

    @router.post("/admin/people/{email}/reactivate", tags=["administration"], responses=ADMIN)
    async def reactivate(email: str, who: Who) -> PersonView:
        """Let a deactivated person sign in again."""
        return view(
            await administer(
                who,
                lambda conn: people.deactivate(
                    conn, who.person, portal.policies, email[:320], portal.clock(), again=True
                ),
            )
        )

    return router
