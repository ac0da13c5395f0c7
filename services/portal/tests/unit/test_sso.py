"""Single sign-on without an identity provider: the role map, the profile an ID token's claims
make, the sealed sign-in cookie, and what `sso_router` refuses to start with or answers before
any provider is asked (the flow against a real Keycloak: tests/integration/test_sso_keycloak.py)."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from desk_platform.settings import Settings
from desk_policies.loader import load_policies
from portal.adapters.sso import (
    FLOW_COOKIE,
    FLOW_SECONDS,
    Flow,
    SsoConfigError,
    SsoRefused,
    seal,
    sso_router,
    unseal,
)
from portal.domain.sso import (
    ProfileRefused,
    RoleMap,
    RoleMapError,
    SsoProfile,
    grantable_roles,
    parse_role_map,
    profile_from_claims,
)

LEAD = "/desk/erp-vendor/team_lead"
KEY = b"k" * 32
GRANTABLE = grantable_roles(load_policies().values())


# --- the role map ----------------------------------------------------------------------------
def test_an_empty_map_grants_nothing() -> None:
    assert parse_role_map("").desk_roles([LEAD]) == {}
    assert parse_role_map("  ").desk_roles([LEAD]) == {}


def test_groups_grant_the_roles_the_map_lists_in_its_order_each_once() -> None:
    role_map = parse_role_map(
        f"{LEAD}=erp-vendor:team_lead, {LEAD}=erp-vendor:daily,"
        "/desk/leads=erp-vendor:daily,/desk/leads=saas-desk:supervisor,/other=saas-desk:agent"
    )

    assert role_map.desk_roles([LEAD, "/desk/leads"]) == {
        "erp-vendor": ("team_lead", "daily"),
        "saas-desk": ("supervisor",),
    }
    assert role_map.desk_roles(["/other"]) == {"saas-desk": ("agent",)}


def test_a_group_listed_nowhere_grants_nothing() -> None:
    role_map = parse_role_map(f"{LEAD}=erp-vendor:team_lead")

    assert role_map.desk_roles(["/desk/erp-vendor", "/desk/erp-vendor/team_lead/x", "/x"]) == {}
    assert role_map.desk_roles([]) == {}


def test_a_group_name_may_hold_an_equals_sign_the_last_one_separates() -> None:
    role_map = parse_role_map("cn=leads;ou=desk=erp-vendor:team_lead")

    assert role_map.desk_roles(["cn=leads;ou=desk"]) == {"erp-vendor": ("team_lead",)}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/desk/lead", "entry 1 ('/desk/lead'): expected group=desk:role"),
        ("=erp-vendor:team_lead", "entry 1 ('=erp-vendor:team_lead'): expected group=desk:role"),
        (f"{LEAD}=erp-vendor", "expected desk:role after '='"),
        (f"{LEAD}=erp-vendor:", "expected desk:role after '='"),
        (f"{LEAD}=ERP:team_lead", "expected desk:role after '='"),
        (f"{LEAD}=erp-vendor:team lead", "expected desk:role after '='"),
        (f"{LEAD}=erp-vendor:team_lead,", "entry 2 (''): expected group=desk:role"),
        (f"{LEAD}=erp-vendor:a,,/x=erp-vendor:b", "entry 2 (''): expected"),
        (f"{LEAD}=erp-vendor:daily,{LEAD}=erp-vendor:daily", "entry 2 ("),
        ("/x\x07=erp-vendor:daily", "printable"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(text: str, says: str) -> None:
    with pytest.raises(RoleMapError) as refused:
        parse_role_map(text)

    assert says in str(refused.value)


def test_a_twice_listed_pair_is_refused() -> None:
    with pytest.raises(RoleMapError, match="listed twice"):
        parse_role_map(f"{LEAD}=erp-vendor:daily,{LEAD}=erp-vendor:daily")


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("/x=erp-vendr:team_lead", "no desk 'erp-vendr' (desks: cloud-partner, erp-vendor"),
        ("/x=erp-vendor:team-lead", "may not grant 'team-lead' at 'erp-vendor'"),
        ("/x=erp-vendor:requester", "may not grant 'requester'"),  # the customer's side
        ("/x=erp-vendor:system", "may not grant 'system'"),  # the services' own role
    ],
)
def test_with_the_desks_known_an_unknown_desk_or_a_role_sso_may_not_grant_is_refused(
    entry: str, says: str
) -> None:
    with pytest.raises(RoleMapError) as refused:
        parse_role_map(entry, GRANTABLE)

    assert says in str(refused.value)


def test_sso_may_grant_the_support_side_roles_of_every_desk() -> None:
    assert "team_lead" in GRANTABLE["erp-vendor"] and "agent" in GRANTABLE["saas-desk"]
    assert not {"requester", "participant", "system"} & {r for rs in GRANTABLE.values() for r in rs}
    assert parse_role_map(f"{LEAD}=erp-vendor:team_lead", GRANTABLE).desk_roles([LEAD])


# --- the profile -----------------------------------------------------------------------------
def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "https://id.example/realms/desk",
        "sub": "f6a1",
        "email": "Lea.Lead@Desk.Example",
        "email_verified": True,
        "name": "Léa  Lead",
        "groups": [LEAD, "/partners", LEAD],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


ROLE_MAP = parse_role_map(f"{LEAD}=erp-vendor:team_lead")


def test_a_profile_carries_who_the_provider_vouched_for_and_their_desk_roles() -> None:
    profile = profile_from_claims(claims(), "groups", ROLE_MAP)

    assert profile == SsoProfile(
        issuer="https://id.example/realms/desk",
        subject="f6a1",
        email="lea.lead@desk.example",
        email_verified=True,
        name="Léa Lead",
        groups=(LEAD, "/partners"),
        desk_roles=profile.desk_roles,
    )
    assert dict(profile.desk_roles) == {"erp-vendor": ("team_lead",)}


@pytest.mark.parametrize(
    ("flag", "verified"),
    [(True, True), ("true", True), (False, False), ("yes", False), (None, False)],
)
def test_only_a_true_email_verified_counts(flag: object, verified: bool) -> None:
    profile = profile_from_claims(claims(email_verified=flag), "groups", ROLE_MAP)

    assert profile.email_verified is verified


def test_the_groups_are_read_from_the_claim_the_settings_name() -> None:
    profile = profile_from_claims(claims(groups=None, roles=[LEAD]), "roles", ROLE_MAP)
    without = profile_from_claims(claims(groups=None), "groups", ROLE_MAP)
    single = profile_from_claims(claims(groups=LEAD), "groups", ROLE_MAP)

    assert dict(profile.desk_roles) == {"erp-vendor": ("team_lead",)}
    assert (without.groups, dict(without.desk_roles)) == ((), {})
    assert single.groups == (LEAD,)


def test_a_name_falls_back_to_given_and_family_name_then_username_then_address() -> None:
    given = claims(name=None, given_name="Léa", family_name="Lead")
    username = claims(name=" ", preferred_username="lea")
    nothing = claims(name=None)

    assert profile_from_claims(given, "groups", ROLE_MAP).name == "Léa Lead"
    assert profile_from_claims(username, "groups", ROLE_MAP).name == "lea"
    assert profile_from_claims(nothing, "groups", ROLE_MAP).name == "lea.lead@desk.example"
    assert len(profile_from_claims(claims(name="x" * 999), "groups", ROLE_MAP).name) == 200


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"email": None}, "no e-mail address"),
        ({"email": "not an address"}, "e-mail address is refused"),
        ({"sub": None}, "no issuer or subject"),
        ({"iss": ""}, "no issuer or subject"),
        ({"groups": [1, 2]}, "not a list of group names"),
        ({"groups": {"a": 1}}, "not a list of group names"),
        ({"groups": [f"/g{i}" for i in range(501)]}, "more than 500 groups"),
    ],
)
def test_claims_that_describe_no_one_are_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ProfileRefused, match=says):
        profile_from_claims(claims(**changes), "groups", RoleMap())


# --- the sign-in cookie ----------------------------------------------------------------------
FLOW = Flow(state="s" * 30, nonce="n" * 20, code_verifier="v" * 48, started_at=1_800_000_000)


def test_a_sealed_flow_reads_back_within_its_time() -> None:
    assert unseal(seal(FLOW, KEY), KEY, now=FLOW.started_at + FLOW_SECONDS) == FLOW
    onward = replace(FLOW, then="/requests/PRB-1001")
    assert unseal(seal(onward, KEY), KEY, now=FLOW.started_at).then == "/requests/PRB-1001"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "No sign-in was started"),
        ("", "No sign-in was started"),
        ("no-dot", "not one we issued"),
        ("a.b.c", "not one we issued"),
        ("%%%.%%%", "not one we issued"),
    ],
)
def test_a_missing_or_garbled_cookie_is_refused(value: str | None, says: str) -> None:
    with pytest.raises(SsoRefused) as refused:
        unseal(value, KEY, now=FLOW.started_at)

    assert refused.value.status == 400 and says in refused.value.reason


def test_a_cookie_sealed_with_another_key_or_changed_is_refused() -> None:
    sealed = seal(FLOW, KEY)
    other = seal(replace(FLOW, nonce="m" * 20), KEY)
    spliced = f"{other.partition('.')[0]}.{sealed.partition('.')[2]}"

    for value, key in ((sealed, b"o" * 32), (spliced, KEY)):
        with pytest.raises(SsoRefused, match="not one we issued"):
            unseal(value, key, now=FLOW.started_at)


@pytest.mark.parametrize("offset", [FLOW_SECONDS + 1, -5])
def test_a_cookie_too_old_or_from_the_future_is_refused(offset: int) -> None:
    with pytest.raises(SsoRefused, match="longer than 10 minutes"):
        unseal(seal(FLOW, KEY), KEY, now=FLOW.started_at + offset)


# --- the router, before any provider is asked ------------------------------------------------
def settings(**changes: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": "postgresql://unused",
        "kafka_bootstrap_servers": "unused:9092",
        "portal_url": "http://portal.test",
        "oidc_issuer": f"http://127.0.0.1:{closed_port()}/realms/desk",
        "oidc_client_id": "portal",
        "oidc_client_secret": "secret",
        "oidc_role_map": f"{LEAD}=erp-vendor:team_lead",
    }
    values.update(changes)
    return Settings(**values)


def closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nobody listens there
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def never(request: Request, profile: SsoProfile) -> Response:
    raise AssertionError("signed_in must not be called")


@pytest.mark.parametrize(
    ("changes", "key", "says"),
    [
        ({"oidc_client_secret": ""}, KEY, "needs OIDC_CLIENT_SECRET"),
        ({"oidc_client_id": " ", "oidc_issuer": ""}, KEY, "needs OIDC_ISSUER, OIDC_CLIENT_ID"),
        ({}, b"short", "fewer than 32 bytes"),
        ({"oidc_issuer": "id.example/realms/desk"}, KEY, "is not an http(s) URL"),
        ({"desk_env": "production"}, KEY, "must be https"),
    ],
)
def test_the_router_refuses_settings_it_cannot_work_with(
    changes: dict[str, Any], key: bytes, says: str
) -> None:
    with pytest.raises(SsoConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        sso_router(settings(**changes), never, flow_key=key)


def test_the_router_refuses_a_malformed_role_map_at_start_up() -> None:
    with pytest.raises(RoleMapError, match="entry 1"):
        sso_router(settings(oidc_role_map="/desk/lead"), never, flow_key=KEY)
    with pytest.raises(RoleMapError, match="no desk 'nowhere'"):
        sso_router(
            settings(oidc_role_map="/x=nowhere:agent"), never, flow_key=KEY, grantable=GRANTABLE
        )


def client(**changes: Any) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(sso_router(settings(**changes), never, flow_key=KEY))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal.test")


async def test_a_provider_out_of_reach_is_a_502_not_a_500() -> None:
    async with client() as c:
        answer = await c.get("/sso/login", headers={"Accept": "application/json"})

    assert answer.status_code == 502
    assert answer.json() == {"detail": "The identity provider is out of reach."}
    assert FLOW_COOKIE not in answer.cookies


async def test_a_callback_without_a_sign_in_in_progress_is_a_400() -> None:
    async with client() as c:
        answer = await c.get("/sso/callback", params={"code": "c", "state": "s"})

    assert answer.status_code == 400
    assert "No sign-in was started" in answer.json()["detail"]
    assert answer.headers["cache-control"] == "no-store"


async def test_a_browser_reads_the_refusal_as_a_page_its_reason_escaped() -> None:
    async with client() as c:
        answer = await c.get(
            "/sso/callback",
            params={"error": "<script>x</script>", "state": "s"},
            headers={"Accept": "text/html,application/xhtml+xml"},
        )

    assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;x&lt;/script&gt;" in answer.text and "<script>" not in answer.text
    assert "href='/sso/login'" in answer.text


async def test_an_oversized_parameter_is_a_400() -> None:
    async with client() as c:
        answer = await c.get("/sso/callback", params={"error": "e" * 5000, "state": "s"})

    assert answer.status_code == 400 and "longer than we accept" in answer.json()["detail"]
