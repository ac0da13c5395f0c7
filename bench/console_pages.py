"""Benchmark (not a test): the agents' console's queue and search page times with 100,000
requests in the read models and 10,000 of them open, beside same-run baselines, as ratios; and
the SQL plans the services use for them.

    uv run python bench/console_pages.py [--requests 100000] [--open 10000] [--rounds 200]

It starts the whole system as `scripts/run.sh` does (every service a process, on a fresh
database and fresh topics of the servers in `.state/infra.env`) and files a few real requests
through intake, then adds `--requests` synthetic ones straight into the two read models the
console's lists read: workflow's `tickets` (subject, description and comments, so the generated
full-text column and its GIN index hold real French and English words) and sla's `clock_board`
(clocks due from two days ago to five days ahead, some paused, some stopped), spread over the
three desks and 200 organisations; `--open` of them are open, the others closed. Filing 100,000
requests through intake would take the better part of an hour on this machine and the lists
read nothing else: the event streams do not matter to these pages. It signs in to the portal as
Léa (team lead of every desk) and times each page `--rounds` times, one after the other, from
the request sent to the last byte read:

- queues of erp-vendor: the default one, "new", "mine", "breached", page 40 of the
  unassigned; search: words of a comment, words with a desk and status filter, a key;
- baselines: the portal's `/health` (the same edge, no service call), sla's `GET /queue` and
  workflow's `GET /search` as Léa (the calls the pages make), timed the same way.

It prints p50 / p95 / p99 / max in milliseconds for each page and each page's p95 over each
baseline's p95, then `EXPLAIN (ANALYZE, BUFFERS)` of the queue and search statements. The goal:
every queue and search page's p95 at most 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests/support"), str(ROOT / "deploy/local"), str(ROOT / "bench")]

from e2e_support import isolated_system  # noqa: E402
from identity_support import bearer  # noqa: E402
from page_timing import signed_in, time_pages  # noqa: E402
from system import System  # noqa: E402

LEA = "lea@desk.example"
STAFF = {"erp-vendor": ["team_lead"], "cloud-partner": ["team_lead"], "saas-desk": ["supervisor"]}
# each desk's open statuses with their category and expected actor (from the shipped policies)
OPEN = {
    "erp-vendor": (("open", "open", "front_desk"), ("qualified", "open", "daily"),
                   ("in_progress", "open", "service_desk"),
                   ("waiting_triage", "waiting", "product_expert"),
                   ("waiting_customer", "waiting", "requester")),
    "cloud-partner": (("submitted", "open", "agent"), ("in_progress", "open", "agent"),
                      ("waiting_third_party", "waiting", "third_party")),
    "saas-desk": (("open", "open", "agent"), ("assigned", "open", "agent"),
                  ("answered", "waiting", "requester")),
}  # fmt: skip
PREFIX = {"erp-vendor": "BEN", "cloud-partner": "BCP", "saas-desk": "BSD"}

SEED_TICKETS = """
WITH n AS (
    SELECT i, (ARRAY['erp-vendor','erp-vendor','erp-vendor','cloud-partner','saas-desk'])[1 + i % 5]
               AS desk
    FROM generate_series(1, $1::int) AS i
)
INSERT INTO workflow.tickets (ticket_id, key, policy_id, organisation_id, requester_id, subject,
    status, category, expected_actor, priority, assignee_id, version, created_at, updated_at,
    created_by, involved, priority_rank, description, comments)
