"""Every HTTP answer counted by method, route template and status (desk_platform.http_metrics)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, HTTPException

from desk_platform.edge import guard
from desk_platform.http_metrics import HttpMetrics
from desk_platform.metrics import Metrics


def app_with(metrics: Metrics) -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        if thing == "missing":
            raise HTTPException(404, "no such thing")
        return {"thing": thing}

    guard(app)  # the edge, as every service has it: its refusals count too
    app.add_middleware(HttpMetrics, metrics=metrics)
    return app


def counted(metrics: Metrics) -> dict[str, float]:
    """The request counters, by their labels as exposed."""
    lines = metrics.render().decode().splitlines()
    return {
        line.split(" ")[0].removeprefix("desk_http_requests_total"): float(line.split(" ")[1])
        for line in lines
        if line.startswith("desk_http_requests_total{")
    }


async def test_answers_are_counted_by_route_template_never_by_what_the_path_holds() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=app_with(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/things/a", "/things/b", "/things/missing", "/nowhere/1", "/nowhere/2"):
            await client.get(path)
        await client.post("/things/a")  # no such method there
        await client.request("BREW", "/things/a")
    assert counted(metrics) == {
        '{method="GET",route="/things/{thing}",status="200"}': 2.0,
        '{method="GET",route="/things/{thing}",status="404"}': 1.0,
        '{method="GET",route="(unmatched)",status="404"}': 2.0,
        '{method="POST",route="/things/{thing}",status="405"}': 1.0,
        '{method="other",route="/things/{thing}",status="405"}': 1.0,
    }
    timed = metrics.render().decode()
    assert 'desk_http_request_duration_seconds_count{method="GET",route="/things/{thing}"} 3.0' in (
        timed
    )
