"""Single sign-on against a real Keycloak, driven like a browser without one.

THE SLOW ONE of the portal's tests: the session's first use starts a Keycloak (`keycloak_support`:
~15 s warm, up to ~60 s the first time on two cores, plus the one-time Maven download of the
distribution on a fresh machine). An httpx client plays the browser: `GET /sso/login` on the
router (in-process through `httpx.ASGITransport`, at `PORTAL`), Keycloak's real login page, its
form posted with a username and password, Keycloak's redirect back to `/sso/callback`, which
exchanges the code with Keycloak for real and checks the ID token against Keycloak's keys.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from keycloak_support import Keycloak, LoopbackBrowser, SsoRealm, desk_realm

from desk_platform.settings import Settings
from desk_policies.loader import load_policies
from portal.adapters.sso import FLOW_COOKIE, FLOW_PATH, seal, sso_router, unseal
from portal.domain.sso import SsoProfile, grantable_roles

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PORTAL = "http://portal.test"
ROLE_MAP = (
    "/desk/erp-vendor/team_lead=erp-vendor:team_lead,"
    "/desk/erp-vendor/team_lead=erp-vendor:daily,"
    "/desk/erp-vendor/front_desk=erp-vendor:front_desk,"
    "/desk/saas-desk/agent=saas-desk:agent"
)
FLOW_KEY = secrets.token_bytes(32)
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def realm(keycloak: Keycloak) -> Iterator[SsoRealm]:
    yield desk_realm(keycloak, PORTAL)


@dataclass
class Portal:
    """The router mounted in a bare app, and every profile its `signed_in` received."""

    realm: SsoRealm
    transport: httpx.AsyncBaseTransport | None = None
    signed_in: list[SsoProfile] = field(default_factory=list)

    def app(self) -> FastAPI:
        settings = Settings(
            database_url="postgresql://unused",
            kafka_bootstrap_servers="unused:9092",
            portal_url=PORTAL,
            oidc_issuer=self.realm.issuer,
            oidc_client_id=self.realm.client_id,
            oidc_client_secret=self.realm.client_secret,
            oidc_role_map=ROLE_MAP,
        )

        async def signed_in(request: Request, profile: SsoProfile) -> Response:
            self.signed_in.append(profile)
            answer = RedirectResponse("/", status_code=303)
            answer.set_cookie("desk_session", "made-by-the-portal", httponly=True)
            return answer

        grantable = grantable_roles(load_policies().values())
        app = FastAPI()
        app.include_router(
            sso_router(settings, signed_in, flow_key=FLOW_KEY, grantable=grantable,
                       transport=self.transport)
        )  # fmt: skip
        return app


def browser(portal: Portal) -> httpx.AsyncClient:
    """A client that reaches the portal in-process and Keycloak over the network, one cookie jar
    for both, redirects followed by hand."""
    return httpx.AsyncClient(
        mounts={PORTAL: httpx.ASGITransport(app=portal.app())},
        transport=LoopbackBrowser(),
        timeout=30.0,
    )


@pytest.fixture
def portal(realm: SsoRealm) -> Portal:
    return Portal(realm)


@pytest.fixture
async def client(portal: Portal) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(portal) as c:
        yield c


class _Forms(HTMLParser):
    """The forms of a page: action and the inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.forms.append((named.get("action") or "", {}))
        elif tag == "input" and self.forms and named.get("name"):
            self.forms[-1][1][named["name"] or ""] = named.get("value") or ""


def login_form(page: str) -> tuple[str, dict[str, str]]:
    """The action and fields of the page's form that asks for a password."""
    parser = _Forms()
    parser.feed(page)
    for action, fields in parser.forms:
        if "password" in fields and action:
            return action, fields
    raise AssertionError(f"no login form on the page:\n{page[:2000]}")


async def keycloak_answer(
    client: httpx.AsyncClient, realm: SsoRealm, username: str, password: str
) -> httpx.Response:
    """Start at /sso/login, post the credentials on Keycloak's form: Keycloak's answer."""
    started = await client.get(f"{PORTAL}/sso/login")
    assert started.status_code == 302, started.text
    authorize = started.headers["location"]
    assert authorize.startswith(f"{realm.issuer}/protocol/openid-connect/auth?")
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["response_type"] == ["code"]
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"][0]
    assert asked["state"][0] and asked["nonce"][0]
    assert "openid" in asked["scope"][0].split()
    assert asked["redirect_uri"] == [f"{PORTAL}/sso/callback"]
    page = await client.get(authorize)
    assert page.status_code == 200, page.text[:2000]
    action, fields = login_form(page.text)
    return await client.post(action, data={**fields, "username": username, "password": password})


def callback_url(answer: httpx.Response) -> str:
    assert answer.status_code == 302, answer.text[:2000]
    location = answer.headers["location"]
    assert location.startswith(f"{PORTAL}/sso/callback?"), location
    return location


