"""Single sign-on for staff with OpenID Connect (authorization-code flow, PKCE S256):
`GET /sso/login` sends the browser to the identity provider, `GET /sso/callback` takes its
answer, exchanges the code for tokens, checks the ID token and hands the person to the portal.

- The provider is found by discovery (`<issuer>/.well-known/openid-configuration`, kept for
  `DISCOVERY_SECONDS`; its `issuer` must be the configured one) and spoken to with authlib's
  httpx client. authlib checks the ID token: its signature against the provider's JWKS (fetched
  again at once when a token names an unknown key), issuer, audience (our client id), nonce,
  expiry, `azp` and `at_hash`; only asymmetric signatures are accepted.
- What the callback must recognise (state, nonce, PKCE code verifier) travels in a short-lived
  cookie (`FLOW_COOKIE`: HttpOnly, SameSite=Lax, Secure on https, path `/sso`, `FLOW_SECONDS`)
  sealed with an HMAC-SHA256 under the key given to `sso_router`: nothing is kept on the server,
  and a forged or stale cookie is refused. It is signed, not encrypted: the browser holding it
  may read it; nothing in it helps anyone else. One sign-in at a time per browser: a second
  `/sso/login` replaces the first one's cookie.
- Every refusal answers a sentence (a small HTML page for a browser, else JSON `{"detail"}`):
  400 for a callback that does not belong to the sign-in this browser started (no or forged
  state, provider error, refused code, bad ID token), 403 for an e-mail the provider has not
  verified, 502 when the provider is out of reach or answers nonsense. Never a 500.
- Who may do what follows the role map (`portal.domain.sso`): the portal's `signed_in` receives
  the profile with its desk roles and makes the session; this module makes none.

The router is mounted only when `OIDC_ISSUER` is set (the portal's bootstrap decides); it
refuses at start-up a missing client id or secret, a short key or a malformed role map.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import time
import warnings
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc.errors import JoseError

from desk_platform.http import refusals
from desk_platform.settings import Settings
from portal.adapters.web import local_path
from portal.domain.sso import (
    ProfileRefused,
    RoleMap,
    SsoProfile,
    parse_role_map,
    profile_from_claims,
)

with warnings.catch_warnings():
    # authlib 1.9 prefers the `httpx2` package and warns when it falls back to `httpx`, which is
    # the one this workspace locks; the fallback is the client authlib has always used. The
    # filter goes in after authlib.deprecate is imported: that import puts "always" first.
    import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.base_client import (  # type: ignore[import-untyped]
        BaseApp,
        OAuthError,
    )
    from authlib.integrations.base_client.async_app import (  # type: ignore[import-untyped]
        AsyncOAuth2Mixin,
    )
    from authlib.integrations.base_client.async_openid import (  # type: ignore[import-untyped]
        AsyncOpenIDMixin,
    )
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        AsyncOAuth2Client,
    )

log = structlog.get_logger(__name__)

SignedIn = Callable[[Request, SsoProfile], Awaitable[Response]]

FLOW_COOKIE = "desk_sso_flow"
FLOW_PATH = "/sso"
FLOW_SECONDS = 600  # from /sso/login to the callback: the person types a password meanwhile
DISCOVERY_SECONDS = 3600.0
HTTP_TIMEOUT_SECONDS = 10.0
LEEWAY_SECONDS = 60  # clock difference with the provider tolerated on the ID token's times
SCOPE = "openid email profile"
MIN_KEY_BYTES = 32
MAX_PARAMETER = 2048  # characters of `code`, `state`, `error`... in the callback's query
# signatures with the provider's public key only: never HMAC with a shared secret, never none
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_SEAL_CONTEXT = b"desk-sso-flow\x00"


class SsoConfigError(ValueError):
    """Single sign-on settings the portal cannot start with: which, and why."""


class SsoRefused(Exception):
    """A sign-in refused: the HTTP status and the sentence the person reads."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# the sign-in in progress, sealed in a cookie
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Flow:
    """One sign-in this browser started: what the callback must match or send back."""

    state: str
    nonce: str
    code_verifier: str
    started_at: int  # seconds since the epoch
    then: str = "/"  # the portal's page to land on once signed in (a local path)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(flow: Flow, key: bytes) -> str:
    """`flow` as a cookie value: its JSON and an HMAC-SHA256 of it under `key`."""
    payload = json.dumps(
        {
            "s": flow.state,
            "n": flow.nonce,
            "v": flow.code_verifier,
            "t": flow.started_at,
            "x": flow.then,
        },
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(key, _SEAL_CONTEXT + payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def unseal(value: str | None, key: bytes, now: float) -> Flow:
    """The flow a cookie value carries, if `key` sealed it less than `FLOW_SECONDS` before `now`;
    SsoRefused (400) otherwise."""
    if not value:
        raise SsoRefused(
            400,
            "No sign-in was started in this browser, or it was started more than "
            f"{FLOW_SECONDS // 60} minutes ago: please sign in again.",
        )
    forged = SsoRefused(400, "The sign-in cookie is not one we issued: please sign in again.")
    encoded, dot, encoded_mac = value.partition(".")
    if not dot or len(value) > 4 * MAX_PARAMETER:
        raise forged
    try:
        payload, mac = _unb64(encoded), _unb64(encoded_mac)
    except ValueError:
        raise forged from None
    expected = hmac.new(key, _SEAL_CONTEXT + payload, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        raise forged
    data = json.loads(payload)  # ours: the HMAC says so
    flow = Flow(state=data["s"], nonce=data["n"], code_verifier=data["v"], started_at=data["t"],
                then=local_path(data.get("x")))  # fmt: skip
    if not 0 <= now - flow.started_at <= FLOW_SECONDS:
        raise SsoRefused(
            400, f"The sign-in took longer than {FLOW_SECONDS // 60} minutes: please start again."
        )
    return flow


# ---------------------------------------------------------------------------------------------
# the identity provider, as authlib speaks to it
# ---------------------------------------------------------------------------------------------
class OidcProvider(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):  # type: ignore[misc]
    """authlib's OpenID Connect client (the one its Starlette integration is made of, without
    the session middleware), discovery refreshed every `DISCOVERY_SECONDS`."""

    client_cls = AsyncOAuth2Client

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        client_kwargs: dict[str, Any] = {
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "timeout": HTTP_TIMEOUT_SECONDS,
        }
        if transport is not None:
            client_kwargs["transport"] = transport
        super().__init__(
            framework=None,
            name="sso",
            client_id=client_id,
            client_secret=client_secret,
            server_metadata_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
            client_kwargs=client_kwargs,
        )
        self.issuer = issuer

    async def load_server_metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched when older than `DISCOVERY_SECONDS`, its
        JWKS with it), checked to be the configured issuer's."""
        loaded_at = self.server_metadata.get("_loaded_at")
        if loaded_at is not None and time.time() - loaded_at > DISCOVERY_SECONDS:
            self.server_metadata.clear()
        metadata: dict[str, Any] = await super().load_server_metadata()
        if metadata.get("issuer") != self.issuer:
            found = metadata.get("issuer")
            self.server_metadata.clear()
            raise SsoRefused(
                502, f"The identity provider's discovery names issuer {found!r}, not ours."
            )
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        metadata["id_token_signing_alg_values_supported"] = [
            a for a in algorithms if a in ASYMMETRIC
        ] or ["RS256"]
        return metadata


# ---------------------------------------------------------------------------------------------
# the routes
# ---------------------------------------------------------------------------------------------
def _check_settings(settings: Settings, flow_key: bytes) -> str:
    missing = [
        name
        for name, value in (
            ("OIDC_ISSUER", settings.oidc_issuer),
            ("OIDC_CLIENT_ID", settings.oidc_client_id),
            ("OIDC_CLIENT_SECRET", settings.oidc_client_secret),
            ("OIDC_ROLES_CLAIM", settings.oidc_roles_claim),
        )
        if not value.strip()
    ]
    if missing:
        raise SsoConfigError(f"single sign-on needs {', '.join(missing)}")
    if len(flow_key) < MIN_KEY_BYTES:
        raise SsoConfigError(f"the sign-in cookie's key has fewer than {MIN_KEY_BYTES} bytes")
    issuer, portal = urlsplit(settings.oidc_issuer), urlsplit(settings.portal_url)
    if issuer.scheme not in ("https", "http") or not issuer.netloc:
        raise SsoConfigError(f"OIDC_ISSUER {settings.oidc_issuer!r} is not an http(s) URL")
    if portal.scheme not in ("https", "http") or not portal.netloc:
        raise SsoConfigError(f"PORTAL_URL {settings.portal_url!r} is not an http(s) URL")
    if settings.guarded and "http" in (issuer.scheme, portal.scheme):
        raise SsoConfigError("in production and staging OIDC_ISSUER and PORTAL_URL must be https")
    return f"{settings.portal_url.rstrip('/')}/sso/callback"


def _refusal(request: Request, refused: SsoRefused) -> Response:
    log.info("sso.refused", status=refused.status, reason=refused.reason)
    response: Response
    if "text/html" in request.headers.get("accept", ""):
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Sign-in refused</title>"
            f"</head><body><h1>Sign-in refused</h1><p>{html.escape(refused.reason)}</p>"
            "<p><a href='/sso/login'>Sign in again</a></p></body></html>"
        )
        response = HTMLResponse(page, status_code=refused.status)
    else:
        response = JSONResponse({"detail": refused.reason}, status_code=refused.status)
    return response


def _parameter(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and len(value) > MAX_PARAMETER:
        raise SsoRefused(400, f"The sign-in answer's {name!r} is longer than we accept.")
    return value


def sso_router(
    settings: Settings,
    signed_in: SignedIn,
    *,
    flow_key: bytes,
    grantable: Mapping[str, Collection[str]] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> APIRouter:
    """The routes of single sign-on with the provider `settings.oidc_issuer` names.

    `signed_in(request, profile)` is called once the provider vouched for a person with a
    verified e-mail; its response (e.g. a redirect that sets the session cookie) is answered;
    `request.state.then` is then the local path `/sso/login?next=` named (`/` without one).
    `flow_key` (at least 32 bytes, secret, shared by the portal's replicas) seals the sign-in
    cookie; `grantable` (desk -> roles) bounds what the role map may grant; `transport` carries
    every request to the provider (tests: it must survive `aclose`, each client closes it).
    SsoConfigError or RoleMapError for settings the portal must not start with."""
    redirect_uri = _check_settings(settings, flow_key)
    role_map: RoleMap = parse_role_map(settings.oidc_role_map, grantable)
    provider = OidcProvider(
        settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret, transport
    )
    secure = urlsplit(redirect_uri).scheme == "https"
    router = APIRouter(tags=["single sign-on"])

    def forget_flow(response: Response) -> Response:
        response.delete_cookie(
            FLOW_COOKIE, path=FLOW_PATH, secure=secure, httponly=True, samesite="lax"
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get(
        "/sso/login",
        status_code=302,
        response_class=RedirectResponse,
        summary="Sign in with the organisation's identity provider",
        responses={
            302: {"description": "to the identity provider's sign-in page"},
            **refusals({502: "the identity provider is out of reach or misconfigured"}),
        },
    )
    async def login(request: Request) -> Response:
        try:
            started = await provider.create_authorization_url(redirect_uri)
        except SsoRefused as refused:
            return forget_flow(_refusal(request, refused))
        except (httpx.HTTPError, ValueError, RuntimeError) as error:
            log.warning("sso.provider_unreachable", issuer=settings.oidc_issuer, error=repr(error))
            return forget_flow(
                _refusal(request, SsoRefused(502, "The identity provider is out of reach."))
            )
        flow = Flow(
            state=started["state"],
            nonce=started["nonce"],
            code_verifier=started["code_verifier"],
            started_at=int(time.time()),
            then=local_path(request.query_params.get("next")),
        )
        response = RedirectResponse(started["url"], status_code=302)
        response.set_cookie(
            FLOW_COOKIE,
            seal(flow, flow_key),
            max_age=FLOW_SECONDS,
            path=FLOW_PATH,
            secure=secure,
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def vouched_for(request: Request) -> SsoProfile:
        error = _parameter(request, "error")
        if error is not None:
            description = _parameter(request, "error_description") or ""
            raise SsoRefused(
                400, f"The identity provider refused the sign-in ({error}: {description})."
            )
        flow = unseal(request.cookies.get(FLOW_COOKIE), flow_key, time.time())
        request.state.then = flow.then  # where `signed_in` lands (see `sso_router`)
        state = _parameter(request, "state") or ""
        if not hmac.compare_digest(state.encode(), flow.state.encode()):
            raise SsoRefused(
                400, "This answer does not belong to the sign-in this browser started."
            )
        issuer = _parameter(request, "iss")  # RFC 9207: refuses an answer from another provider
        if issuer is not None and issuer != settings.oidc_issuer:
            raise SsoRefused(400, "This answer comes from another identity provider.")
        code = _parameter(request, "code")
        if not code:
            raise SsoRefused(400, "The identity provider's answer carries no code.")
        try:
            token = await provider.fetch_access_token(
                redirect_uri=redirect_uri, code=code, code_verifier=flow.code_verifier
            )
        except OAuthError as refused:
            raise SsoRefused(
                400, f"The identity provider refused the code ({refused.error})."
            ) from None
        except ValueError:  # a token endpoint answering something else than a JSON object
            raise SsoRefused(502, "The identity provider answered nonsense.") from None
        try:
            claims = await provider.parse_id_token(
                token,
                nonce=flow.nonce,
                claims_options={
                    "iss": {"essential": True, "value": settings.oidc_issuer},
                    "aud": {"essential": True, "value": settings.oidc_client_id},
                },
                leeway=LEEWAY_SECONDS,
            )
        except (JoseError, ValueError, TypeError, KeyError) as refused:
            raise SsoRefused(400, f"The ID token was refused ({refused}).") from None
        if claims is None:
            raise SsoRefused(400, "The identity provider sent no ID token.")
        try:
            profile = profile_from_claims(claims, settings.oidc_roles_claim, role_map)
        except ProfileRefused as refused:
            raise SsoRefused(400, f"{refused}.") from None
        if not profile.email_verified:
            raise SsoRefused(
                403,
                f"The identity provider has not verified the address {profile.email}: "
                "verify it there, then sign in again.",
            )
        return profile

    @router.get(
        "/sso/callback",
        summary="The identity provider's answer (browsers are sent here)",
        responses={
            200: {"description": "signed in: the portal's answer (a redirect, a page)"},
            **refusals(
                {
                    400: "the answer does not belong to this browser's sign-in, the provider "
                    "refused, or its ID token is not valid",
                    403: "the provider has not verified the person's e-mail address",
                    502: "the identity provider is out of reach or answered nonsense",
                }
            ),
        },
    )
    async def callback(request: Request) -> Response:
        try:
            profile = await vouched_for(request)
        except SsoRefused as refused:
            return forget_flow(_refusal(request, refused))
        except (httpx.HTTPError, RuntimeError) as error:
            log.warning("sso.provider_unreachable", issuer=settings.oidc_issuer, error=repr(error))
            unreachable = SsoRefused(502, "The identity provider is out of reach.")
            return forget_flow(_refusal(request, unreachable))
        log.info("sso.vouched", issuer=profile.issuer, subject=profile.subject)
        return forget_flow(await signed_in(request, profile))

    return router
