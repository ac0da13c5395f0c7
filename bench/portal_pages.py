"""Benchmark (not a test): the requester portal's page times with many requests in one
organisation, beside a same-run baseline, printed as ratios.

    uv run python bench/portal_pages.py [--requests 10000] [--rounds 200]

It starts the whole system as `scripts/run.sh` does (every service a process, on a fresh
database and fresh topics of the servers in `.state/infra.env`), files `--requests` requests
for the organisation ACME through intake's API (8 at a time, flood limits raised), waits until
workflow lists them all, signs in to the portal as Anne Martin (a customer of ACME) and times
each page `--rounds` times, one after the other, from the request sent to the last byte read:

- the home page, a new request's form, the organisation's requests (first page, a page deep in
  the list, a search by words), her own requests, one request's page;
- baselines: the portal's `/health` (the same edge, no service call) and workflow's
  `GET /requests` as Anne (the call the list page makes), each timed the same way.

It prints p50 / p95 / p99 / max in milliseconds for each page and each page's p95 over each
baseline's p95. The goal: every page's p95 at most 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests/support"), str(ROOT / "deploy/local")]

from e2e_support import isolated_system  # noqa: E402
from identity_support import bearer  # noqa: E402
from system import System  # noqa: E402

ANNE = "anne@acme.example"
LIMITS = {f"REQUESTS_{kind}_HOURLY_LIMIT": "1000000" for kind in ("SUBMITTER", "DOMAIN", "DESK")}
WORDS = ("export", "facture", "licence", "connexion", "impression", "rapport", "mise à jour")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def request_body(i: int) -> dict[str, object]:
    return {
        "policy_id": "erp-vendor",
        "request_type": "support",
        "priority": ("low", "medium", "high")[i % 3],
        "subject": f"{WORDS[i % len(WORDS)]} {i}: le traitement échoue",
        "description": f"Demande de charge numéro {i}.",
        "organisation_id": "acme",
        "requester": ANNE,
        "language": "fr",
    }


async def file_requests(system: System, count: int) -> str:
    """`count` requests for ACME through intake (8 at a time); the key of the last one."""
    headers = bearer(ANNE, audience="intake", signer=system.signer(), organisation="acme")
    keys: list[str] = []
    async with httpx.AsyncClient(base_url=system.url("intake"), headers=headers) as intake:
        queue = iter(range(count))

        async def worker() -> None:
            for i in queue:
                answer = await intake.post(
                    "/requests", json=request_body(i), headers={"Idempotency-Key": f"b-{i}"}
                )
                answer.raise_for_status()
                keys.append(answer.json()["key"])

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(8)))
        print(f"filed {count} requests in {time.perf_counter() - began:.0f} s", flush=True)
    return keys[-1]


async def wait_listed(system: System, count: int) -> None:
    """Until workflow lists `count` requests of ACME."""
    headers = bearer(ANNE, audience="workflow", signer=system.signer(), organisation="acme")
    async with httpx.AsyncClient(base_url=system.url("workflow"), headers=headers) as workflow:
        while True:
            answer = await workflow.get(
                "/requests", params={"organisation_id": "acme", "state": "all", "limit": 1}
            )
            if answer.status_code == 200 and int(answer.headers.get("x-total-count", 0)) >= count:
                return
            await asyncio.sleep(1)


async def signed_in(portal: httpx.AsyncClient, password: str) -> None:
    form = await portal.get("/sign-in")
    csrf = CSRF.search(form.text)
    assert csrf, "no CSRF token on the sign-in page"
    answer = await portal.post(
        "/sign-in", data={"csrf": csrf.group(1), "email": ANNE, "password": password}
    )
    assert answer.status_code in (200, 303), answer.status_code


async def timed(call: Callable[[], Awaitable[httpx.Response]], rounds: int) -> list[float]:
    """Milliseconds of each of `rounds` calls (each must answer 200)."""
    for _ in range(5):  # warm-up, untimed
        await call()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        answer = await call()
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, (answer.request.url, answer.status_code)
    return times


def quantile(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(q * 100) - 1]


async def measure(system: System, key: str, rounds: int) -> None:
    workflow_headers = bearer(
        ANNE, audience="workflow", signer=system.signer(), organisation="acme"
    )
    async with (
        httpx.AsyncClient(base_url=system.url("portal"), timeout=30) as portal,
        httpx.AsyncClient(
            base_url=system.url("workflow"), headers=workflow_headers, timeout=30
        ) as workflow,
    ):
        await signed_in(portal, system.demo_password)
        pages = {
            "home": "/",
            "new request": "/requests/new?desk=erp-vendor",
            "organisation's requests": "/requests?tab=organisation&state=all",
            "organisation's, page 200": "/requests?tab=organisation&state=all&page=200",
            "search by words": "/requests?tab=organisation&state=all&q=facture+traitement",
            "search by key": f"/requests?tab=organisation&state=all&q={key}",
            "my requests": "/requests",
            "a request": f"/requests/{key}",
        }
        baselines = {
            "portal /health": lambda: portal.get("/health"),
            "workflow GET /requests": lambda: workflow.get(
                "/requests", params={"organisation_id": "acme", "state": "all", "limit": 25}
            ),
        }
        results: dict[str, list[float]] = {}
        for name, call in baselines.items():
            results[name] = await timed(call, rounds)
        for name, path in pages.items():
            results[name] = await timed(lambda path=path: portal.get(path), rounds)  # type: ignore[misc]
    base = {name: quantile(results[name], 0.95) for name in baselines}
    print(f"\n{'page':<28}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}   p95 / baseline p95")
    for name, times in results.items():
        p95 = quantile(times, 0.95)
        ratios = (
            ""
            if name in baselines
            else "   " + ", ".join(f"{p95 / b:.1f}x {label}" for label, b in base.items())
        )
        print(
            f"{name:<28}{statistics.median(times):>8.1f}{p95:>8.1f}"
            f"{quantile(times, 0.99):>8.1f}{max(times):>8.1f}{ratios}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".state/infra.env").read_text().split()
        if "=" in line
    )
    state = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    name = f"bench_portal_{uuid.uuid4().hex[:6]}"
    with isolated_system(
        env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"], state, name, environment=LIMITS
    ) as system:
        key = asyncio.run(file_requests(system, args.requests))
        began = time.perf_counter()
        asyncio.run(wait_listed(system, args.requests))
        print(f"workflow listed them all {time.perf_counter() - began:.0f} s later", flush=True)
        asyncio.run(measure(system, key, args.rounds))


if __name__ == "__main__":
    main()