def flow_cookie(client: httpx.AsyncClient) -> str:
    value = client.cookies.get(FLOW_COOKIE, domain="portal.test", path=FLOW_PATH)
    assert value, "no sign-in cookie"
    return value


def set_flow_cookie(client: httpx.AsyncClient, value: str) -> None:
    if client.cookies.get(FLOW_COOKIE, domain="portal.test", path=FLOW_PATH) is not None:
        client.cookies.delete(FLOW_COOKIE, domain="portal.test", path=FLOW_PATH)
    client.cookies.set(FLOW_COOKIE, value, domain="portal.test", path=FLOW_PATH)


async def test_a_member_of_mapped_groups_signs_in_with_their_desk_roles(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    lea = realm.people["lea"]
    answer = await keycloak_answer(client, realm, lea.username, lea.password)
    done = await client.get(callback_url(answer))

    assert done.status_code == 303 and done.headers["location"] == "/"
    assert client.cookies.get("desk_session") == "made-by-the-portal"
    assert client.cookies.get(FLOW_COOKIE) is None  # the sign-in cookie is spent
    [profile] = portal.signed_in
    assert profile.issuer == realm.issuer and profile.subject
    assert (profile.email, profile.email_verified) == ("lea.lead@desk.example", True)
    assert profile.name == "Léa Lead"
    assert set(profile.groups) == {"/desk/erp-vendor/team_lead", "/desk/saas-desk/agent"}
    assert dict(profile.desk_roles) == {
        "erp-vendor": ("team_lead", "daily"),
        "saas-desk": ("agent",),
    }


async def test_a_wrong_password_stays_on_keycloak(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    answer = await keycloak_answer(client, realm, "lea", "not-her-password")

    assert answer.status_code == 200  # the form again, not a redirect to the portal
    assert "Invalid username or password" in answer.text
    login_form(answer.text)
    assert portal.signed_in == []


async def test_a_group_listed_nowhere_grants_nothing(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    omar = realm.people["omar"]
    answer = await keycloak_answer(client, realm, omar.username, omar.password)
    done = await client.get(callback_url(answer))

    assert done.status_code == 303
    [profile] = portal.signed_in
    assert profile.groups == ("/partners",)
    assert dict(profile.desk_roles) == {}


async def test_an_address_keycloak_has_not_verified_is_refused(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    una = realm.people["una"]
    answer = await keycloak_answer(client, realm, una.username, una.password)
    refused = await client.get(callback_url(answer), headers=JSON)

    assert refused.status_code == 403
    assert "has not verified the address una@desk.example" in refused.json()["detail"]
    assert portal.signed_in == []
    assert client.cookies.get("desk_session") is None


async def test_an_answer_with_a_forged_state_is_refused(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    lea = realm.people["lea"]
    answer = await keycloak_answer(client, realm, lea.username, lea.password)
    real = urlsplit(callback_url(answer))
    forged = real._replace(query=real.query.replace("state=", "state=forged")).geturl()

    refused = await client.get(forged, headers={"Accept": "text/html"})

    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "does not belong to the sign-in this browser started" in refused.text
    assert portal.signed_in == []
    # the sign-in cookie is gone with the refusal: the real answer is refused now too
    late = await client.get(real.geturl(), headers=JSON)
    assert late.status_code == 400 and "No sign-in was started" in late.json()["detail"]


async def test_an_answer_without_the_sign_in_cookie_or_with_a_forged_one_is_refused(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    lea = realm.people["lea"]
    answer = await keycloak_answer(client, realm, lea.username, lea.password)
    url = callback_url(answer)
    genuine = flow_cookie(client)
    payload, _, mac = genuine.partition(".")
    flow = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    flow["v"] = "a" * 64  # another code verifier, under the old MAC
    tampered = base64.urlsafe_b64encode(json.dumps(flow).encode()).decode().rstrip("=")

    set_flow_cookie(client, f"{tampered}.{mac}")
    forged = await client.get(url, headers=JSON)
    assert client.cookies.get(FLOW_COOKIE) is None  # the refusal removed it
    missing = await client.get(url, headers=JSON)

    assert forged.status_code == 400 and "not one we issued" in forged.json()["detail"]
    assert missing.status_code == 400 and "No sign-in was started" in missing.json()["detail"]
    assert portal.signed_in == []


async def test_a_replayed_answer_is_refused(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    lea = realm.people["lea"]
    answer = await keycloak_answer(client, realm, lea.username, lea.password)
    url, cookie = callback_url(answer), flow_cookie(client)
    assert (await client.get(url)).status_code == 303

    again = await client.get(url, headers=JSON)  # its cookie was spent
    set_flow_cookie(client, cookie)  # an attacker who kept the cookie: Keycloak refuses the code
    replayed = await client.get(url, headers=JSON)

    assert again.status_code == 400 and "No sign-in was started" in again.json()["detail"]
    assert replayed.status_code == 400
    assert "refused the code (invalid_grant)" in replayed.json()["detail"]
    assert len(portal.signed_in) == 1


async def test_an_id_token_for_another_nonce_is_refused(
    client: httpx.AsyncClient, portal: Portal, realm: SsoRealm
) -> None:
    lea = realm.people["lea"]
    answer = await keycloak_answer(client, realm, lea.username, lea.password)
    url = callback_url(answer)
    flow = unseal(flow_cookie(client), FLOW_KEY, now=time.time())
    set_flow_cookie(client, seal(replace(flow, nonce="another-nonce"), FLOW_KEY))

    refused = await client.get(url, headers=JSON)

    assert refused.status_code == 400
    assert "ID token was refused" in refused.json()["detail"]
    assert "nonce" in refused.json()["detail"]
    assert portal.signed_in == []


class SignatureFlipper(httpx.AsyncBaseTransport):
    """The network, except that the ID token in Keycloak's token answers has a damaged
    signature (a man in the middle, or a provider key we must not trust)."""

    def __init__(self) -> None:
        self.network = httpx.AsyncHTTPTransport()
        self.flipped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.network.handle_async_request(request)
        if not request.url.path.endswith("/protocol/openid-connect/token"):
            return response
        await response.aread()
        token = json.loads(response.content)
        header, payload, signature = token["id_token"].split(".")
        spot = len(signature) // 2  # not the last character: it may hold padding bits only
        other = "A" if signature[spot] != "A" else "B"
        damaged = signature[:spot] + other + signature[spot + 1 :]
        token["id_token"] = f"{header}.{payload}.{damaged}"
        self.flipped += 1
        return httpx.Response(response.status_code, json=token)

    async def aclose(self) -> None:
        """Kept open: each authlib client closes its transport after one use."""


async def test_an_id_token_whose_signature_does_not_match_keycloaks_keys_is_refused(
    realm: SsoRealm,
) -> None:
    flipper = SignatureFlipper()
    portal = Portal(realm, transport=flipper)
    async with browser(portal) as client:
        lea = realm.people["lea"]
        answer = await keycloak_answer(client, realm, lea.username, lea.password)
        refused = await client.get(callback_url(answer), headers=JSON)

    await flipper.network.aclose()
    assert flipper.flipped == 1
    assert refused.status_code == 400
    assert "ID token was refused" in refused.json()["detail"]
    assert portal.signed_in == []


async def test_a_provider_error_is_refused_with_its_reason(
    client: httpx.AsyncClient, portal: Portal
) -> None:
    started = await client.get(f"{PORTAL}/sso/login")
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]

    refused = await client.get(
        f"{PORTAL}/sso/callback",
        params={"error": "access_denied", "error_description": "the user said no", "state": state},
        headers=JSON,
    )

    assert refused.status_code == 400
    assert "refused the sign-in (access_denied: the user said no)" in refused.json()["detail"]
    assert portal.signed_in == []


async def test_through_the_portal_staff_get_a_session_and_their_roles_in_the_directory(
    realm: SsoRealm, database_url: str
) -> None:
    from datetime import UTC, datetime

    from service_support import service_store

    from desk_platform.identity import new_signing_key
    from portal.app import create_app, single_sign_on
    from portal.application.directory import history
    from portal.application.people import Mail

    async def no_mail(mail: Mail) -> None:
        raise AssertionError(f"single sign-on sends no mail: {mail.kind}")

    def now() -> datetime:
        return datetime.now(UTC)

    policies = load_policies()
    settings = Settings(
        database_url="postgresql://unused",
        kafka_bootstrap_servers="unused:9092",
        portal_url=PORTAL,
        oidc_issuer=realm.issuer,
        oidc_client_id=realm.client_id,
        oidc_client_secret=realm.client_secret,
        oidc_role_map=ROLE_MAP,
    )
    keys = [new_signing_key()]
    async with service_store(database_url, "portal") as pool:
        app = create_app(pool, policies, now, keys, no_mail, services={},
                         sso=single_sign_on(settings, policies, now, keys))  # fmt: skip
        mounts = {PORTAL: httpx.ASGITransport(app=app)}
        async with httpx.AsyncClient(mounts=mounts, transport=LoopbackBrowser(), timeout=30) as c:
            assert "/sso/login" in (await c.get(f"{PORTAL}/sign-in")).text
            lea = realm.people["lea"]
            done = await c.get(callback_url(await keycloak_answer(c, realm, lea.username,
                                                                  lea.password)))  # fmt: skip
            assert done.status_code == 303, done.text
            me = (await c.get(f"{PORTAL}/me")).json()
        assert me["email"] == "lea.lead@desk.example" and me["status"] == "active"
        assert me["roles"] == {"erp-vendor": ["daily", "team_lead"], "saas-desk": ["agent"]}
        async with pool.acquire() as conn:
            changes = await history(conn, "lea.lead@desk.example")
        assert {(h["change"], h["by"]) for h in changes} == {
            ("PersonInvited", "sso"), ("PersonActivated", "sso"), ("RoleGranted", "sso"),
        }  # fmt: skip
