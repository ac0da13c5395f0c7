"""Every answer of the portal carries the headers that keep a browser strict (the CSP, no
sniffing, no framing, the referrer policy), unless a route sets one of them itself: pages,
refusals and the edge's own answers alike."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI, HTTPException, Response

from desk_platform.edge import guard
from portal.adapters.assets import SECURITY_HEADERS, serve_assets


def app(node_modules: Path) -> FastAPI:
    made = FastAPI(max_body_size=1024)
    guard(made)
    serve_assets(made, node_modules)

    @made.get("/page")
    async def page() -> Response:
        return Response("<p>hello</p>", media_type="text/html")

    @made.get("/framed")
    async def framed() -> Response:
        return Response("ok", headers={"X-Frame-Options": "SAMEORIGIN"})

    @made.get("/missing")
    async def missing() -> Response:
        raise HTTPException(404, "no such page")

    @made.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return body

    return made


async def test_every_answer_carries_the_security_headers(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=app(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal.test") as client:
        answers = [
            await client.get("/page"),
            await client.get("/missing"),
            await client.get("/static/portal.css"),
            await client.post(
                "/echo", content=b"{not json", headers={"content-type": "application/json"}
            ),
        ]
        framed = await client.get("/framed")
    assert [a.status_code for a in answers] == [200, 404, 200, 422]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get_list(name) == [value], (answer.request.url, name)
    assert framed.headers.get_list("X-Frame-Options") == ["SAMEORIGIN"]  # the route's own
    assert framed.headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
