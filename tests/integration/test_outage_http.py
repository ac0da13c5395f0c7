"""While PostgreSQL is out of reach, every HTTP service answers 503 with `Retry-After` (not 500),
and serves again as soon as the server is back: intake, workflow and sla, each on a pool that
goes through a proxy the test cuts (the real server stays up for everyone else)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest
from desk_servers import intake_app, sla_app, submission, workflow_app
from fastapi import FastAPI
from identity_support import bearer
from service_support import service_store
from tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

REQUEST = submission()
ANNE = bearer("anne@acme.example", audience="intake", organisation="acme")
AGENT_ROLES = {"saas-desk": ["agent"]}


async def _post_request(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "/requests", json=REQUEST, headers={"Idempotency-Key": str(uuid.uuid4()), **ANNE}
    )


async def _get_request(client: httpx.AsyncClient) -> httpx.Response:
    agent = bearer("paul@desk.example", audience="workflow", roles=AGENT_ROLES)
    return await client.get("/requests/SPT-1001", headers=agent)


async def _get_board(client: httpx.AsyncClient) -> httpx.Response:
    agent = bearer("paul@desk.example", audience="sla", roles=AGENT_ROLES)
    return await client.get("/board", params={"policy_id": "saas-desk"}, headers=agent)


@pytest.mark.parametrize(
    ("service", "make_app", "call", "served"),
    [
        ("intake", intake_app, _post_request, {201}),
        ("workflow", workflow_app, _get_request, {404}),
        ("sla", sla_app, _get_board, {200, 403}),
    ],
)
async def test_a_service_says_503_with_retry_after_while_postgres_is_away(
    database_url: str,
    service: str,
    make_app: Callable[[asyncpg.Pool], Awaitable[FastAPI]],
    call: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    served: set[int],
) -> None:
    proxy = await TcpProxy.to(database_url)
    try:
        async with service_store(proxy.url(database_url), service) as pool:
            app = await make_app(pool)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await call(client)).status_code in served
                await proxy.cut()
                for _ in range(3):  # connections lost, then new ones refused
                    away = await call(client)
                    assert away.status_code == 503, away.text
                    assert away.headers["Retry-After"] == "2"
                    assert "retry" in away.json()["detail"]
                await proxy.restore()
                back = None
                for _ in range(5):  # the pool replaces the connections it lost
                    back = await call(client)
                    if back.status_code != 503:
                        break
                assert back is not None and back.status_code in served, back and back.text
    finally:
        await proxy.close()
