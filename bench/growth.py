"""Benchmark (not a test): what a store holding 1,000,000 requests costs its appends, its
commands and its lists, beside an empty store measured in the same run, as ratios against the
goal (full / empty at most 1.20).

    uv run python bench/growth.py [--requests 1000000] [--samples 200] [--keep | --reuse ID]

Against the PostgreSQL server of `.state/infra.env` (DATABASE_URL), four fresh schemas
(`growth_<store>_<empty|full>_<id>`), migrated as the services' (the event store's migrations,
then workflow's or intake's):

1. fill: both workflow stores get the same working set, the `--working` (2,500) newest
   requests, all open (the desk's backlog, which does not grow with its history), of the eight
   subjects, Anne's (`anne@acme.example`, acme) and taken by Paul (a `cloud-partner` agent); the
   full one holds `--requests` older ones before them (`bench/histories.py`: `cloud-partner`
   histories decided and folded by the domain code, copied with their own ids, keys and
   people: 1,000 organisations, 10 requesters each, 50 agents, eight subjects; resolved and
   confirmed, 8 events each, but for the newest `--open` (none by default), open at every
   stage; opened over the year before). Their events are streamed with COPY, and the rows of
   workflow's read model that its projection writes for them (`view_row`) too: the read
   model's search vector is computed by the server as for the projection's rows. Intake's full
   store holds the `TicketCreated` of every request and its idempotency key. Then VACUUM
   ANALYZE, as autovacuum leaves a store that has grown.
2. measures, `--samples` of each, the empty and the full store in turn (one sample of each,
   then the next), with the services' own code:
   a. appends: a new request, as intake submits it (`intake.application.submit.submit`, with an
      `Idempotency-Key`, through its group commit) and as workflow opens its stream
      (`open_stream`: the append and the read model's row); an event appended to an existing
      stream (`desk_eventstore.store.append`, at its version);
   b. commands on the working set's requests, in one transaction as the HTTP API runs them:
      load, decide, append and the read model's row (`load` and `execute`): a comment, an
      assignment;
   c. lists, through workflow's HTTP app in the process (token checked, rows as the reader sees
      them): the console's search as Paul (his desk's open requests, first page and page 40;
      those assigned to him; words of every request, with snippets; a word of one subject in
      eight among the open ones) and the portal's lists as Anne (her own requests, her
      organisation's open ones, first page and page 40, a word of their subjects) and a desk's
      open requests by `GET /requests?policy_id=` (first page, page 40).

It prints p50 / p95 / p99 in milliseconds for each store and full / empty at each, marked
`over` past 1.20 (judged at p50 and p95: the p99 of a few hundred samples on a shared machine
is noise). The schemas are dropped at the end (`--keep` keeps them; `--reuse ID` measures kept
ones again, their new migrations applied first, and drops them unless `--keep` is given).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import logging
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests/support")]

from histories import (  # noqa: E402
    AGENT_ID,
    COMMANDS,
    POLICIES,
    REQUESTER,
    Request,
    Who,
    copied,
    copy_log,
    copy_tickets,
    history,
    opening,
)
from identity_support import bearer, verifier  # noqa: E402
from notify import infra_env  # noqa: E402

from desk_contracts.tickets import Channel  # noqa: E402
from desk_eventstore.db import open_store  # noqa: E402
from desk_eventstore.group_commit import GroupCommit  # noqa: E402
from desk_eventstore.migrate import migrations_in  # noqa: E402
from desk_eventstore.records import NewEvent  # noqa: E402
from desk_eventstore.store import append, stream_version  # noqa: E402
from desk_policies.directory import load_directory  # noqa: E402
from intake.application.submit import Accepted, submit  # noqa: E402
from intake.domain.submission import Submission, Submitter  # noqa: E402
from workflow.adapters.http import create_app  # noqa: E402
from workflow.application.tickets import Executed, execute, load, open_stream  # noqa: E402
from workflow.domain.commands import Actor, AddComment, Assign, Command  # noqa: E402
from workflow.domain.decide import decide  # noqa: E402
from workflow.domain.rules import Rejection  # noqa: E402

GOAL = 1.20
SUBJECTS = [  # (subject, description): the full store's eight, the working set's the first
    ("Jira est très lent depuis la mise à jour",
     "Depuis la mise à jour de samedi, chaque page met dix secondes à s'afficher."),
    ("Facture de mars en double",
     "Nous avons reçu deux fois la facture de mars pour le même contrat."),
    ("VPN disconnects every few minutes",
     "Since Monday the VPN client drops the connection every five minutes on every laptop."),
    ("Imprimante du deuxième étage bloquée",
     "L'imprimante affiche une erreur de bourrage alors que le bac est vide."),
    ("Cannot reset my password",
     "The reset link in the e-mail says it has expired as soon as I open it."),
    ("Export CSV incomplet",
     "L'export des tickets s'arrête après 10 000 lignes sans message d'erreur."),
    ("Licence renewal for 40 seats",
     "Our licence expires at the end of the month: please quote a renewal for 40 seats."),
    ("Synchronisation du calendrier en échec",
     "Les rendez-vous créés sur mobile n'apparaissent plus dans le calendrier partagé."),
]  # fmt: skip
ORGANISATIONS, REQUESTERS, AGENTS = 1_000, 10, 50
PAUL = bearer(AGENT_ID, audience="workflow", roles={"cloud-partner": ["agent"]})
ANNE = bearer(REQUESTER, audience="workflow", organisation="acme")
OTHER_AGENT = "agent-01@partner.example"
PAGE = 25  # the portal's and the console's page size
LATER = 39 * PAGE  # page 40
SUBMITTED = Submission(
    policy_id="cloud-partner",
    request_type="support",
    priority="high",
    subject=SUBJECTS[0][0],
    description=SUBJECTS[0][1],
    organisation_id="acme",
    requester=REQUESTER,
)
COMMENTED = history(1, SUBJECTS[0])  # a state a comment is decided on
LISTS: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
    # (label, path, caller, params): as the console (search) and the portal (lists) ask
    ("console: desk's open, page 1", "/search", PAUL,
     {"policy_id": "cloud-partner", "state": "open"}),
    ("console: desk's open, page 40", "/search", PAUL,
     {"policy_id": "cloud-partner", "state": "open", "offset": LATER}),
    ("console: assigned to the agent", "/search", PAUL,
     {"assignee_id": AGENT_ID, "state": "open"}),
    ("console: words of every request", "/search", PAUL,
     {"q": "jira lent", "snippets": "true", "language": "fr"}),
    ("console: a word of 1 in 8, open", "/search", PAUL,
     {"q": "facture", "state": "open", "snippets": "true", "language": "fr"}),
    ("portal: the requester's own", "/requests", ANNE,
     {"involving": "me", "state": "open"}),
    ("portal: the organisation's open, page 1", "/requests", ANNE,
     {"organisation_id": "acme", "state": "open"}),
    ("portal: the organisation's open, page 40", "/requests", ANNE,
     {"organisation_id": "acme", "state": "open", "offset": LATER}),
    ("portal: a word of the subjects", "/requests", ANNE,
     {"organisation_id": "acme", "state": "all", "q": "lent"}),
    ("GET /requests: desk's open, page 1", "/requests", PAUL,
     {"policy_id": "cloud-partner", "state": "open"}),
    ("GET /requests: desk's open, page 40", "/requests", PAUL,
     {"policy_id": "cloud-partner", "state": "open", "offset": LATER}),
]  # fmt: skip


# ---------------------------------------------------------------------------- the stores


@dataclass
class Stores:
    """One side of the comparison: workflow's store and intake's, and the working set."""

    name: str
    workflow: asyncpg.Pool
    intake: asyncpg.Pool
    commits: GroupCommit
    app: httpx.AsyncClient
    working: list[str]  # ticket ids of the working set
    turn: int = 0
    rejected: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)

    def next_request(self) -> str:
        self.turn += 1
        return self.working[self.turn % len(self.working)]


def background(count: int, open_share: int, opened_from: datetime) -> Iterator[Request]:
    """The full store's older requests (see module), oldest first."""
    closed = {v: history(len(COMMANDS), s) for v, s in enumerate(SUBJECTS)}
    stages = {(n, v): history(n, s) for n in range(1, 6 + 1) for v, s in enumerate(SUBJECTS)}
    step = timedelta(days=365) / max(count, 1)
    for n in range(count):
        variant = n % len(SUBJECTS)
        template = stages[(n % 6 + 1, variant)] if n >= count - open_share else closed[variant]
        organisation = n % ORGANISATIONS
        org = "acme" if organisation == 0 else f"org-{organisation:04d}"
        requester = (n // ORGANISATIONS) % REQUESTERS
        agent = (n // 7) % AGENTS
        who = Who(
            organisation_id=org,
            requester_id=REQUESTER if (organisation, requester) == (0, 0)
            else f"requester-{requester}@{org}.example",
            agent_id=AGENT_ID if agent == 0 else f"agent-{agent:02d}@partner.example",
        )  # fmt: skip
        yield Request(n, template, who, opened_from + step * n)


def working_set(count: int, opened_from: datetime) -> list[Request]:
    """The requests both stores hold, that the measures act on: open at every stage from
    submitted to information answered, of the eight subjects, Anne's, Paul's, opened a minute
    apart."""
    stages = {(n, v): history(n, s) for n in range(1, 5 + 1) for v, s in enumerate(SUBJECTS)}
    return [
        Request(
            10_000_000 + n,
            stages[(n % 5 + 1, n % len(SUBJECTS))],
            opened=opened_from + timedelta(minutes=n),
        )
        for n in range(count)
    ]


def intake_rows(requests: Sequence[Request]) -> Iterator[tuple[Any, ...]]:
    """Intake's events for `requests`: each one's `TicketCreated`, as intake appends it."""
    for r in requests:
        _, payload, _ = r.template.events[0]
        payload = copied(payload, r)
        metadata = f'{{"correlationid": "{r.ticket_id}"}}'
        size = len(payload.encode()) + len(metadata.encode())
        yield (r.ticket_id, 1, uuid.uuid4(), "TicketCreated", 1, payload, metadata, r.opened, size)


def idempotency_rows(requests: Sequence[Request]) -> Iterator[tuple[Any, ...]]:
    """The idempotency key the portal sent with each of `requests`."""
    for r in requests:
        digest = hashlib.sha256(r.ticket_id.encode()).hexdigest()
        yield (r.who.requester_id, secrets.token_urlsafe(24), digest, r.ticket_id, r.key)


async def fill(url: str, workflow: str, intake: str, requests: list[Request]) -> float:
    """Write `requests` into the two schemas (see module); returns the seconds it took."""
    started = time.perf_counter()

    async def into_workflow() -> None:
        conn = await asyncpg.connect(url)
        try:
            await copy_log(conn, workflow, requests)
            await copy_tickets(conn, workflow, requests)
        finally:
            await conn.close()

    async def into_intake() -> None:
        conn = await asyncpg.connect(url)
        try:
            columns = [
                "stream_id", "stream_version", "event_id", "event_type", "schema_version",
                "payload", "metadata", "recorded_at", "stream_bytes",
            ]  # fmt: skip
            await conn.copy_records_to_table(
                "events", records=intake_rows(requests), columns=columns, schema_name=intake
            )
            await conn.copy_records_to_table(
                "idempotency_keys",
                records=idempotency_rows(requests),
                columns=["submitter", "key", "request_hash", "ticket_id", "ticket_key"],
                schema_name=intake,
            )
            await conn.execute(
                f"""INSERT INTO "{intake}".key_sequences (prefix, last)
                    VALUES ('SUP', $1) ON CONFLICT (prefix) DO UPDATE SET last = $1""",
                100_000 + len(requests),
            )
        finally:
            await conn.close()

    await asyncio.gather(into_workflow(), into_intake())
    return time.perf_counter() - started


async def vacuumed(url: str, schemas: Sequence[str]) -> None:
    """VACUUM ANALYZE every table of `schemas` (see module)."""
    conn = await asyncpg.connect(url)
    try:
        for schema in schemas:
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema
            )
            for table in tables:
                await conn.execute(f'VACUUM ANALYZE "{schema}"."{table["tablename"]}"')
    finally:
        await conn.close()


# ---------------------------------------------------------------------------- the measures


async def timed(stores: Stores, label: str, work: Callable[[], Awaitable[bool]]) -> None:
    """Time `work` once; kept under `label` unless it says it did not count (a refusal)."""
    started = time.perf_counter()
    counted = await work()
    if counted:
        stores.times.setdefault(label, []).append(time.perf_counter() - started)


def submit_once(stores: Stores) -> Callable[[], Awaitable[bool]]:
    directory = load_directory()
    submitter = Submitter(REQUESTER, "requester", "acme")

    async def run() -> bool:
        outcome = await submit(
            stores.commits, POLICIES, directory, SUBMITTED, submitter,
            channel=Channel.PORTAL, now=datetime.now(UTC),
            idempotency_key=secrets.token_urlsafe(24), correlation_id=None,
        )  # fmt: skip
        if not isinstance(outcome, Accepted):
            raise AssertionError(outcome)
        return True

    return run


def open_once(stores: Stores) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        n = uuid.uuid4().int >> 80
        created = opening(str(uuid.uuid4()), f"SUP-{n}", datetime.now(UTC), SUBJECTS[0])
        async with stores.workflow.acquire() as conn, conn.transaction():
            state = await open_stream(conn, POLICIES, created, str(uuid.uuid4()), None)
        return state is not None

    return run


def comment_event(ticket_id: str) -> NewEvent:
    """A comment on `ticket_id`, as `execute` decides it (the event only: no state with it)."""
    decision = decide(
        COMMENTED.state,
        AddComment(actor=Actor(id=AGENT_ID, role="agent"), body="Un détail de plus", public=True),
        datetime.now(UTC),
    )
    assert not isinstance(decision, Rejection)
    event = decision[0].model_copy(update={"ticket_id": ticket_id})
    return NewEvent.from_event(event, metadata={"correlationid": ticket_id})


async def prepared_append(stores: Stores) -> Callable[[], Awaitable[bool]]:
    """An append of one event to a working-set request at its version (read beforehand)."""
    ticket_id = stores.next_request()
    async with stores.workflow.acquire() as conn:
        version = await stream_version(conn, ticket_id)
    new = comment_event(ticket_id)

    async def run() -> bool:
        async with stores.workflow.acquire() as conn, conn.transaction():
            await append(conn, ticket_id, version, [new])
        return True

    return run


def command_once(stores: Stores, make: Callable[[Any], Command]) -> Callable[[], Awaitable[bool]]:
    """Load a working-set request, decide `make(state)`, append, write its row: one
    transaction, as workflow's command API runs it. A refusal does not count."""
    ticket_id = stores.next_request()

    async def run() -> bool:
        async with stores.workflow.acquire() as conn, conn.transaction():
            loaded = await load(conn, POLICIES, ticket_id)
            outcome = await execute(conn, loaded, make(loaded.state), datetime.now(UTC))
        if not isinstance(outcome, Executed):
            stores.rejected += 1
            return False
        return True

    return run


def comment(_state: Any) -> Command:
    return AddComment(
        actor=Actor(id=AGENT_ID, role="agent"), body="Relancé le service d'indexation", public=True
    )


def reassign(state: Any) -> Command:
    other = OTHER_AGENT if state.assignee_id == AGENT_ID else AGENT_ID
    return Assign(actor=Actor(id=AGENT_ID, role="agent"), assignee_id=other)


def list_once(
    stores: Stores, *, path: str, caller: dict[str, str], params: dict[str, Any]
) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        answer = await stores.app.get(path, params={"limit": PAGE, **params}, headers=caller)
        if answer.status_code != 200:
            raise AssertionError(f"{path} {params}: {answer.status_code} {answer.text}")
        answer.json()
        return True

    return run


async def measure(sides: list[Stores], samples: int) -> list[str]:
    """Every case, `samples` times, the sides in turn; returns the labels in order."""
    labels: list[str] = []

    async def case(label: str, make: Callable[[Stores], Any]) -> None:
        labels.append(label)
        print(f"   {label} ...", end="", flush=True)
        for _ in range(samples):
            for side in sides:
                work = make(side)
                if asyncio.iscoroutine(work):
                    work = await work
                await timed(side, label, work)
        print(" done", flush=True)

    await case("a. intake: a new request submitted", submit_once)
    await case("a. workflow: a new request's stream opened", open_once)
    await case("a. an event appended to an existing stream", prepared_append)
    await case("b. command: comment (load, decide, append)", lambda s: command_once(s, comment))
    await case("b. command: assign (load, decide, append)", lambda s: command_once(s, reassign))
    for label, path, caller, params in LISTS:
        await case(
            f"c. {label}", functools.partial(list_once, path=path, caller=caller, params=params)
        )
    return labels


def quantiles(times: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 of `times`, in milliseconds."""
    cuts = statistics.quantiles([t * 1000 for t in times], n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def report(labels: list[str], empty: Stores, full: Stores) -> int:
    """Print the table (see module); returns how many cases are over the goal."""
    over = 0
    print(
        f"   {'case':<48} {'empty p50/p95/p99 ms':>22} {'full p50/p95/p99 ms':>22}"
        f"   full/empty p50  p95  p99",
        flush=True,
    )
    for label in labels:
        e, f = quantiles(empty.times[label]), quantiles(full.times[label])
        ratios = [b / a for a, b in zip(e, f, strict=True)]
        bad = ratios[0] > GOAL or ratios[1] > GOAL
        over += bad
        print(
            f"   {label:<48} {e[0]:>6.1f} /{e[1]:>6.1f} /{e[2]:>6.1f} "
            f"{f[0]:>6.1f} /{f[1]:>6.1f} /{f[2]:>6.1f}"
            f"   {ratios[0]:>5.2f} {ratios[1]:>5.2f} {ratios[2]:>5.2f}"
            f"{'  over' if bad else ''}",
            flush=True,
        )
    return over


# ---------------------------------------------------------------------------- the run


async def side(url: str, name: str, workflow: str, intake: str, working: list[str]) -> Stores:
    """Open one side's stores (their migrations applied) and workflow's app on them."""
    wf = await open_store(
        url, workflow, migrations_in("workflow", resources.files("workflow") / "migrations")
    )
    it = await open_store(
        url, intake, migrations_in("intake", resources.files("intake") / "migrations")
    )
    app = create_app(wf, POLICIES, lambda: datetime.now(UTC), verifier=verifier("workflow"))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://workflow")
    return Stores(name, wf, it, GroupCommit(it), client, working)


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="in the full store")
    parser.add_argument("--open", type=int, default=0, help="of them still open")
    parser.add_argument("--working", type=int, default=2_500, help="requests in both stores")
    parser.add_argument("--samples", type=int, default=200, help="of each case and store")
    parser.add_argument("--keep", action="store_true", help="keep the schemas")
    parser.add_argument("--reuse", metavar="ID", help="measure the kept schemas of run ID")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    url = infra_env().get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is needed: source .state/infra.env", file=sys.stderr)
        return 2
    run_id = args.reuse or secrets.token_hex(3)
    schemas = {
        (store, kind): f"growth_{store}_{kind}_{run_id}"
        for store in ("workflow", "intake")
        for kind in ("empty", "full")
    }
    now = datetime.now(UTC)
    working = working_set(args.working, now - timedelta(minutes=args.working + 60))
    sides = [
        await side(url, kind, schemas["workflow", kind], schemas["intake", kind],
                   [r.ticket_id for r in working])
        for kind in ("empty", "full")
    ]  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        pg_version = (await conn.fetchval("SHOW server_version")).split()[0]
        load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"growth benchmark {now:%Y-%m-%d %H:%M}Z · {os.cpu_count()} cores · Python "
            f"{platform.python_version()} · PostgreSQL {pg_version} · load {load_avg} · "
            f"--requests {args.requests:,} --open {args.open:,} --working {args.working:,} "
            f"--samples {args.samples} · run {run_id}",
            flush=True,
        )
        if not args.reuse:
            print("1. fill", flush=True)
            seconds = await fill(
                url, schemas["workflow", "empty"], schemas["intake", "empty"], working
            )
            print(f"   empty stores: {len(working):,} requests in {seconds:.1f} s", flush=True)
            older = list(background(args.requests, args.open, now - timedelta(days=366)))
            seconds = await fill(
                url, schemas["workflow", "full"], schemas["intake", "full"], older + working
            )
            print(
                f"   full stores: {len(older) + len(working):,} requests in {seconds:.1f} s",
                flush=True,
            )
            started = time.perf_counter()
            await vacuumed(url, list(schemas.values()))
            print(f"   VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
        for (store, kind), schema in schemas.items():
            size, events = await conn.fetchrow(
                f"""SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))),
                           (SELECT count(*) FROM "{schema}".events)
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = $1 AND c.relkind = 'r'""",
                schema,
            )
            print(f"   {store} {kind}: {events:,} events, {size}", flush=True)
        print(f"2. measures, {args.samples} samples of each, the two stores in turn", flush=True)
        labels = await measure(sides, args.samples)
        print(f"3. figures (goal: full / empty at most {GOAL:.2f} at p50 and p95)", flush=True)
        over = report(labels, sides[0], sides[1])
        refused = sum(s.rejected for s in sides)
        print(f"   {over} case(s) over the goal; {refused} command(s) refused and not counted")
    finally:
        for s in sides:
            await s.app.aclose()
            await s.workflow.close()
            await s.intake.close()
        if args.keep:
            print(f"   kept: --reuse {run_id}", flush=True)
        else:
            for schema in schemas.values():
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
