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
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests/support"), str(ROOT / "deploy/local"), str(ROOT / "bench")]

from e2e_support import isolated_system  # noqa: E402
from identity_support import bearer  # noqa: E402
from page_timing import signed_in, time_pages  # noqa: E402
from system import System  # noqa: E402

ANNE = "anne@acme.example"
LIMITS = {f"REQUESTS_{kind}_HOURLY_LIMIT": "1000000" for kind in ("SUBMITTER", "DOMAIN", "DESK")}
WORDS = ("export", "facture", "licence", "connexion", "impression", "rapport", "mise à jour")


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
        await signed_in(portal, ANNE, system.demo_password)
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
        await time_pages(portal, pages, baselines, rounds)


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