SELECT 'bench-' || i, $3::jsonb->>desk || '-' || (100000 + i), desk, 'org-' || (i % 200),
    'person' || (i % 5000) || '@org-' || (i % 200) || '.example',
    (ARRAY['Export', 'Facture', 'Licence', 'Connexion', 'Impression', 'Rapport',
           'Mise à jour'])[1 + i % 7] || ' ' || i || ' : le traitement échoue',
    CASE WHEN i % ($1::int / $2::int) = 0 THEN s.status ELSE 'closed' END,
    CASE WHEN i % ($1::int / $2::int) = 0 THEN s.category ELSE 'closed' END,
    CASE WHEN i % ($1::int / $2::int) = 0 THEN s.actor END,
    (ARRAY['low','medium','high','critical'])[1 + i % 4],
    CASE WHEN i % 3 = 0 THEN 'paul@desk.example' WHEN i % 3 = 1 THEN 'lea@desk.example' END,
    3, now() - (i % 400) * interval '1 day', now() - (i % 600) * interval '1 minute',
    'person' || (i % 5000) || '@org-' || (i % 200) || '.example', '{}', 1 + i % 4,
    'Depuis la mise à jour ' || (i % 97) || ', le rapport mensuel de la société ' || (i % 200)
        || ' ne se génère plus. The monthly export fails with error E' || (i % 1000) || '.',
    'Nous analysons les journaux du serveur ' || (i % 50) || '. Could you send the logs of '
        || 'the night batch? Le correctif ' || (i % 300) || ' est prévu.'
FROM n, LATERAL (
    SELECT (x->>0) AS status, (x->>1) AS category, (x->>2) AS actor
    FROM jsonb_array_elements($4::jsonb->desk) WITH ORDINALITY AS e(x, k)
    WHERE k = 1 + (i / 7) % jsonb_array_length($4::jsonb->desk)
) AS s
"""

SEED_BOARD = """
INSERT INTO sla.clock_board (ticket_id, key, policy_id, priority, status, response_state,
    response_due, response_reason, resolution_state, resolution_due, resolution_reason, next_due,
    version, organisation_id, subject, category, expected_actor, assignee_id, requester_id,
    created_at, updated_at, response_warning, resolution_warning, next_warning, remaining_s)
SELECT ticket_id, key, policy_id, priority, status,
    CASE WHEN category = 'closed' THEN 'stopped' ELSE 'stopped' END,
    created_at + interval '1 hour', 'stopped: answered',
    CASE WHEN category = 'closed' THEN 'stopped' WHEN category = 'waiting' THEN 'paused'
         ELSE 'running' END,
    CASE WHEN category = 'open' THEN now() + ((hashtext(ticket_id) % 7200) * interval '1 minute')
         END,
    CASE WHEN category = 'closed' THEN 'stopped: closed'
         WHEN category = 'waiting' THEN 'paused: waiting' ELSE 'running' END,
    CASE WHEN category = 'open' THEN now() + ((hashtext(ticket_id) % 7200) * interval '1 minute')
         END,
    version, organisation_id, subject, category, expected_actor, assignee_id, requester_id,
    created_at, updated_at, NULL,
    CASE WHEN category = 'open'
         THEN now() + ((hashtext(ticket_id) % 7200) * interval '1 minute') - interval '2 hours'
         END,
    CASE WHEN category = 'open'
         THEN now() + ((hashtext(ticket_id) % 7200) * interval '1 minute') - interval '2 hours'
         END,
    (hashtext(ticket_id) % 7200) * 60
