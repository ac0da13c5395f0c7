"""The portal's HTTP app: pages, JSON API, gateway to the services, single sign-on (when an
identity provider is configured), behind the same edge as every service's API."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import asyncpg
import httpx
from fastapi import APIRouter, FastAPI

from desk_platform.http import service_app
from desk_platform.identity import Signer, SigningKey
from desk_policies.model import DeskPolicy
from portal.adapters.api import api_router
from portal.adapters.web import Portal, Web, web_router
from portal.application import people


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
) -> FastAPI:
    """The portal's app; `services` maps intake, workflow and sla to their URLs; `sso` makes
    the single sign-on routes, which open sessions through the pages' `Web`."""
    portal = Portal(pool, policies, clock, send, secure_cookies, sso=sso is not None)
    web = Web(portal)
    app = service_app("portal", pool)
    app.include_router(web_router(web))
    if sso is not None:
        app.include_router(sso(web))
    signer = Signer(list(keys))
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
    app.include_router(api_router(portal, signer, lambda: list(keys), services, http))
    return app
