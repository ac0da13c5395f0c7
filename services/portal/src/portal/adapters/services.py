"""The portal as a client of intake, workflow and sla: every call carries a token the portal
signs for that service alone, naming the person the page is for (`desk_platform.identity`).
The portal keeps no copy of requests: each page asks the services for what it shows.

An answer the page can explain (4xx) comes back as it is; a service that does not answer, or
answers 5xx, raises `Unavailable`, which the pages show as "try again in a moment"."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog

from desk_contracts.identity import Identity
from desk_platform.identity import Signer

log = structlog.get_logger(__name__)
DESKS_FOR_SECONDS = 10.0  # how long the desks told to one person are kept in memory


class Unavailable(Exception):
    """A service did not answer, or failed (5xx): nothing the person can fix."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service}: {detail}")
        self.service = service


@dataclass(frozen=True)
class Services:
    """Where intake, workflow and sla answer, and how the portal calls them."""

    urls: Mapping[str, str]
    signer: Signer
    client: httpx.AsyncClient
    clock: Callable[[], datetime]
    _desks: dict[str, tuple[float, list[dict[str, Any]]]] = field(default_factory=dict)

    async def call(
        self,
        identity: Identity,
        service: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """`method path` on `service` as `identity`; 4xx answers returned, 5xx raised."""
        if service not in self.urls:  # a portal run without it (e.g. identity pages only)
            raise Unavailable(service, "no address configured")
        token = self.signer.token(identity, service, self.clock())
        sent = {"authorization": f"Bearer {token}", **(headers or {})}
        return await self._send(service, method, path, params, json, sent)

    async def without_identity(
        self, service: str, method: str, path: str, *, json: Any = None
    ) -> httpx.Response:
        """`method path` on `service` carrying no identity: for what a signed link authorises
        by itself (the satisfaction survey); 4xx answers returned, 5xx raised."""
        return await self._send(service, method, path, None, json, {})

    async def _send(
        self,
        service: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        try:
            answer = await self.client.request(
                method,
                f"{self.urls[service]}{path}",
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=json,
                headers=headers,
            )
        except httpx.HTTPError as error:
            log.warning("service_unavailable", service=service, error=type(error).__name__)
            raise Unavailable(service, "no answer") from None
        if answer.status_code >= 500:
            log.warning("service_failed", service=service, status=answer.status_code, path=path)
            raise Unavailable(service, f"answered {answer.status_code}")
        return answer

    async def read(
        self, identity: Identity, service: str, path: str, **params: Any
    ) -> httpx.Response:
        """`GET path` on `service` as `identity` (see `call`)."""
        return await self.call(identity, service, "GET", path, params=params)

    async def desks(self, identity: Identity) -> list[dict[str, Any]]:
        """The desks as workflow tells them to `identity` (`GET /desks`; none when it refuses),
        kept a few seconds per person: every page names statuses and roles by them."""
        now = time.monotonic()
        kept = self._desks.get(identity.subject)
        if kept and kept[0] > now:
            return kept[1]
        answer = await self.read(identity, "workflow", "/desks")
        told = list(answer.json()) if answer.status_code == 200 else []
        for subject in [s for s, (until, _) in self._desks.items() if until <= now]:
            del self._desks[subject]  # kept for a few seconds only: never a growing map
        self._desks[identity.subject] = (now + DESKS_FOR_SECONDS, told)
        return told
