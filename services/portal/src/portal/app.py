"""The portal's HTTP app: pages, JSON API, gateway to the services, single sign-on (when an
identity provider is configured), behind the same edge as every service's API."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
from fastapi import APIRouter, FastAPI, Request, Response

from desk_platform.blobs import BlobStore, FolderBlobStore
from desk_platform.http import service_app
from desk_platform.identity import Signer, SigningKey
from desk_platform.settings import Settings
from desk_platform.tracing import carry_trace
from desk_policies.model import DeskPolicy
from portal.adapters.admin_pages import admin_pages_router
from portal.adapters.agent_request import agent_request_router
from portal.adapters.api import api_router
from portal.adapters.assets import serve_assets
from portal.adapters.audit_pages import audit_pages_router
from portal.adapters.canned_pages import canned_pages_router
from portal.adapters.console import Console, console_router
from portal.adapters.dashboard import dashboard_router
from portal.adapters.new_request import new_request_router
from portal.adapters.queues import queues_router
from portal.adapters.request_pages import request_pages_router
from portal.adapters.search import search_router
from portal.adapters.services import Services
from portal.adapters.sso import sso_router
from portal.adapters.survey import survey_router
from portal.adapters.web import Portal, Web, local_path, web_router
from portal.application import people
from portal.domain.requests_new import DEFAULT_UPLOADS, UploadLimits
from portal.domain.sso import SsoProfile, grantable_roles, parse_role_map


def create_app(
    pool: asyncpg.Pool,
    policies: Mapping[str, DeskPolicy],
    clock: Callable[[], datetime],
    keys: Sequence[SigningKey],
    send: people.Send,
    *,
    services: Mapping[str, str],
    secure_cookies: bool = False,
    sso: Callable[[Web], APIRouter] | None = None,
    client: httpx.AsyncClient | None = None,
    blobs: BlobStore | None = None,
    uploads: UploadLimits = DEFAULT_UPLOADS,
) -> FastAPI:
    """The portal's app; `services` maps intake, workflow and sla to their URLs; `sso` makes
    the single sign-on routes, which open sessions through the pages' `Web`; `blobs` keeps
    attachments (the folder `.state/blobs` when None), `uploads` bounds them."""
    store = blobs if blobs is not None else FolderBlobStore(Path(".state/blobs"))
    portal = Portal(
        pool, policies, clock, send, secure_cookies, store, sso=sso is not None, uploads=uploads
    )
    signer = Signer(list(keys))
    http = client or httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=5.0), event_hooks={"request": [carry_trace]}
    )
    web = Web(portal, Services(services, signer, http, clock))
    app = service_app("portal", pool)
    serve_assets(app)
    app.include_router(web_router(web))
    app.include_router(survey_router(web))
    app.include_router(new_request_router(web))
    if sso is not None:
        app.include_router(sso(web))
    app.include_router(api_router(portal, signer, lambda: list(keys), services, http))
    app.include_router(request_pages_router(web))  # after /requests/new and its kin
    console = Console(web)
    app.include_router(console_router(console))
    app.include_router(dashboard_router(console))
    app.include_router(agent_request_router(console))
    app.include_router(audit_pages_router(console))
    app.include_router(admin_pages_router(console))
    app.include_router(canned_pages_router(console))
    app.include_router(queues_router(console))
    app.include_router(search_router(console))
    return app


def single_sign_on(
    settings: Settings,
    policies: Mapping[str, DeskPolicy],
    clock: Callable[[], datetime],
    keys: Sequence[SigningKey],
    transport: httpx.AsyncBaseTransport | None = None,
) -> Callable[[Web], APIRouter]:
    """The single sign-on routes for staff: a person the identity provider vouches for gets
    their account (made on first sign-in) with the desk roles their groups map to, and a
    session. The sign-in cookie's key derives from the signing key, which every replica of
    the portal shares."""
    flow_key = hmac.new(keys[0].pem(), b"desk-portal single sign-on flow", "sha256").digest()
    grantable = grantable_roles(policies.values())
    managed: dict[str, frozenset[str]] = {}  # the roles the map grants: SSO revokes only those
    for pairs in parse_role_map(settings.oidc_role_map, grantable).grants.values():
        for desk, role in pairs:
            managed[desk] = managed.get(desk, frozenset()) | {role}

    def routes(web: Web) -> APIRouter:
        async def signed_in(request: Request, profile: SsoProfile) -> Response:
            visit = await web.visit(request)
            async with web.portal.pool.acquire() as conn:
                person = await people.sso_sign_in(
                    conn, profile.email, profile.name, profile.desk_roles, clock(), managed
                )
            if person is None:
                return web.page(visit, "notice.html", 403, error="deactivated", title="sign_in")
            then = local_path(getattr(request.state, "then", "/"))
            return await web.signed_in(visit, person, "sso", then)

        return sso_router(
            settings, signed_in, flow_key=flow_key, grantable=grantable, transport=transport
        )

    return routes