FROM workflow.tickets WHERE ticket_id LIKE 'bench-%'
"""


async def seed(database_url: str, requests: int, open_requests: int) -> None:
    """`requests` synthetic requests in workflow's and sla's read models (see module)."""
    import json

    conn = await asyncpg.connect(database_url)
    try:
        began = time.perf_counter()
        await conn.execute(
            SEED_TICKETS, requests, open_requests, json.dumps(PREFIX), json.dumps(OPEN)
        )
        await conn.execute(SEED_BOARD)
        await conn.execute("ANALYZE workflow.tickets")
        await conn.execute("ANALYZE sla.clock_board")
        counts = await conn.fetchrow(
            """SELECT count(*) AS all, count(*) FILTER (WHERE category <> 'closed') AS open
               FROM workflow.tickets"""
        )
        print(
            f"seeded {counts['all']} requests ({counts['open']} open) "
            f"in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
    finally:
        await conn.close()


async def measure(system: System, rounds: int) -> None:
    sign = system.signer()
    sla_headers = bearer(LEA, audience="sla", roles=STAFF, signer=sign)
    workflow_headers = bearer(LEA, audience="workflow", roles=STAFF, signer=sign)
    async with (
        httpx.AsyncClient(base_url=system.url("portal"), timeout=30) as portal,
        httpx.AsyncClient(base_url=system.url("sla"), headers=sla_headers, timeout=30) as sla,
        httpx.AsyncClient(
            base_url=system.url("workflow"), headers=workflow_headers, timeout=30
        ) as workflow,
    ):
        await signed_in(portal, LEA, system.demo_password)
        pages = {
            "queue: default": "/console/queues/erp-vendor",
            "queue: new": "/console/queues/erp-vendor?queue=new",
            "queue: mine": "/console/queues/erp-vendor?queue=mine",
            "queue: breached": "/console/queues/erp-vendor?queue=breached",
            "queue: unassigned, page 40": "/console/queues/erp-vendor?queue=unassigned&page=40",
            "search: words": "/console/search?q=journaux+correctif",
            "search: words+filters": (
                "/console/search?q=rapport+mensuel&desk=erp-vendor&status=in_progress"
            ),
            "search: a key": "/console/search?q=BEN-100500",
        }
        baselines = {
            "portal /health": lambda: portal.get("/health"),
            "sla GET /queue": lambda: sla.get(
                "/queue", params={"policy_id": "erp-vendor", "limit": 25}
            ),
            "workflow GET /search": lambda: workflow.get(
                "/search", params={"q": "journaux correctif", "limit": 25}
            ),
        }
        await time_pages(portal, pages, baselines, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".state/infra.env").read_text().split()
        if "=" in line
    )
    state = Path(tempfile.mkdtemp(prefix="bench-console-"))
    name = f"bench_console_{uuid.uuid4().hex[:6]}"
    with isolated_system(
        env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"], state, name
    ) as system:
        asyncio.run(seed(system.database_url, args.requests, args.open))
        asyncio.run(measure(system, args.rounds))
        asyncio.run(plans(system.database_url))


async def plans(database_url: str) -> None:
    """`EXPLAIN (ANALYZE, BUFFERS)` of the statements behind the pages: sla's queue (its
    ordering and category filter from `sla.adapters.queue_api`) and workflow's searches (their
    SQL from `workflow.adapters.search_api.search_sql`, as the route builds it)."""
    from sla.adapters.queue_api import CATEGORIES, ORDER
    from workflow.adapters.search_api import Criteria, search_sql

    desks = list(PREFIX)
    queue = f"""SELECT * FROM sla.clock_board WHERE policy_id = $1 AND {CATEGORIES["active"]}
                ORDER BY {ORDER} LIMIT 25 OFFSET $2"""
    statements: dict[str, tuple[str, list[object]]] = {
        "queue: active, first page": (queue, ["erp-vendor", 0]),
        "queue: active, page 40": (queue, ["erp-vendor", 975]),
        "queue: expected actor": (
            f"""SELECT * FROM sla.clock_board WHERE policy_id = $1 AND {CATEGORIES["active"]}
                AND expected_actor = $2 ORDER BY {ORDER} LIMIT 25""",
            ["erp-vendor", "front_desk"],
        ),
    }
    for name, criteria in {
        "search: words": Criteria(desks, "journaux correctif"),
        "search: words + desk + status": Criteria(
            desks, "rapport mensuel", policy_id="erp-vendor", status="in_progress"
        ),
        "search: a key": Criteria(desks, "BEN-100500"),
    }.items():
        sql = search_sql(criteria)
        statements[name] = (sql.page, [*sql.args, 25, 0])
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "workflow"})
    try:
        for name, (statement, args) in statements.items():
            async with conn.transaction():
                await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *args)
            print(f"\n-- {name}")
            for line in plan:
                print(f"   {line[0]}")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
